"""Merkle leaves, checkpoints and the values-card index.

* ``entries.leaf_hash``: the RFC 9162 leaf hash of each stored envelope, backfilled;
* ``checkpoints``: signed tree heads (C2SP tlog-checkpoint notes);
* ``entry_cards``: the cards each move cites, backfilled from the stored moves.

Revision ID: 0002_merkle
Revises: 0001_baseline
Create Date: 2025-01-02
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0002_merkle"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

_BATCH = 5000


def _cited_cards(envelope: str) -> list[str]:
    from accord.ledger.store import cited_cards

    try:
        doc = json.loads(envelope)
    except ValueError:
        return []
    return cited_cards(doc.get("kind"), doc.get("body")) if isinstance(doc, dict) else []


def upgrade() -> None:
    # A server default lets SQLite add a NOT NULL column without rebuilding the table.
    op.add_column(
        "entries", sa.Column("leaf_hash", sa.String(64), nullable=False, server_default="")
    )
    op.create_table(
        "entry_cards",
        sa.Column("session_id", sa.String(128), primary_key=True),
        sa.Column("card", sa.String(255), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    )
    op.create_table(
        "checkpoints",
        sa.Column("session_id", sa.String(128), primary_key=True),
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    entries = sa.table(
        "entries",
        sa.column("session_id"),
        sa.column("idx"),
        sa.column("envelope"),
        sa.column("leaf_hash"),
    )
    entry_cards = sa.table("entry_cards", sa.column("session_id"), sa.column("card"), sa.column("idx"))
    update = (
        sa.update(entries)
        .where(entries.c.session_id == sa.bindparam("s"), entries.c.idx == sa.bindparam("i"))
        .values(leaf_hash=sa.bindparam("h"))
    )
    after: tuple[str, int] = ("", -1)
    while True:
        rows = conn.execute(
            sa.select(entries.c.session_id, entries.c.idx, entries.c.envelope)
            .where(
                sa.or_(
                    entries.c.session_id > after[0],
                    sa.and_(entries.c.session_id == after[0], entries.c.idx > after[1]),
                )
            )
            .order_by(entries.c.session_id, entries.c.idx)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        hashes, cards = [], []
        for session_id, idx, envelope in rows:
            digest = hashlib.sha256(b"\x00" + envelope.encode("utf-8")).hexdigest()
            hashes.append({"s": session_id, "i": idx, "h": digest})
            for card in _cited_cards(envelope):
                cards.append({"session_id": session_id, "card": card, "idx": idx})
        conn.execute(update, hashes)
        if cards:
            conn.execute(sa.insert(entry_cards), cards)
        after = (rows[-1][0], rows[-1][1])


def downgrade() -> None:
    op.drop_table("checkpoints")
    op.drop_table("entry_cards")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("leaf_hash")
