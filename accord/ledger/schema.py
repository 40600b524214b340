"""The ledger's tables (SQLAlchemy Core).

The schema is managed by Alembic (``accord/ledger/migrations``); `Ledger.open` upgrades
every database to the head revision. Change a table here only together with a new
revision there.

On SQLite `entries` and `entry_cards` are ``WITHOUT ROWID`` tables, clustered on their
primary keys: an append writes each row once, into the b-tree its readers use, instead of
into a rowid table plus a separate primary-key index (revision 0003).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    literal_column,
    or_,
)
from sqlalchemy import Table as _Table
from sqlalchemy.sql.elements import ColumnElement

metadata = MetaData()

MARKER_KINDS = ("ended", "session.close", "session.open", "session.resume")
"""Entry kinds that mark a session's course, a few per session however long it runs:
the only kinds `ix_entries_markers` indexes, so that `Ledger.entries(kinds=...)` finds
them without reading the whole session, while appends of other kinds skip the index.
Sorted: revision 0003 spells the same condition in the same order."""

sessions = _Table(
    "sessions",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("spec_id", String(64), nullable=False),
    Column("title", Text, nullable=False, default=""),
    Column("created_at", String(40), nullable=False),
    Column("spec_hash", String(80), nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", Text, nullable=True),
)

entries = _Table(
    "entries",
    metadata,
    Column("session_id", String(128), primary_key=True),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("actor", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
    # RFC 9162 leaf hash (hex) of `envelope`: leaf `idx` of the session's Merkle tree.
    # '' only in rows written by code older than the tree (then computed when read).
    Column("leaf_hash", String(64), nullable=False, server_default=""),
    # The unique constraint also serves queries by actor (delegate = constituency id).
    UniqueConstraint("session_id", "actor", "seq", name="uq_entries_actor_seq"),
    sqlite_with_rowid=False,
)


def marker_kinds(kind: ColumnElement[str]) -> ColumnElement[bool]:
    """``kind = 'ended' OR kind = 'session.close' OR ...``, the condition of
    `ix_entries_markers`, with the kinds as literals: SQLite uses a partial index only for
    a query that repeats its condition, and PostgreSQL only when the condition is provable
    without knowing bound parameters. Equalities, not ``IN``: SQLite evaluates an ``IN``
    list in an index condition by building a temporary table on every insert (measured:
    -20% rows/s), an ``OR`` of equalities costs nothing measurable."""
    return or_(*(kind == literal_column(f"'{k}'") for k in MARKER_KINDS))


# A partial index, where there was an index of every entry's (session_id, kind): that one
# cost each append an index write, and queries of common kinds (such as "move") read the
# whole session anyway; this one holds a few rows per session.
Index(
    "ix_entries_markers",
    entries.c.session_id,
    entries.c.kind,
    sqlite_where=marker_kinds(entries.c.kind),
    postgresql_where=marker_kinds(entries.c.kind),
)

entry_cards = _Table(
    "entry_cards",
    metadata,
    # Which values cards each move cites (body.move.justification.cited[].card): the
    # index behind `Ledger.entries_by_card`. Derived from `entries`; never verified.
    Column("session_id", String(128), primary_key=True),
    Column("card", String(255), primary_key=True),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

checkpoints = _Table(
    "checkpoints",
    metadata,
    # Signed tree heads (C2SP tlog-checkpoint notes with all their signature lines).
    Column("session_id", String(128), primary_key=True),
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
)
