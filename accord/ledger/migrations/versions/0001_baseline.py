"""Baseline: the ledger as it was before migrations (sessions and hash-chained entries).

Every database that `metadata.create_all` made before Alembic managed the schema has
exactly these tables; `Ledger.open` stamps such a database with this revision and
upgrades it from here.

Revision ID: 0001_baseline
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("spec_id", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("spec_hash", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.Text, nullable=True),
    )
    op.create_table(
        "entries",
        sa.Column("session_id", sa.String(128), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("session_id", "actor", "seq", name="uq_entries_actor_seq"),
    )
    op.create_index("ix_entries_session_kind", "entries", ["session_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_entries_session_kind", table_name="entries")
    op.drop_table("entries")
    op.drop_table("sessions")
