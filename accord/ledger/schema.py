"""The ledger's tables (SQLAlchemy Core).

The schema is managed by Alembic (``accord/ledger/migrations``); `Ledger.open` upgrades
every database to the head revision. Change a table here only together with a new
revision there.
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
)
from sqlalchemy import Table as _Table

metadata = MetaData()

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
    Index("ix_entries_session_kind", "session_id", "kind"),
)

entry_cards = _Table(
    "entry_cards",
    metadata,
    # Which values cards each move cites (body.move.justification.cited[].card): the
    # index behind `Ledger.entries_by_card`. Derived from `entries`; never verified.
    Column("session_id", String(128), primary_key=True),
    Column("card", String(255), primary_key=True),
    Column("idx", Integer, primary_key=True, autoincrement=False),
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
