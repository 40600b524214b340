"""Leaner entries: no index on every entry's kind; on SQLite, tables clustered on their keys.

* ``ix_entries_session_kind`` is dropped. Every append paid an index write for it, and on
  SQLite the queries by kind never used it (their ``ORDER BY idx`` made the primary key
  the planner's choice). ``ix_entries_markers`` takes its place: a partial index over the
  few kinds that mark a session's course (``session.open``, ``ended``, ...), so those
  are found without reading a whole session (on PostgreSQL too, which did use the old
  index), and other appends skip it.
* On SQLite, ``entries`` and ``entry_cards`` are rebuilt as ``WITHOUT ROWID`` tables,
  every row copied: each row is then stored once, in its primary key's b-tree, instead of
  in a rowid table and again in a primary-key index. PostgreSQL keeps heap tables; only
  the indexes change there.

`downgrade` restores revision 0002's shape (rowid tables, the kind index), rows kept.

Revision ID: 0003_lean_entries
Revises: 0002_merkle
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_lean_entries"
down_revision = "0002_merkle"
branch_labels = None
depends_on = None

# `accord.ledger.schema.marker_kinds` at this revision, spelled out: a revision must not
# change when the schema module does. SQLite uses a partial index only for a query that
# repeats its condition, in the same order. Equalities, not IN: an IN list in an index
# condition costs SQLite a temporary table on every insert.
_MARKERS = (
    "kind = 'ended' OR kind = 'session.close' OR kind = 'session.open' OR kind = 'session.resume'"
)


def _entries_columns() -> list[sa.SchemaItem]:
    return [
        sa.Column("session_id", sa.String(128), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("leaf_hash", sa.String(64), nullable=False, server_default=""),
        sa.UniqueConstraint("session_id", "actor", "seq", name="uq_entries_actor_seq"),
    ]


def _entry_cards_columns() -> list[sa.SchemaItem]:
    return [
        sa.Column("session_id", sa.String(128), primary_key=True),
        sa.Column("card", sa.String(255), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    ]


_TABLES = {
    "entries": (_entries_columns, ("session_id", "idx")),
    "entry_cards": (_entry_cards_columns, ("session_id", "card", "idx")),
}


def _rebuild(name: str, *, with_rowid: bool) -> None:
    """Recreate a SQLite table with or without rowids, copying every row (SQLite cannot
    change that in place). The copy goes in primary-key order, the clustered order."""
    columns, key = _TABLES[name]
    staging = f"_{name}_0003"
    op.create_table(staging, *columns(), sqlite_with_rowid=with_rowid)
    names = ", ".join(c.name for c in columns() if isinstance(c, sa.Column))
    op.execute(f"INSERT INTO {staging} ({names}) SELECT {names} FROM {name} ORDER BY {', '.join(key)}")
    op.drop_table(name)  # its indexes go with it
    op.rename_table(staging, name)


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if _is_sqlite():
        _rebuild("entries", with_rowid=False)
        _rebuild("entry_cards", with_rowid=False)
    else:
        op.drop_index("ix_entries_session_kind", table_name="entries")
    markers = sa.text(_MARKERS)
    op.create_index(
        "ix_entries_markers",
        "entries",
        ["session_id", "kind"],
        sqlite_where=markers,
        postgresql_where=markers,
    )


def downgrade() -> None:
    if _is_sqlite():
        _rebuild("entries", with_rowid=True)
        _rebuild("entry_cards", with_rowid=True)
    else:
        op.drop_index("ix_entries_markers", table_name="entries")
    op.create_index("ix_entries_session_kind", "entries", ["session_id", "kind"])
