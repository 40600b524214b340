"""Revision 0003, the leaner schema: a ledger written at revision 0002 upgrades keeping every
row and still verifies; downgrading restores 0002's shape; lookups of marker kinds go
through the partial index; the card index extracts exactly what it did."""

from __future__ import annotations

import asyncio
import re
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.schema import CreateIndex

from accord.ledger import Ledger
from accord.ledger.chain import GENESIS, entry_hash
from accord.ledger.checkpoint import cosign, origin_for, sign_checkpoint
from accord.ledger.merkle import MerkleTree, leaf_hash
from accord.ledger.migrate import MIGRATIONS, head_revision
from accord.ledger.schema import MARKER_KINDS, metadata
from accord.ledger.store import LedgerError, cited_cards, ledger_url
from tests.conftest import run
from tests.test_ledger_tamper import CARDS, build_session

REV_0002 = "0002_merkle"


def _alembic(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@pytest.fixture
def private_location(ledger_location: str) -> Any:
    """(location, engine options): a fresh SQLite file, or a fresh PostgreSQL schema, so
    that building and migrating a 0002 database leaves the shared test database alone."""
    if not ledger_location.startswith("postgresql"):
        yield ledger_location, {}
        return
    schema = f"accord_0003_{secrets.token_hex(4)}"

    async def ddl(statement: str) -> None:
        engine = create_async_engine(ledger_location)
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text(statement))
        finally:
            await engine.dispose()

    asyncio.run(ddl(f"CREATE SCHEMA {schema}"))
    yield ledger_location, {"connect_args": {"server_settings": {"search_path": schema}}}
    asyncio.run(ddl(f"DROP SCHEMA {schema} CASCADE"))


async def _build_0002(location: str, options: dict[str, Any], rounds: int = 6) -> dict[str, Any]:
    """A database at revision 0002 holding a sealed session, as 0002-era code wrote it:
    entries with leaf hashes, the card index, a checkpoint co-signed by both delegates."""
    sid, envs, ids = build_session(rounds)
    rows, cards, leaves, prev = [], [], [], GENESIS
    for i, env in enumerate(envs):
        raw = env.canonical()
        digest = entry_hash(prev, raw)
        leaves.append(leaf_hash(raw))
        rows.append({"session_id": sid, "idx": i, "actor": env.actor, "seq": env.seq, "kind": env.kind,
                     "envelope": raw.decode(), "prev_hash": prev, "entry_hash": digest,
                     "leaf_hash": leaves[-1].hex()})
        cards += [{"session_id": sid, "card": c, "idx": i} for c in cited_cards(env.kind, env.body)]
        prev = digest
    checkpoint = sign_checkpoint(origin_for(sid), len(envs), MerkleTree(leaves).root(), ids["chair"])
    for witness in ("alice", "bob"):
        checkpoint = cosign(checkpoint, ids[witness])
    engine = create_async_engine(ledger_url(location), **options)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic(c), REV_0002))
            t = {name: sa.table(name, *(sa.column(k) for k in keys)) for name, keys in (
                ("sessions", ("id", "spec_id", "title", "created_at", "spec_hash", "status", "outcome")),
                ("entries", tuple(rows[0])),
                ("entry_cards", ("session_id", "card", "idx")),
                ("checkpoints", ("session_id", "tree_size", "root_hash", "note", "created_at")),
            )}
            await conn.execute(sa.insert(t["sessions"]), [{"id": sid, "spec_id": "t", "title": "old",
                "created_at": "2026-01-01T00:00:00Z", "spec_hash": "sha256:0", "status": "ended",
                "outcome": '{"agreement": null}'}])
            await conn.execute(sa.insert(t["entries"]), rows)
            await conn.execute(sa.insert(t["entry_cards"]), cards)
            await conn.execute(sa.insert(t["checkpoints"]), [{"session_id": sid, "tree_size": len(envs),
                "root_hash": checkpoint.root_hex, "note": checkpoint.text, "created_at": "2026-01-01T00:00:01Z"}])
            assert (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar() == REV_0002
    finally:
        await engine.dispose()
    return {"sid": sid, "envs": envs, "ids": ids, "rows": rows, "cards": cards, "note": checkpoint.text}


def _shape(conn: Connection) -> dict[str, Any]:
    """What a revision decides about `entries` and `entry_cards`: columns, indexes (with
    their conditions) and, on SQLite, whether the table has rowids."""
    inspector = sa.inspect(conn)
    shape: dict[str, Any] = {}
    for table in ("entries", "entry_cards"):
        shape[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default")) for c in inspector.get_columns(table)],
            "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)
                              if not i["name"].startswith(("uq_", "sqlite_autoindex"))),
        }
        if conn.dialect.name == "sqlite":
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar()
            shape[table]["without rowid"] = sql.rstrip().upper().endswith("WITHOUT ROWID")
    return shape


async def _fresh_shape(location: str, options: dict[str, Any], revision: str) -> dict[str, Any]:
    engine = create_async_engine(ledger_url(location), **options)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic(c), revision))
            return await conn.run_sync(_shape)
    finally:
        await engine.dispose()


def test_a_0002_ledger_upgrades_keeping_every_row_and_still_verifies(private_location: Any) -> None:
    location, options = private_location

    async def go() -> None:
        old = await _build_0002(location, options)
        sid, envs = old["sid"], old["envs"]
        async with await Ledger.open(location, engine_options=options) as ledger:
            async with ledger.engine.connect() as conn:
                assert (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar() == head_revision()
                shape = await conn.run_sync(_shape)
            assert [n for n, _ in shape["entries"]["indexes"]] == ["ix_entries_markers"]
            if location.endswith(".db"):
                assert shape["entries"]["without rowid"] and shape["entry_cards"]["without rowid"]
            stored = await ledger.entries(sid)
            assert [
                (r.session_id, r.idx, r.actor, r.seq, r.kind, r.envelope, r.prev_hash, r.entry_hash, r.leaf_hash)
                for r in stored
            ] == [tuple(row.values()) for row in old["rows"]]
            assert await ledger.checkpoint_notes(sid) == [old["note"]]
            assert await ledger.cards(sid) == {"a-home": 6, "a-green": 3, "b-books": 6, "b-jobs": 3}
            assert [r.idx for r in await ledger.entries_by_card(sid, "a-green")] == sorted(
                c["idx"] for c in old["cards"] if c["card"] == "a-green"
            )
            info = await ledger.find_session(sid)
            assert (info.title, info.status, info.entries) == ("old", "ended", len(envs))
            report = await ledger.verify(sid)
            assert report.ok, report.problems
            assert report.covered == len(envs) and sorted(report.cosigners) == ["alice", "bob"]
            # The constraints came across: a second message under a used sequence number
            # is refused, and nothing of that batch is stored.
            with pytest.raises(LedgerError, match="duplicate sequence number"):
                await ledger.append(sid, [envs[3]])
            assert len(await ledger.entries(sid)) == len(envs)
        # Opening again is a no-op at head.
        async with await Ledger.open(location, engine_options=options) as again:
            assert (await again.verify(sid)).ok

    run(go())


def test_downgrade_restores_the_0002_shape_and_keeps_the_rows(private_location: Any) -> None:
    location, options = private_location

    async def go() -> None:
        sid, envs, ids = build_session(3)
        async with await Ledger.open(location, engine_options=options) as ledger:
            await ledger.create_session(sid, "t", "test", "sha256:0")
            await ledger.append(sid, envs)
            await ledger.seal(sid, ids["chair"], [ids["alice"]])
            before = await ledger.entries(sid)
            cards = await ledger.cards(sid)
            async with ledger.engine.begin() as conn:
                await conn.run_sync(lambda c: command.downgrade(_alembic(c), REV_0002))
            async with ledger.engine.connect() as conn:
                downgraded = await conn.run_sync(_shape)
                assert (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar() == REV_0002
            assert await ledger.entries(sid) == before and await ledger.cards(sid) == cards
        if location.endswith(".db"):  # a fresh 0002 database to compare with
            reference = await _fresh_shape(str(Path(location).with_name("ref.db")), {}, REV_0002)
        else:
            reference = await _fresh_shape_in_schema(location, REV_0002)
        assert downgraded == reference
        # And up again (Ledger.open upgrades): every row still there, still verifies.
        async with await Ledger.open(location, engine_options=options) as ledger:
            assert await ledger.entries(sid) == before
            assert (await ledger.verify(sid)).covered == len(envs)

    run(go())


async def _fresh_shape_in_schema(location: str, revision: str) -> dict[str, Any]:
    schema = f"accord_0003_ref_{secrets.token_hex(4)}"
    engine = create_async_engine(location)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        options = {"connect_args": {"server_settings": {"search_path": schema}}}
        return await _fresh_shape(location, options, revision)
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        await engine.dispose()


def test_the_schema_module_matches_what_the_migrations_build(private_location: Any) -> None:
    location, options = private_location

    def compare(conn: Connection) -> list[Any]:
        return compare_metadata(MigrationContext.configure(conn), metadata)

    async def go() -> None:
        async with await Ledger.open(location, engine_options=options) as ledger:
            async with ledger.engine.connect() as conn:
                assert await conn.run_sync(compare) == []
                if location.endswith(".db"):
                    # The partial index's condition, which Alembic does not compare: the
                    # queries spell it from the schema module, SQLite wants it verbatim.
                    built = (await conn.exec_driver_sql(
                        "SELECT sql FROM sqlite_master WHERE name = 'ix_entries_markers'"
                    )).scalar()
                    index = next(i for i in metadata.tables["entries"].indexes if i.name == "ix_entries_markers")
                    declared = str(CreateIndex(index).compile(dialect=sqlite_dialect.dialect()))
                    assert _condition(built) == _condition(declared)

    run(go())


def _condition(create_index: str) -> str:
    where = create_index.split(" WHERE ", 1)[1]
    return re.sub(r"[\s()]+", " ", where).strip()


def test_marker_kinds_are_read_through_the_partial_index(ledger_location: str) -> None:
    async def go() -> None:
        sid, envs, _ = build_session(4)
        async with await Ledger.open(ledger_location) as ledger:
            await ledger.create_session(sid, "t", "test", "sha256:0")
            await ledger.append(sid, envs)
            everything = await ledger.entries(sid)
            for kinds in (["session.open"], ["session.open", "ended"], ["ended", "session.close"],
                          ["session.open", "ended", "move"], ["move"], ["call", "session.close"], ["nothing"]):
                assert await ledger.entries(sid, kinds=kinds) == [e for e in everything if e.kind in kinds], kinds
            assert set(await ledger.session_keys(sid)) == {"chair", "alice", "bob"}

            statements: list[tuple[str, Any]] = []

            def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
                if statement.lstrip().upper().startswith("SELECT"):  # not SQLite's BEGIN
                    statements.append((statement, parameters))

            sa.event.listen(ledger.engine.sync_engine, "before_cursor_execute", capture)
            await ledger.entries(sid, kinds=["session.open", "ended"])
            sa.event.remove(ledger.engine.sync_engine, "before_cursor_execute", capture)
            (statement, parameters), = statements
            async with ledger.engine.connect() as conn:
                if ledger_location.startswith("postgresql"):
                    # A few rows: only with sequential scans off does PostgreSQL show
                    # which index it would take once the session is long.
                    await conn.exec_driver_sql("SET enable_seqscan = off")
                    explain = "EXPLAIN " + statement
                else:
                    explain = "EXPLAIN QUERY PLAN " + statement
                plan = " ".join(str(row[-1]) for row in await conn.exec_driver_sql(explain, parameters))
            assert "ix_entries_markers" in plan, plan

    run(go())


def test_marker_kinds_are_sorted_and_the_kind_index_is_gone(tmp_path: Path) -> None:
    assert list(MARKER_KINDS) == sorted(MARKER_KINDS)

    async def go() -> None:
        async with await Ledger.open(tmp_path / "new.db"):
            pass

    run(go())
    with sqlite3.connect(tmp_path / "new.db") as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "ix_entries_session_kind" not in names and "ix_entries_markers" in names


def _cited_cards_0002(kind: object, body: object) -> list[str]:
    """`cited_cards` as revision 0002 shipped it: what the index held then."""
    if kind != "move" or not isinstance(body, dict):
        return []
    move = body.get("move")
    just = move.get("justification") if isinstance(move, dict) else None
    cited = just.get("cited") if isinstance(just, dict) else None
    if not isinstance(cited, list):
        return []
    cards: list[str] = []
    for item in cited:
        card = item.get("card") if isinstance(item, dict) else None
        if isinstance(card, str) and 0 < len(card) <= 255 and card not in cards:
            cards.append(card)
    return cards


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"move": None},
        {"move": "offer"},
        {"move": ["justification"]},
        {"move": {}},
        {"move": {"justification": "cited"}},
        {"move": {"justification": ["cited"]}},
        {"move": {"justification": {"cited": None}}},
        {"move": {"justification": {"cited": "card"}}},
        {"move": {"justification": {"cited": {"card": "x"}}}},
        {"move": {"justification": {"cited": []}}},
        {"move": {"justification": {"cited": [None, 1, "a", ["card"], {"card": None}, {"card": ""}]}}},
        {"move": {"justification": {"cited": [{"card": "a"}, {"card": "b"}, {"card": "a"}, {"card": "c" * 256}]}}},
        {"move": {"justification": {"cited": [{"card": "c" * 255, "contribution": 1}]}}},
        {"move": {"justification": {"cited": [{"card": c} for c in CARDS["alice"]]}}, "round": 2},
    ],
)
def test_the_card_index_holds_exactly_what_it_did(body: dict[str, Any]) -> None:
    for kind in ("move", "call"):
        assert cited_cards(kind, body) == _cited_cards_0002(kind, body)
    assert cited_cards("move", [body]) == [] and cited_cards("move", "body") == []
