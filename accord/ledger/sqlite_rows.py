"""A session's entries read straight from a SQLite ledger file, by any process.

Verification checks entries on several processes. Shipping a million rows from the
process that read them to the others costs that process about as much as checking them
would (pickling, pipes), so with a SQLite file each process reads the range of entries
it checks itself, read-only, with the standard library's driver: no engine, no event
loop, nothing to start. WAL lets these readers run beside a writer; since entries are
only ever appended, rows below the count taken first never change under them.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

_COLUMNS = "idx, actor, seq, kind, envelope, prev_hash, entry_hash, leaf_hash"

Row = tuple[int, str, int, str, str, str, str, str]
"""(idx, actor, seq, kind, envelope, prev_hash, entry_hash, leaf_hash)."""


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def count(path: Path, session_id: str) -> tuple[int, int]:
    """(rows, largest idx + 1) of a session: equal when no entry number is missing."""
    with closing(_connect(path)) as conn:
        rows, top = conn.execute(
            "SELECT count(*), coalesce(max(idx) + 1, 0) FROM entries WHERE session_id = ?", (session_id,)
        ).fetchone()
    return int(rows), int(top)


def read(path: Path, session_id: str, start: int = 0, stop: int | None = None) -> list[Row]:
    """The rows with ``start <= idx < stop`` (all from ``start`` if ``stop`` is None), in order."""
    query = f"SELECT {_COLUMNS} FROM entries WHERE session_id = ? AND idx >= ?"
    args: tuple[object, ...] = (session_id, start)
    if stop is not None:
        query += " AND idx < ?"
        args += (stop,)
    with closing(_connect(path)) as conn:
        return conn.execute(query + " ORDER BY idx", args).fetchall()
