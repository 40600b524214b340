"""The ledger's tables (SQLAlchemy Core)."""

from __future__ import annotations

from sqlalchemy import (
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
    UniqueConstraint("session_id", "actor", "seq", name="uq_entries_actor_seq"),
    Index("ix_entries_session_kind", "session_id", "kind"),
)
