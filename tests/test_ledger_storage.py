"""Storage: Alembic-managed schema (old databases upgraded without loss), batched appends
(one INSERT per table per batch), leaf hashes, and the indexes by actor and by card."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    insert,
    inspect,
    text,
)
from sqlalchemy.ext.asyncio import create_async_engine

from accord.ledger import Ledger
from accord.ledger.chain import GENESIS, entry_hash
from accord.ledger.merkle import leaf_hash
from accord.ledger.migrate import head_revision
from tests.conftest import run
from tests.test_ledger_tamper import CARDS, build_session


def _legacy_metadata() -> MetaData:
    """The schema exactly as `metadata.create_all` made it before migrations existed."""
    md = MetaData()
    Table(
        "sessions", md,
        Column("id", String(128), primary_key=True),
        Column("spec_id", String(64), nullable=False),
        Column("title", Text, nullable=False, default=""),
        Column("created_at", String(40), nullable=False),
        Column("spec_hash", String(80), nullable=False),
        Column("status", String(16), nullable=False),
        Column("outcome", Text, nullable=True),
    )
    Table(
        "entries", md,
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
    return md


def _legacy_rows(sid: str, envs: list[Any]) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for i, env in enumerate(envs):
        raw = env.canonical()
        digest = entry_hash(prev, raw)
        rows.append({"session_id": sid, "idx": i, "actor": env.actor, "seq": env.seq, "kind": env.kind,
                     "envelope": raw.decode(), "prev_hash": prev, "entry_hash": digest})
        prev = digest
    return rows


@pytest.fixture
def legacy_location(ledger_location: str) -> Any:
    """A database holding the pre-migration schema: a fresh SQLite file, or a fresh
    PostgreSQL schema (so the shared test database is not disturbed)."""
    if ledger_location.startswith("postgresql"):
        schema = f"accord_legacy_{secrets.token_hex(4)}"

        async def ddl(statement: str) -> None:
            engine = create_async_engine(ledger_location)
            try:
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
            finally:
                await engine.dispose()

        asyncio.run(ddl(f"CREATE SCHEMA {schema}"))
        options = {"connect_args": {"server_settings": {"search_path": schema}}}
        yield ledger_location, options
        asyncio.run(ddl(f"DROP SCHEMA {schema} CASCADE"))
    else:
        yield ledger_location, {}


def test_a_database_of_the_old_schema_is_upgraded_without_loss(legacy_location: Any) -> None:
    location, options = legacy_location

    async def go() -> None:
        from accord.ledger.store import ledger_url

        sid, envs, ids = build_session(4)
        old = _legacy_rows(sid, envs)
        engine = create_async_engine(ledger_url(location), **options)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_legacy_metadata().create_all)
                md = _legacy_metadata()
                await conn.execute(insert(md.tables["sessions"]), [{"id": sid, "spec_id": "t", "title": "old",
                    "created_at": "2024-01-01T00:00:00Z", "spec_hash": "sha256:0", "status": "ended",
                    "outcome": '{"agreement": null}'}])
                await conn.execute(insert(md.tables["entries"]), old)
        finally:
            await engine.dispose()

        async with await Ledger.open(location, engine_options=options) as ledger:
            async with ledger.engine.connect() as conn:
                assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar() == head_revision()
                tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            assert {"sessions", "entries", "entry_cards", "checkpoints", "alembic_version"} <= tables
            rows = await ledger.entries(sid)
            assert [(r.idx, r.envelope, r.prev_hash, r.entry_hash) for r in rows] == [
                (o["idx"], o["envelope"], o["prev_hash"], o["entry_hash"]) for o in old
            ]
            assert all(r.leaf_hash == leaf_hash(r.envelope.encode()).hex() for r in rows)
            info = await ledger.find_session(sid)
            assert (info.title, info.status, info.outcome) == ("old", "ended", {"agreement": None})
            assert await ledger.cards(sid) == {"a-home": 4, "a-green": 2, "b-books": 4, "b-jobs": 2}
            report = await ledger.verify(sid)
            assert report.ok and any("no checkpoint" in n for n in report.notes)
            # The upgraded ledger goes on: a checkpoint now, later appends chain on.
            cp = await ledger.seal(sid, ids["chair"], [ids["alice"], ids["bob"]])
            assert cp.size == len(envs)
            assert (await ledger.verify(sid)).covered == len(envs)
        # Opening again is a no-op at head.
        async with await Ledger.open(location, engine_options=options) as again:
            assert len(await again.entries(sid)) == len(envs)

    run(go())


def test_a_new_database_is_at_head_and_sqlite_is_in_wal_mode(tmp_path: Path) -> None:
    async def go() -> None:
        async with await Ledger.open(tmp_path / "new.db"):
            pass

    run(go())
    with sqlite3.connect(tmp_path / "new.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (head_revision(),)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("new.db")) == []


def test_one_insert_per_table_per_batch_and_leaf_hashes_stored(ledger_location: str) -> None:
    async def go() -> None:
        sid, envs, _ = build_session(20)
        async with await Ledger.open(ledger_location) as ledger:
            await ledger.create_session(sid, "t", "test", "sha256:0")
            statements: list[str] = []

            def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                if statement.lstrip().upper().startswith("INSERT"):
                    statements.append(statement.split("(")[0].split()[-1].strip('"'))

            event.listen(ledger.engine.sync_engine, "before_cursor_execute", count)
            stored = await ledger.append(sid, envs)
            event.remove(ledger.engine.sync_engine, "before_cursor_execute", count)
            assert sorted(statements) == ["entries", "entry_cards"]
            assert [e.leaf_hash for e in stored] == [leaf_hash(e.canonical()).hex() for e in envs]
            tree = await ledger.tree(sid)
            assert [tree.leaf_hash_at(i).hex() for i in range(tree.size)] == [e.leaf_hash for e in stored]

    run(go())


def test_queries_by_actor_and_by_values_card(ledger_location: str) -> None:
    async def go() -> None:
        sid, envs, _ = build_session(6)
        async with await Ledger.open(ledger_location) as ledger:
            await ledger.create_session(sid, "t", "test", "sha256:0")
            await ledger.append(sid, envs[:9])
            await ledger.append(sid, envs[9:])
            alice = await ledger.entries_by_actor(sid, "alice")
            assert [r.seq for r in alice] == list(range(1, 7)) and {r.kind for r in alice} == {"move"}
            chair = await ledger.entries_by_actor(sid, "chair")
            assert len(chair) == len(envs) - 12
            home = await ledger.entries_by_card(sid, "a-home")
            assert [r.idx for r in home] == [r.idx for r in alice]
            green = await ledger.entries_by_card(sid, "a-green")  # cited in odd rounds only
            assert [r.body["round"] for r in green] == [1, 3, 5]
            assert all("a-green" in {c["card"] for c in r.body["move"]["justification"]["cited"]} for r in green)
            assert await ledger.entries_by_card(sid, "no-such-card") == []
            assert await ledger.cards(sid) == {"a-green": 3, "a-home": 6, "b-books": 6, "b-jobs": 3}
            assert set(CARDS["bob"]) <= set(await ledger.cards(sid))

    run(go())


def test_a_malformed_citation_is_kept_in_the_log_but_not_indexed(tmp_path: Path) -> None:
    from accord.ledger import Signer
    from accord.ledger.store import cited_cards

    assert cited_cards("move", {"move": {"justification": {"cited": [{"card": "x" * 300}, {"card": 3}, "y", {"card": "ok"}, {"card": "ok"}]}}}) == ["ok"]
    assert cited_cards("refusal", {"move": {"justification": {"cited": [{"card": "a"}]}}}) == []

    async def go() -> None:
        sid, envs, ids = build_session(1)
        odd = Signer(ids["alice"], sid, next_seq=2).seal("move", {"move": {"justification": {"cited": "nonsense"}}})
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            await ledger.create_session(sid, "t", "test", "sha256:0")
            await ledger.append(sid, [*envs[:3], odd])
            assert len(await ledger.entries(sid)) == 4
            assert await ledger.cards(sid) == {"a-home": 1, "a-green": 1}

    run(go())
