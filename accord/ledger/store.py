"""The ledger: signed envelopes appended in order to a hash chain and a Merkle tree,
stored with SQLAlchemy.

A SQLite file by default (WAL mode); any SQLAlchemy async URL (PostgreSQL via asyncpg)
works. The schema is Alembic's: `Ledger.open` upgrades the database to the head
revision. Appends are batched: one INSERT of many rows per table per call, no per-row
round trips. Each entry stores its RFC 9162 leaf hash (leaf ``idx`` of the session's
tree); the tree itself is kept in memory per session and rebuilt from the stored leaf
hashes when needed. Checkpoints (signed tree heads) are stored with all their
signatures.

A session made whole by one process (`accord.local_session`) is written through a
`SessionWriter` (`Ledger.session_writer`): its row, entries, checkpoints and outcome in
one transaction, on a SQLite file through a plain `sqlite3` connection of the ledger's
own, synchronously, when no other connection is writing.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from accord.ledger import migrate
from accord.ledger.chain import GENESIS
from accord.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    cosign,
    origin_for,
    sign_checkpoint,
)
from accord.ledger.envelope import Envelope, now_iso
from accord.ledger.identity import Identity
from accord.ledger.merkle import MerkleTree, leaf_hash
from accord.ledger.schema import MARKER_KINDS, checkpoints, entries, entry_cards, marker_kinds, sessions

if TYPE_CHECKING:
    from accord.ledger.verify import VerifyReport

DEFAULT_LEDGER = "accord.db"
CHECKPOINT_EVERY = 1024
"""Sessions sign a checkpoint every this many entries, and one at the end."""


class LedgerError(RuntimeError):
    """The ledger refused an operation; nothing was written."""


def ledger_url(location: str | Path) -> str:
    """A database URL from a path or URL: plain paths become SQLite files."""
    text = str(location)
    if "://" in text:
        if text.startswith("sqlite://"):
            text = text.replace("sqlite://", "sqlite+aiosqlite://", 1)
        if text.startswith("postgresql://"):
            text = text.replace("postgresql://", "postgresql+asyncpg://", 1)
        return text
    return f"sqlite+aiosqlite:///{Path(text).expanduser().resolve()}"


def describe_location(url: str) -> str:
    if url.startswith("sqlite"):
        if ":///" not in url:
            return ":memory:"  # an in-memory SQLite ledger (sqlite://)
        return url.split(":///", 1)[1]
    return url.split("@")[-1] if "@" in url else url


@dataclass(frozen=True)
class Entry:
    session_id: str
    idx: int
    actor: str
    seq: int
    kind: str
    envelope: str
    prev_hash: str
    entry_hash: str
    leaf_hash: str = ""

    def parsed(self) -> Envelope:
        return Envelope.model_validate_json(self.envelope)

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.envelope)["body"]


class _Entries(Sequence[Entry]):
    """Stored rows, turned into `Entry` objects only when read."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [Entry(*row) for row in self._rows[i]]
        return Entry(*self._rows[i])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"<{len(self._rows)} entries>"


@dataclass(frozen=True)
class SessionInfo:
    id: str
    spec_id: str
    title: str
    created_at: str
    status: str
    outcome: dict[str, Any] | None
    entries: int


MAX_CARD_ID = 255


def cited_cards(kind: object, body: object) -> list[str]:
    """The values cards a move cites (``body.move.justification.cited[].card``), once each.

    Anything malformed is skipped: the index is a convenience, the ledger keeps the entry.
    """
    if kind != "move" or not isinstance(body, dict):
        return []
    return _move_cards(body)


def _move_cards(body: dict[str, Any]) -> list[str]:
    """`cited_cards` of a move's body. `append_canonical` calls it for every move, so the
    well-formed path is three lookups: a missing key or a non-dict on the way (``str`` and
    ``list`` raise TypeError too) means no cards, exactly as the checks one by one did."""
    try:
        cited = body["move"]["justification"]["cited"]
    except (KeyError, TypeError):
        return []
    if not isinstance(cited, list):
        return []
    cards: list[str] = []
    for item in cited:
        if isinstance(item, dict):
            card = item.get("card")
            if isinstance(card, str) and 0 < len(card) <= MAX_CARD_ID and card not in cards:
                cards.append(card)
    return cards


CheckpointHook = Callable[[Checkpoint], Awaitable[None]]

_ENTRY_COLUMNS = ("session_id", "idx", "actor", "seq", "kind", "envelope", "prev_hash", "entry_hash", "leaf_hash")
_CARD_COLUMNS = ("session_id", "card", "idx")
_SESSION_COLUMNS = ("id", "spec_id", "title", "created_at", "spec_hash", "status", "outcome")
_CHECKPOINT_COLUMNS = ("session_id", "tree_size", "root_hash", "note", "created_at")
_PLACEHOLDERS: dict[str, Callable[[int], str]] = {
    "qmark": lambda i: "?",
    "numeric_dollar": lambda i: f"${i}",
    "numeric": lambda i: f":{i}",
    "format": lambda i: "%s",
}


async def _insert_many(conn: Any, table: Any, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """One INSERT of many rows (the driver's executemany), without SQLAlchemy's per-row
    parameter processing: appends are the hot path of a session."""
    style = _PLACEHOLDERS.get(conn.dialect.paramstyle)
    if style is None:  # any other driver: the portable, slower way
        await conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    marks = ", ".join(style(i) for i in range(1, len(columns) + 1))
    await conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows)


@dataclass
class _AutoCheckpoint:
    signer: Identity
    every: int
    on_checkpoint: CheckpointHook | None


SQLITE_PRAGMAS = (
    # Pages of 8 KiB in a new ledger (the page size of an existing one stays: this is a
    # no-op once a database has tables): an entry is about a kilobyte, stored inline in
    # the `entries` b-tree (WITHOUT ROWID), and with 4 KiB pages a session's insert split
    # pages three times as often. Measured on a busless session's 167 entries and 492
    # card rows in one transaction: 1.4 ms against 1.9 ms (median of 40).
    "PRAGMA page_size=8192",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    # Appends touch the same index pages batch after batch: a larger page cache (64 MiB,
    # the default is 2 MiB) and fewer WAL checkpoints (every 10,000 pages, not 1,000)
    # should write hot pages back less often. Measured: +27% (median of 3) for plain
    # sqlite3 inserts, no change for `append_canonical` at 200,000 entries (BENCHMARKS.md).
    # Durability is unchanged: a commit is in the WAL either way; the WAL file grows to
    # about 40 MB between checkpoints.
    "PRAGMA cache_size=-65536",
    "PRAGMA wal_autocheckpoint=10000",
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()
    # The driver would only BEGIN before DML, leaving DDL (migrations) in autocommit;
    # `_sqlite_begin` emits BEGIN itself so every transaction, DDL included, is atomic.
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


def _chained(
    session_id: str, idx: int, prev: str, items: Sequence[tuple[Envelope, bytes]]
) -> tuple[list[tuple[Any, ...]], list[tuple[str, str, int]], list[bytes], int, str]:
    """`items` chained after entry ``idx - 1`` (whose hash is `prev`): the entries' rows,
    their values-card rows, their leaf hashes, and the next index and head hash.
    All or nothing: an envelope of another session raises `LedgerError`."""
    for env, _ in items:
        if env.session != session_id:
            raise LedgerError(
                f"envelope from {env.actor} seq {env.seq} belongs to session "
                f"{env.session!r}, not {session_id!r}"
            )
    return _chained_parts(
        session_id,
        idx,
        prev,
        [
            (env.actor, env.seq, env.kind, canonical, _move_cards(env.body) if env.kind == "move" else ())
            for env, canonical in items
        ],
    )


# An entry by its parts: actor, sequence number, kind, canonical bytes, the cards its
# move cites (`cited_cards`).
EntryParts = tuple[str, int, str, bytes, Sequence[str]]


def _chained_parts(
    session_id: str, idx: int, prev: str, items: Sequence[EntryParts]
) -> tuple[list[tuple[Any, ...]], list[tuple[str, str, int]], list[bytes], int, str]:
    """`_chained` of entries given by their parts (of session `session_id`)."""
    sha256 = hashlib.sha256
    rows: list[tuple[Any, ...]] = []
    cards: list[tuple[str, str, int]] = []
    leaves: list[bytes] = []
    # Bound once: this is the hot loop, run for every entry of every session.
    add_row, add_card, add_leaf = rows.append, cards.append, leaves.append
    prev_raw = bytes.fromhex(prev)
    for actor, seq, kind, canonical, cited in items:
        # chain.entry_hash and merkle.leaf_hash, inlined.
        prev_raw = sha256(prev_raw + canonical).digest()
        digest = prev_raw.hex()
        leaf = sha256(b"\x00" + canonical).digest()
        add_leaf(leaf)
        add_row((session_id, idx, actor, seq, kind, canonical.decode(), prev, digest, leaf.hex()))
        for card in cited:
            add_card((session_id, card, idx))
        idx += 1
        prev = digest
    return rows, cards, leaves, idx, prev


class SessionWriter:
    """A new session written by the one process that makes all of it (`run_local`): its
    row, its entries, its checkpoints and its outcome staged in memory, then stored in
    one transaction per `commit` (a session usually in one), instead of one transaction
    (and a dozen database round trips) for each of `Ledger.create_session`,
    `append_canonical`, every checkpoint and `finish_session`.

    What is stored is what those calls store: the same rows in `sessions`, `entries`
    (chained, with their Merkle leaf hashes), `entry_cards` and `checkpoints` (signed by
    ``checkpoint_signer`` at every multiple of ``checkpoint_every`` entries, as
    `Ledger.checkpoint_every` has them; `seal` as `Ledger.seal`). The session's row is
    written by the first commit, with the creation time `Ledger.session_writer` was
    called at (or its ``created_at``); if the session exists already, that commit fails
    (`LedgerError`) and nothing is written.

    Nothing staged is in the database until `commit` (`write_ahead` inserts it earlier,
    in the transaction that commit completes), and a commit is all or nothing. If
    one fails, what earlier commits stored stays stored, whole, and the writer refuses
    any further use (`LedgerError`): the caller decides what the rest is worth. Not safe
    for concurrent use; another writer of the same session id (in this process or any
    other) makes the later commit fail rather than interleave.
    """

    def __init__(
        self,
        ledger: Ledger,
        session_id: str,
        spec_id: str,
        title: str,
        spec_hash: str,
        checkpoint_signer: Identity | None,
        checkpoint_every: int,
        created_at: str | None = None,
    ) -> None:
        self._ledger = ledger
        self.session_id = session_id
        self._origin = origin_for(session_id)
        self._session_row: tuple[Any, ...] = (session_id, spec_id, title, created_at or now_iso(), spec_hash)
        self._signer = checkpoint_signer
        self._every = checkpoint_every
        self._tree = MerkleTree()
        self._idx = 0
        self._prev = GENESIS
        # Staged until the next commit:
        self._rows: list[tuple[Any, ...]] = []
        self._cards: list[tuple[str, str, int]] = []
        self._new_checkpoints: dict[int, Checkpoint] = {}
        self._changed_checkpoints: dict[int, Checkpoint] = {}
        self._outcome: str | None = None
        # What is stored:
        self._stored_checkpoints: dict[int, Checkpoint] = {}
        self._row_stored = False
        self._outcome_stored = False
        self._broken = False
        # `write_ahead`'s open transaction, and whether the session's row is in it.
        self._ahead: sqlite3.Connection | None = None
        self._row_ahead = False

    @property
    def size(self) -> int:
        """Entries so far, staged or stored."""
        return self._idx

    @property
    def staged(self) -> int:
        """Entries staged since the last commit."""
        return len(self._rows)

    @property
    def finished(self) -> bool:
        """`finish` was called: nothing more can be appended."""
        return self._outcome is not None or self._outcome_stored

    @property
    def closed(self) -> bool:
        """A commit failed: the writer refuses any further use."""
        return self._broken

    @property
    def written_ahead(self) -> bool:
        """`write_ahead` holds a transaction open that no commit has completed yet."""
        return self._ahead is not None

    def _usable(self) -> None:
        if self._broken:
            raise LedgerError(f"session {self.session_id!r}: an earlier commit failed; this writer is closed")

    def append(self, items: Sequence[tuple[Envelope, bytes]]) -> Sequence[Entry]:
        """Chain `items` (envelopes with their canonical bytes) after the entries so far,
        as `Ledger.append_canonical` does, and stage them; sign the checkpoints they
        reach. All or nothing: an envelope of another session is refused (`LedgerError`)
        and then none of `items` is staged."""
        if not self._appendable(items):
            return []
        return self._stage(_chained(self.session_id, self._idx, self._prev, items))

    def append_parts(self, items: Sequence[EntryParts]) -> Sequence[Entry]:
        """`append` of entries given by their parts: actor, sequence number, kind,
        canonical bytes (signed, of this session: the caller has made sure) and the cards
        its move cites (`cited_cards`). For a writer that never holds the envelopes
        (`accord.ledger_worker`)."""
        if not self._appendable(items):
            return []
        return self._stage(_chained_parts(self.session_id, self._idx, self._prev, items))

    def _appendable(self, items: Sequence[Any]) -> bool:
        """Whether there is anything to append; refused (`LedgerError`) once closed or
        finished."""
        self._usable()
        if self.finished:
            raise LedgerError(f"session {self.session_id!r} is finished: nothing more can be appended")
        return bool(items)

    def _stage(
        self, chained: tuple[list[tuple[Any, ...]], list[tuple[str, str, int]], list[bytes], int, str]
    ) -> Sequence[Entry]:
        rows, cards, leaves, idx, prev = chained
        first = self._idx
        self._rows.extend(rows)
        self._cards.extend(cards)
        self._tree.append_leaf_hashes(leaves)
        self._idx, self._prev = idx, prev
        if self._signer is not None:
            every = self._every
            for size in range((first // every + 1) * every, idx + 1, every):
                self._stage_checkpoint(
                    sign_checkpoint(self._origin, size, self._tree.root(size), self._signer)
                )
        return _Entries(rows)

    def seal(self, log: Identity, witnesses: Sequence[Identity] = ()) -> Checkpoint:
        """`Ledger.seal`, staged: the checkpoint of every entry so far, signed by `log`
        (the chair) and co-signed by every witness (the delegates); with the signatures
        of a checkpoint of the same size already made, as `save_checkpoint` merges them."""
        self._usable()
        checkpoint = sign_checkpoint(self._origin, self._idx, self._tree.root(), log)
        for witness in witnesses:
            checkpoint = cosign(checkpoint, witness)
        return self._stage_checkpoint(checkpoint)

    def _stage_checkpoint(self, checkpoint: Checkpoint) -> Checkpoint:
        size = checkpoint.size
        staged = self._new_checkpoints.get(size)
        if staged is not None:
            merged = self._new_checkpoints[size] = staged.with_signatures(checkpoint.signatures)
            return merged
        stored = self._changed_checkpoints.get(size) or self._stored_checkpoints.get(size)
        if stored is None:
            self._new_checkpoints[size] = checkpoint
            return checkpoint
        merged = stored.with_signatures(checkpoint.signatures)
        if merged.signatures != stored.signatures:
            self._changed_checkpoints[size] = merged
        return merged

    def finish(self, outcome: dict[str, Any]) -> None:
        """`Ledger.finish_session`, staged: the session's status becomes "ended", with
        `outcome`. Nothing can be appended after it."""
        self._usable()
        if self.finished:
            raise LedgerError(f"session {self.session_id!r} is finished already")
        self._outcome = json.dumps(outcome, sort_keys=True)

    def write_ahead(self) -> None:
        """Insert what is staged now, into a transaction that the next `commit` completes,
        so that the commit has less left to do: where that can be done at once, on a
        SQLite file that no other connection is writing (otherwise nothing happens here
        and the commit does it all).

        The transaction holds the file's write lock until that commit (or `abandon`):
        other writers wait meanwhile. For a process that writes one session at a time
        between short commits (`accord.ledger_worker`). If an insert is refused, the
        transaction is rolled back and the writer closed, as by a failed commit."""
        self._usable()
        if not self._rows and (self._row_stored or self._row_ahead):
            return
        ledger = self._ledger
        if self._ahead is None:
            self._ahead = ledger._direct_begin()
            if self._ahead is None:
                return
            ledger._ahead_writer = self
        row_written = self._row_stored or self._row_ahead
        write = _Write(
            session=None if row_written else (*self._session_row, "running", None),
            outcome=None,
            entries=self._rows,
            cards=self._cards,
            checkpoints=[],
            changed=[],
        )
        try:
            ledger._direct_rows(self._ahead, self.session_id, write)
        except BaseException:
            self.abandon()
            raise
        self._row_ahead = True
        self._rows, self._cards = [], []

    def abandon(self) -> None:
        """Roll back what `write_ahead` inserted and close the writer (what earlier
        commits stored stays stored)."""
        conn, self._ahead = self._ahead, None
        self._broken = True
        self._ledger._heads.pop(self.session_id, None)
        self._ledger._trees.pop(self.session_id, None)
        if conn is not None:
            self._ledger._ahead_writer = None
            self._ledger._direct_end(conn, commit=False)

    async def commit(self) -> None:
        """Store everything staged in one transaction (nothing staged: nothing to do).

        On a SQLite file this is one synchronous transaction on the ledger's own
        connection when no other connection is writing (`Ledger._write_direct`): through
        the async driver each statement is three hand-offs to its thread and back, and
        those cost more than the inserts. Otherwise (PostgreSQL, or another writer
        holding SQLite's lock) one transaction through the engine. After `write_ahead`,
        the rest, in the transaction it opened."""
        self._usable()
        if self._ahead is None and self._row_stored and not (
            self._rows or self._new_checkpoints or self._changed_checkpoints or self._outcome is not None
        ):
            return
        ledger, session_id = self._ledger, self.session_id
        row_written = self._row_stored or self._row_ahead
        write = _Write(
            session=None if row_written else (*self._session_row, *self._status()),
            outcome=self._outcome if row_written else None,
            entries=self._rows,
            cards=self._cards,
            checkpoints=[
                (session_id, c.size, c.root_hex, c.text, now_iso()) for _, c in sorted(self._new_checkpoints.items())
            ],
            changed=[(c.text, session_id, size) for size, c in sorted(self._changed_checkpoints.items())],
        )
        try:
            if self._ahead is not None:
                conn, self._ahead = self._ahead, None
                ledger._ahead_writer = None
                try:
                    ledger._direct_rows(conn, session_id, write)
                except BaseException:
                    ledger._direct_end(conn, commit=False)
                    raise
                ledger._direct_end(conn, commit=True)
                self._row_ahead = False
            elif not ledger._write_direct(session_id, write):
                await ledger._write_engine(session_id, write)
        except BaseException:
            # The database holds what earlier commits stored; this writer's chain runs
            # past it, so it stops here, and the ledger forgets what it cached.
            self._broken = True
            ledger._heads.pop(session_id, None)
            ledger._trees.pop(session_id, None)
            raise
        self._row_stored = True
        self._rows, self._cards = [], []
        self._stored_checkpoints.update(self._new_checkpoints)
        self._stored_checkpoints.update(self._changed_checkpoints)
        self._new_checkpoints, self._changed_checkpoints = {}, {}
        if self._outcome is not None:
            self._outcome_stored, self._outcome = True, None
        ledger._heads[session_id] = (self._idx, self._prev)
        ledger._appends[session_id] = ledger._appends.get(session_id, 0) + 1
        if self._outcome_stored:  # no more appends: the ledger may share the tree
            ledger._trees[session_id] = self._tree
        else:
            ledger._trees.pop(session_id, None)

    def _status(self) -> tuple[str, str | None]:
        return ("running", None) if self._outcome is None else ("ended", self._outcome)


@dataclass(frozen=True)
class _Write:
    """One `SessionWriter.commit`: the rows to insert (and the few to update), in the
    order they are written."""

    session: tuple[Any, ...] | None  # the session's row, on the first commit
    outcome: str | None  # the outcome of a session whose row is stored already
    entries: list[tuple[Any, ...]]
    cards: list[tuple[str, str, int]]
    checkpoints: list[tuple[Any, ...]]
    changed: list[tuple[str, str, int]]  # (note, session_id, tree_size)


def _insert_sql(table: Any, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_SQL_SESSION = _insert_sql(sessions, _SESSION_COLUMNS)
_SQL_ENTRIES = _insert_sql(entries, _ENTRY_COLUMNS)
_SQL_CARDS = _insert_sql(entry_cards, _CARD_COLUMNS)
_SQL_CHECKPOINTS = _insert_sql(checkpoints, _CHECKPOINT_COLUMNS)
_SQL_OUTCOME = "UPDATE sessions SET status = 'ended', outcome = ? WHERE id = ?"
_SQL_NOTE = "UPDATE checkpoints SET note = ? WHERE session_id = ? AND tree_size = ?"


def _refused(session_id: str, step: str, location: str, orig: object) -> LedgerError:
    """The LedgerError for a commit the database refused (the transaction rolled back)."""
    if step == "session":
        return LedgerError(f"session {session_id!r} already exists in {location}")
    if step == "entries":
        return LedgerError(f"append to {session_id!r} refused (duplicate sequence number?): {orig}")
    return LedgerError(f"checkpoint of {session_id!r} refused (stored already?): {orig}")


class Ledger:
    """Append-only store of sessions' signed envelopes."""

    def __init__(self, engine: AsyncEngine, url: str) -> None:
        self.engine = engine
        self.url = url
        self._heads: dict[str, tuple[int, str]] = {}
        self._trees: dict[str, MerkleTree] = {}
        self._appends: dict[str, int] = {}
        self._auto: dict[str, _AutoCheckpoint] = {}
        # `_write_direct`'s connection to a SQLite file (None: not opened yet, or not a
        # plain SQLite file: then `_direct_path` is None too).
        self._direct_path: Path | None = None
        self._direct: sqlite3.Connection | None = None
        self._direct_lock = threading.Lock()
        # The writer whose `write_ahead` transaction holds `_direct` (and the lock).
        self._ahead_writer: SessionWriter | None = None

    @classmethod
    async def open(
        cls,
        location: str | Path = DEFAULT_LEDGER,
        *,
        create: bool = True,
        engine_options: dict[str, Any] | None = None,
    ) -> Ledger:
        """Open (and with `create`, create) a ledger; its schema is upgraded to the head
        Alembic revision first, keeping every row (see `accord.ledger.migrate`)."""
        url = ledger_url(location)
        if url.startswith("sqlite") and not create:
            path = Path(describe_location(url))
            if not path.exists():
                raise LedgerError(f"no ledger at {path}")
        migrate.head_revision()  # load the migration scripts before touching the database
        if url.startswith("sqlite") and url != "sqlite+aiosqlite://":
            path = Path(describe_location(url))
            if not path.exists():
                await cls._create_sqlite(path, engine_options)
        engine = cls._engine(url, engine_options)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(migrate.upgrade)
        except BaseException:
            await engine.dispose()
            raise
        ledger = cls(engine, url)
        if url.startswith("sqlite+aiosqlite:///") and "?" not in url and not engine_options:
            # A plain SQLite file, opened as the engine opens it: `_write_direct` may
            # write it through a connection of its own.
            ledger._direct_path = Path(describe_location(url)).resolve()  # as_uri needs it absolute
        return ledger

    @staticmethod
    def _engine(url: str, engine_options: dict[str, Any] | None) -> AsyncEngine:
        engine = create_async_engine(url, **(engine_options or {}))
        if url.startswith("sqlite"):
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine

    @classmethod
    async def _create_sqlite(cls, path: Path, engine_options: dict[str, Any] | None) -> None:
        """Build a new SQLite ledger beside `path`, then link it into place: a ledger file
        is never seen half-made, and of two processes creating it at once one wins."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
        os.close(fd)
        staging = Path(name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o666 & ~umask)  # as if created directly, not mkstemp's 0600
        try:
            engine = cls._engine(f"sqlite+aiosqlite:///{staging}", engine_options)
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(migrate.upgrade)
            finally:
                await engine.dispose()
            try:
                os.link(staging, path)
            except FileExistsError:
                pass
            except OSError:  # no hard links here: a rename is nearly as good
                if not path.exists():
                    os.replace(staging, path)
        finally:
            for leftover in (staging, Path(f"{staging}-wal"), Path(f"{staging}-shm")):
                leftover.unlink(missing_ok=True)

    @property
    def location(self) -> str:
        return describe_location(self.url)

    async def close(self) -> None:
        holder = self._ahead_writer
        if holder is not None:  # a session written ahead and never committed: rolled back
            holder.abandon()
        with self._direct_lock:
            if self._direct is not None:
                self._direct.close()
                self._direct = None
        await self.engine.dispose()

    def _write_direct(self, session_id: str, write: _Write) -> bool:
        """`write` in one transaction on the SQLite file, synchronously, through a
        connection of the ledger's own; False (nothing done) where that cannot be done
        without waiting: not a plain SQLite file, or another connection (of this process,
        or another) is writing, since waiting here would stall the event loop that
        connection may need to finish. The engine's way (`_write_engine`) then waits.

        Synchronous on purpose: its callers (`run_local`) run their whole session on the
        event loop without awaiting; a commit of a few hundred entries takes a few
        milliseconds, while each statement through aiosqlite is three hand-offs to its
        thread, each a wake-up that a loaded machine delays."""
        conn = self._direct_begin()
        if conn is None:
            return False
        try:
            self._direct_rows(conn, session_id, write)
        except BaseException:
            self._direct_end(conn, commit=False)
            raise
        self._direct_end(conn, commit=True)
        return True

    def _direct_begin(self) -> sqlite3.Connection | None:
        """The ledger's own connection to its SQLite file, in a write transaction that
        `_direct_end` ends; None where there is none to be had without waiting (see
        `_write_direct`). Until `_direct_end`, no other caller gets it."""
        if self._direct_path is None or not self._direct_lock.acquire(blocking=False):
            return None
        try:
            conn = self._direct
            if conn is None:
                # timeout=0: a locked database is reported at once, not waited for;
                # mode=rw: a ledger file that has gone is an error, not a new file.
                conn = sqlite3.connect(
                    f"{self._direct_path.as_uri()}?mode=rw",
                    uri=True,
                    timeout=0,
                    isolation_level=None,
                    check_same_thread=False,
                )
                try:
                    for pragma in SQLITE_PRAGMAS:
                        conn.execute(pragma)
                except BaseException:
                    conn.close()
                    raise
                self._direct = conn
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            self._direct_lock.release()
            return None  # locked (another writer): the engine waits for it
        except BaseException:
            self._direct_lock.release()
            raise
        return conn

    def _direct_rows(self, conn: sqlite3.Connection, session_id: str, write: _Write) -> None:
        """`write`'s statements, in `_direct_begin`'s transaction."""
        step = "session"
        try:
            if write.session is not None:
                conn.execute(_SQL_SESSION, write.session)
            if write.outcome is not None:
                conn.execute(_SQL_OUTCOME, (write.outcome, session_id))
            step = "entries"
            if write.entries:
                conn.executemany(_SQL_ENTRIES, write.entries)
            if write.cards:
                conn.executemany(_SQL_CARDS, write.cards)
            step = "checkpoints"
            if write.checkpoints:
                conn.executemany(_SQL_CHECKPOINTS, write.checkpoints)
            if write.changed:
                conn.executemany(_SQL_NOTE, write.changed)
        except sqlite3.IntegrityError as exc:
            raise _refused(session_id, step, self.location, exc) from None

    def _direct_end(self, conn: sqlite3.Connection, *, commit: bool) -> None:
        """End `_direct_begin`'s transaction: commit it (rolled back if that fails), or
        roll it back."""
        try:
            if commit:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            elif conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            self._direct_lock.release()

    async def _write_engine(self, session_id: str, write: _Write) -> None:
        """`write` in one transaction through the engine (any database)."""
        async with self.engine.begin() as conn:
            step = "session"
            try:
                if write.session is not None:
                    await _insert_many(conn, sessions, _SESSION_COLUMNS, [write.session])
                if write.outcome is not None:
                    await conn.execute(
                        update(sessions).where(sessions.c.id == session_id).values(status="ended", outcome=write.outcome)
                    )
                step = "entries"
                if write.entries:
                    await _insert_many(conn, entries, _ENTRY_COLUMNS, write.entries)
                if write.cards:
                    await _insert_many(conn, entry_cards, _CARD_COLUMNS, write.cards)
                step = "checkpoints"
                if write.checkpoints:
                    await _insert_many(conn, checkpoints, _CHECKPOINT_COLUMNS, write.checkpoints)
                for note, _, size in write.changed:
                    await conn.execute(
                        update(checkpoints)
                        .where(checkpoints.c.session_id == session_id, checkpoints.c.tree_size == size)
                        .values(note=note)
                    )
            except IntegrityError as exc:
                raise _refused(session_id, step, self.location, exc.orig) from None

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def create_session(
        self, session_id: str, spec_id: str, title: str, spec_hash: str
    ) -> None:
        async with self.engine.begin() as conn:
            existing = await conn.scalar(select(sessions.c.id).where(sessions.c.id == session_id))
            if existing is not None:
                raise LedgerError(f"session {session_id!r} already exists in {self.location}")
            await conn.execute(
                insert(sessions),
                [
                    {
                        "id": session_id,
                        "spec_id": spec_id,
                        "title": title,
                        "created_at": now_iso(),
                        "spec_hash": spec_hash,
                        "status": "running",
                        "outcome": None,
                    }
                ],
            )
        self._heads[session_id] = (0, GENESIS)
        self._trees[session_id] = MerkleTree()

    async def finish_session(self, session_id: str, outcome: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(status="ended", outcome=json.dumps(outcome, sort_keys=True))
            )

    def session_writer(
        self,
        session_id: str,
        spec_id: str,
        title: str,
        spec_hash: str,
        *,
        checkpoint_signer: Identity | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
        created_at: str | None = None,
    ) -> SessionWriter:
        """A new session written in a few transactions (see `SessionWriter`) instead of
        `create_session`, `append_canonical` calls, checkpoints and `finish_session`.
        With `checkpoint_signer`, a checkpoint is signed every `checkpoint_every` entries,
        as `checkpoint_every` has it. `created_at` (ISO 8601 UTC, as `now_iso` writes it)
        is when the session started, if not now. Refused (`LedgerError`) before anything
        is staged if the session id cannot name a checkpoint or this ledger has the
        session already."""
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint interval must be positive, not {checkpoint_every}")
        self.check_new_session_id(session_id)
        return SessionWriter(
            self, session_id, spec_id, title, spec_hash, checkpoint_signer, checkpoint_every, created_at
        )

    def check_new_session_id(self, session_id: str) -> None:
        """Refuse (`LedgerError`), before anything runs, a session id that cannot name a
        checkpoint or that this ledger object knows to be taken already (a session in
        the database it has not seen is refused by the first commit instead)."""
        if session_id in self._heads:
            raise LedgerError(f"session {session_id!r} already exists in {self.location}")
        try:
            origin_for(session_id)
        except CheckpointError as exc:
            raise LedgerError(str(exc)) from None

    async def _head(self, conn: Any, session_id: str) -> tuple[int, str]:
        head = self._heads.get(session_id)
        if head is not None:
            return head
        row = (
            await conn.execute(
                select(entries.c.idx, entries.c.entry_hash)
                .where(entries.c.session_id == session_id)
                .order_by(entries.c.idx.desc())
                .limit(1)
            )
        ).first()
        return (row.idx + 1, row.entry_hash) if row else (0, GENESIS)

    async def append(self, session_id: str, envelopes: Sequence[Envelope]) -> Sequence[Entry]:
        """Chain and store a batch in one transaction; all or nothing."""
        return await self.append_canonical(session_id, [(e, e.canonical()) for e in envelopes])

    async def append_canonical(
        self, session_id: str, items: Sequence[tuple[Envelope, bytes]]
    ) -> Sequence[Entry]:
        """As `append`, for callers that already hold each envelope's canonical bytes.

        Returns the stored entries as a sequence that builds each `Entry` when read (the
        chair, the hot caller, never reads them)."""
        if not items:
            return []
        async with self.engine.begin() as conn:
            first, prev = await self._head(conn, session_id)
            rows, cards, leaves, idx, prev = _chained(session_id, first, prev, items)
            try:
                await _insert_many(conn, entries, _ENTRY_COLUMNS, rows)
                if cards:
                    await _insert_many(conn, entry_cards, _CARD_COLUMNS, cards)
            except IntegrityError as exc:
                self._heads.pop(session_id, None)
                self._trees.pop(session_id, None)
                raise LedgerError(
                    f"append to {session_id!r} refused (duplicate sequence number?): {exc.orig}"
                ) from None
        self._heads[session_id] = (idx, prev)
        self._appends[session_id] = self._appends.get(session_id, 0) + 1
        tree = self._trees.get(session_id)
        if tree is not None and tree.size == first:
            tree.append_leaf_hashes(leaves)
        else:
            self._trees.pop(session_id, None)
        auto = self._auto.get(session_id)
        if auto is not None:
            for size in range((first // auto.every + 1) * auto.every, idx + 1, auto.every):
                checkpoint = await self.checkpoint(session_id, auto.signer, size=size)
                if auto.on_checkpoint is not None:
                    await auto.on_checkpoint(checkpoint)
        return _Entries(rows)

    async def entries(self, session_id: str, kinds: Sequence[str] | None = None) -> list[Entry]:
        """The session's entries in order; with `kinds`, only those of these kinds.

        Kinds in `MARKER_KINDS` (``session.open``, ``ended``, ...) are found through the
        partial index of them, a few rows per session; any other kind means reading the
        session's entries in order (as SQLite's planner did even when every kind was
        indexed: ``ORDER BY idx`` made it prefer the primary key).
        """
        query = select(entries).where(entries.c.session_id == session_id)
        if kinds:
            query = query.where(entries.c.kind.in_(list(kinds)))
            if set(kinds) <= set(MARKER_KINDS):
                # The subquery repeats the index's condition, so SQLite (which otherwise
                # prefers the primary key) and PostgreSQL both read ix_entries_markers.
                marked = entries.alias("marked")
                query = query.where(
                    entries.c.idx.in_(
                        select(marked.c.idx).where(
                            marked.c.session_id == session_id, marker_kinds(marked.c.kind)
                        )
                    )
                )
        async with self.engine.connect() as conn:
            result = await conn.execute(query.order_by(entries.c.idx))
            return [Entry(**row._mapping) for row in result]

    async def entries_by_actor(self, session_id: str, actor: str) -> list[Entry]:
        """What one actor signed, in order: a delegate's (= its constituency's) messages,
        or the chair's. Served by the (session, actor, seq) unique index."""
        query = (
            select(entries)
            .where(entries.c.session_id == session_id, entries.c.actor == actor)
            .order_by(entries.c.idx)
        )
        async with self.engine.connect() as conn:
            return [Entry(**row._mapping) for row in await conn.execute(query)]

    async def entries_by_card(self, session_id: str, card: str) -> list[Entry]:
        """The moves that cite values card `card` in their justification, in order."""
        query = (
            select(entries)
            .join(
                entry_cards,
                (entry_cards.c.session_id == entries.c.session_id)
                & (entry_cards.c.idx == entries.c.idx),
            )
            .where(entry_cards.c.session_id == session_id, entry_cards.c.card == card)
            .order_by(entries.c.idx)
        )
        async with self.engine.connect() as conn:
            return [Entry(**row._mapping) for row in await conn.execute(query)]

    async def cards(self, session_id: str) -> dict[str, int]:
        """Every card cited in the session, with how many moves cite it."""
        query = (
            select(entry_cards.c.card, func.count().label("n"))
            .where(entry_cards.c.session_id == session_id)
            .group_by(entry_cards.c.card)
            .order_by(entry_cards.c.card)
        )
        async with self.engine.connect() as conn:
            return {row.card: row.n for row in await conn.execute(query)}

    async def entry(self, session_id: str, idx: int) -> Entry:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(entries).where(entries.c.session_id == session_id, entries.c.idx == idx)
                )
            ).first()
        if row is None:
            raise LedgerError(f"session {session_id!r} has no entry {idx}")
        return Entry(**row._mapping)

    async def session_keys(self, session_id: str) -> dict[str, str]:
        """The public keys the chair listed in the session's `session.open` entry."""
        opening = await self.entries(session_id, kinds=["session.open"])
        if not opening:
            raise LedgerError(f"session {session_id!r} has no session.open entry")
        keys = opening[0].body.get("keys")
        if not isinstance(keys, dict):
            raise LedgerError(f"session {session_id!r}: session.open lists no keys")
        return dict(keys)

    # -- the Merkle tree, checkpoints and proofs ---------------------------------------

    async def tree(self, session_id: str) -> MerkleTree:
        """The session's Merkle tree (cached; built from the stored leaf hashes)."""
        tree = self._trees.get(session_id)
        if tree is not None:
            return tree
        generation = self._appends.get(session_id, 0)
        query = (
            select(entries.c.idx, entries.c.leaf_hash, entries.c.envelope)
            .where(entries.c.session_id == session_id)
            .order_by(entries.c.idx)
        )
        leaves: list[bytes] = []
        async with self.engine.connect() as conn:
            result = await conn.stream(query)
            async for idx, stored, envelope in result:
                if idx != len(leaves):
                    raise LedgerError(
                        f"session {session_id!r}: entry {len(leaves)} is missing "
                        f"(found {idx}); run `accord verify`"
                    )
                leaves.append(bytes.fromhex(stored) if stored else leaf_hash(envelope.encode("utf-8")))
        tree = MerkleTree(leaves)
        if self._appends.get(session_id, 0) == generation:  # no append raced the read
            self._trees[session_id] = tree
        return tree

    async def checkpoint(
        self, session_id: str, signer: Identity, *, size: int | None = None
    ) -> Checkpoint:
        """Sign the tree head at `size` (default: every entry so far) and store it.

        The checkpoint is a C2SP tlog-checkpoint note with origin ``accord/<session>``,
        signed by `signer` (the chair) under that name. Returns the stored checkpoint,
        with any cosignatures already stored for the same tree head.
        """
        tree = await self.tree(session_id)
        size = tree.size if size is None else size
        if not 0 <= size <= tree.size:
            raise LedgerError(f"session {session_id!r} has {tree.size} entries, not {size}")
        signed = sign_checkpoint(origin_for(session_id), size, tree.root(size), signer)
        return await self.save_checkpoint(session_id, signed)

    async def save_checkpoint(self, session_id: str, checkpoint: Checkpoint) -> Checkpoint:
        """Store a checkpoint, or add its signature lines to the stored one of that size.

        Refused (`LedgerError`) if its origin or root disagrees with this ledger's tree:
        the ledger never stores a tree head it does not hold.
        """
        try:
            origin = origin_for(session_id)
        except CheckpointError as exc:
            raise LedgerError(str(exc)) from None
        if checkpoint.origin != origin:
            raise LedgerError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
        tree = await self.tree(session_id)
        if checkpoint.size > tree.size or tree.root(checkpoint.size) != checkpoint.root:
            raise LedgerError(
                f"checkpoint {checkpoint.size} of {session_id!r} does not match the stored entries"
            )
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(checkpoints.c.note).where(
                        checkpoints.c.session_id == session_id,
                        checkpoints.c.tree_size == checkpoint.size,
                    )
                )
            ).first()
            if row is None:
                merged = checkpoint
                await conn.execute(
                    insert(checkpoints),
                    [
                        {
                            "session_id": session_id,
                            "tree_size": checkpoint.size,
                            "root_hash": checkpoint.root_hex,
                            "note": merged.text,
                            "created_at": now_iso(),
                        }
                    ],
                )
            else:
                stored = Checkpoint.parse(row.note)
                merged = stored.with_signatures(checkpoint.signatures)
                if merged.signatures != stored.signatures:
                    await conn.execute(
                        update(checkpoints)
                        .where(
                            checkpoints.c.session_id == session_id,
                            checkpoints.c.tree_size == checkpoint.size,
                        )
                        .values(note=merged.text)
                    )
        return merged

    async def checkpoints(self, session_id: str) -> list[Checkpoint]:
        """The session's stored checkpoints, smallest tree first (as stored: not verified)."""
        query = (
            select(checkpoints.c.note)
            .where(checkpoints.c.session_id == session_id)
            .order_by(checkpoints.c.tree_size)
        )
        async with self.engine.connect() as conn:
            notes = [row.note for row in await conn.execute(query)]
        return [Checkpoint.parse(note) for note in notes]

    async def latest_checkpoint(self, session_id: str, *, covering: int = 0) -> Checkpoint:
        """The largest stored checkpoint (that covers entry `covering`)."""
        found = [c for c in await self.checkpoints(session_id) if c.size > covering]
        if not found:
            raise LedgerError(
                f"session {session_id!r} has no checkpoint covering entry {covering} "
                "(checkpoints are made when a session ends, and every N entries)"
            )
        return found[-1]

    async def inclusion_proof(self, session_id: str, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry `index` in the tree of `size` entries."""
        tree = await self.tree(session_id)
        if not 0 <= index < size <= tree.size:
            raise LedgerError(f"no entry {index} in a tree of {size} (the session has {tree.size})")
        return tree.inclusion_proof(index, size)

    async def consistency_proof(self, session_id: str, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof from the tree of `old_size` entries to `new_size`."""
        tree = await self.tree(session_id)
        if not 0 < old_size <= new_size <= tree.size:
            raise LedgerError(
                f"no consistency proof from {old_size} to {new_size} (the session has {tree.size})"
            )
        return tree.consistency_proof(old_size, new_size)

    def checkpoint_every(
        self,
        session_id: str,
        signer: Identity,
        every: int,
        on_checkpoint: CheckpointHook | None = None,
    ) -> None:
        """From now on, sign and store a checkpoint each time the session's log reaches a
        multiple of `every` entries (exactly at that size, even inside a batch), then
        await `on_checkpoint` with it (e.g. to publish it)."""
        if every < 1:
            raise ValueError(f"checkpoint interval must be positive, not {every}")
        self._auto[session_id] = _AutoCheckpoint(signer, every, on_checkpoint)

    async def seal(
        self, session_id: str, log: Identity, witnesses: Sequence[Identity] = ()
    ) -> Checkpoint:
        """The end-of-session checkpoint: signed by `log` (the chair), co-signed by every
        witness (the delegates), stored; returned with all its signatures."""
        checkpoint = await self.checkpoint(session_id, log)
        for witness in witnesses:
            checkpoint = cosign(checkpoint, witness)
        return await self.save_checkpoint(session_id, checkpoint)

    def stop_checkpointing(self, session_id: str) -> None:
        self._auto.pop(session_id, None)

    async def verify(self, session_id: str, *, workers: int | None = 1) -> VerifyReport:
        """`verify_entries` over the stored entries and checkpoints of a session.

        From a SQLite file, each checking process reads the entries it checks itself
        (`verify_sqlite`) rather than this one reading them all and shipping them."""
        from accord.ledger.verify import verify_entries, verify_sqlite

        stored = await self.checkpoint_notes(session_id)
        if self.url.startswith("sqlite+aiosqlite:///") and Path(self.location).is_file():
            try:
                return verify_sqlite(self.location, session_id, checkpoints=stored, workers=workers)
            except sqlite3.Error:
                pass  # e.g. a read-only directory with no -shm file: read through the engine
        rows = await self.entries(session_id)
        return verify_entries(session_id, rows, checkpoints=stored, workers=workers)

    async def checkpoint_notes(self, session_id: str) -> list[str]:
        """The stored checkpoint notes, unparsed (verification reports bad ones)."""
        query = (
            select(checkpoints.c.note)
            .where(checkpoints.c.session_id == session_id)
            .order_by(checkpoints.c.tree_size)
        )
        async with self.engine.connect() as conn:
            return [row.note for row in await conn.execute(query)]

    async def sessions(self) -> list[SessionInfo]:
        counts = (
            select(entries.c.session_id, func.count().label("n"))
            .group_by(entries.c.session_id)
            .subquery()
        )
        query = (
            select(sessions, func.coalesce(counts.c.n, 0).label("n"))
            .outerjoin(counts, counts.c.session_id == sessions.c.id)
            .order_by(sessions.c.created_at)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            SessionInfo(
                id=r.id,
                spec_id=r.spec_id,
                title=r.title,
                created_at=r.created_at,
                status=r.status,
                outcome=json.loads(r.outcome) if r.outcome else None,
                entries=r.n,
            )
            for r in rows
        ]

    async def find_session(self, ref: str) -> SessionInfo:
        """A session by exact id, unique prefix, spec id (latest run) or 'latest'."""
        known = await self.sessions()
        if not known:
            raise LedgerError(f"the ledger {self.location} holds no sessions")
        if ref == "latest":
            return known[-1]
        exact = [s for s in known if s.id == ref]
        if exact:
            return exact[0]
        by_spec = [s for s in known if s.spec_id == ref]
        if by_spec:
            return by_spec[-1]
        prefixed = [s for s in known if s.id.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        if prefixed:
            names = ", ".join(s.id for s in prefixed[:5])
            raise LedgerError(f"{ref!r} matches several sessions: {names}")
        raise LedgerError(f"no session {ref!r} in {self.location} (try `accord sessions`)")
