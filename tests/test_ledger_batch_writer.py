"""`Ledger.session_writer`: a session staged in memory and stored in one transaction per
commit stores what `create_session`, `append`, the automatic checkpoints, `seal` and
`finish_session` store, on SQLite and PostgreSQL; a failed commit loses nothing an
earlier commit stored, and stores nothing of its own."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from accord.ledger import Envelope, Ledger, LedgerError, SessionWriter, Signer
from accord.ledger.store import describe_location
from tests.conftest import run
from tests.test_ledger_tamper import build_session

EVERY = 8  # checkpoint interval: a 43-entry session reaches it five times
BATCHES = (0, 5, 16, 17, 30)  # batch boundaries, some exactly on a multiple of EVERY


def _items(envs: list[Envelope]) -> list[tuple[Envelope, bytes]]:
    return [(e, e.canonical()) for e in envs]


def _said(rows: list[Any]) -> list[tuple[Any, ...]]:
    """Entries without what differs between two sessions (ids, keys, clocks, signatures)."""
    out = []
    for r in rows:
        body = r.body
        if r.kind == "session.open":
            body = {k: v for k, v in body.items() if k not in ("session_id", "keys")}
        out.append((r.idx, r.actor, r.seq, r.kind, body))
    return out


async def _the_old_way(ledger: Ledger, rounds: int, outcome: dict[str, Any]) -> str:
    sid, envs, ids = build_session(rounds)
    await ledger.create_session(sid, "spec", "title", "sha256:0")
    ledger.checkpoint_every(sid, ids["chair"], EVERY)
    for start, stop in zip(BATCHES, [*BATCHES[1:], len(envs)], strict=True):
        await ledger.append(sid, envs[start:stop])
    ledger.stop_checkpointing(sid)
    await ledger.seal(sid, ids["chair"], [ids["alice"], ids["bob"]])
    await ledger.finish_session(sid, outcome)
    return sid


async def _the_writer_way(
    ledger: Ledger, rounds: int, outcome: dict[str, Any], *, commits: bool, ahead: bool = False
) -> str:
    sid, envs, ids = build_session(rounds)
    writer = ledger.session_writer(sid, "spec", "title", "sha256:0", checkpoint_signer=ids["chair"], checkpoint_every=EVERY)
    assert isinstance(writer, SessionWriter)
    for start, stop in zip(BATCHES, [*BATCHES[1:], len(envs)], strict=True):
        stored = writer.append(_items(envs[start:stop]))
        assert [e.idx for e in stored] == list(range(start, stop))
        if ahead:  # inserted at once, in a transaction the next commit completes
            writer.write_ahead()
        if commits:  # a commit per batch, as a long session makes them
            await writer.commit()
    writer.seal(ids["chair"], [ids["alice"], ids["bob"]])
    writer.finish(outcome)
    await writer.commit()
    await writer.commit()  # nothing left: nothing to do
    return sid


@pytest.mark.parametrize("ahead", [False, True], ids=["", "written-ahead"])
@pytest.mark.parametrize("commits", [False, True], ids=["one-commit", "commit-per-batch"])
@pytest.mark.parametrize("rounds", [10, 11], ids=["seal-at-a-checkpoint", "seal-after"])
def test_the_writer_stores_what_the_single_calls_store(
    ledger_location: str, commits: bool, rounds: int, ahead: bool
) -> None:
    """10 rounds: 43 entries; 11 rounds: 47. With EVERY = 8 neither is a multiple; the
    sizes are checked to cover the case where the final seal lands on an automatic
    checkpoint's size (merged into it) by a session of 40 entries below."""
    outcome = {"agreement": {"housing": "a1"}, "reason": "all delegates accepted", "round": 3, "utilities": {"alice": 0.5}}

    async def go() -> None:
        async with await Ledger.open(ledger_location) as ledger:
            old = await _the_old_way(ledger, rounds, outcome)
            new = await _the_writer_way(ledger, rounds, outcome, commits=commits, ahead=ahead)
            # What this ledger object knows, and what a fresh one reads, agree.
            assert (await ledger.tree(new)).root() == (await ledger.checkpoints(new))[-1].root
        async with await Ledger.open(ledger_location) as ledger:
            assert _said(await ledger.entries(new)) == _said(await ledger.entries(old))
            assert await ledger.cards(new) == await ledger.cards(old)
            old_cps, new_cps = await ledger.checkpoints(old), await ledger.checkpoints(new)
            assert [c.size for c in new_cps] == [c.size for c in old_cps]
            assert [len(c.signatures) for c in new_cps] == [len(c.signatures) for c in old_cps]
            report = await ledger.verify(new)
            assert report.ok, report.problems
            assert report.checkpoints_checked == len(new_cps) and report.cosigners == ["alice", "bob"]
            sessions = {s.id: s for s in await ledger.sessions()}
            assert sessions[new].status == sessions[old].status == "ended"
            assert sessions[new].outcome == sessions[old].outcome == outcome
            assert (sessions[new].spec_id, sessions[new].title) == ("spec", "title")
            assert sessions[new].entries == sessions[old].entries

    run(go())


def test_a_seal_on_a_stored_checkpoint_adds_its_cosignatures(ledger_location: str) -> None:
    """A session of exactly 5 * EVERY entries: the final checkpoint has the size of an
    automatic one, stored by an earlier commit; the seal adds the cosignatures to it, as
    `Ledger.seal` does through `save_checkpoint`."""

    async def go() -> None:
        sid, envs, ids = build_session(9)  # 1 + 9 * 4 + 2 = 39 entries
        # One more of the chair's before its last two (`ended`, `session.close`), which
        # are signed again to follow it.
        signer = Signer(ids["chair"], sid, next_seq=envs[-2].seq)
        envs[-2:] = [signer.seal("note", {"n": 1}), *(signer.seal(e.kind, e.body) for e in envs[-2:])]
        assert len(envs) == 5 * EVERY
        async with await Ledger.open(ledger_location) as ledger:
            writer = ledger.session_writer(sid, "spec", "", "sha256:0", checkpoint_signer=ids["chair"], checkpoint_every=EVERY)
            writer.append(_items(envs))
            await writer.commit()
            assert [len(c.signatures) for c in await ledger.checkpoints(sid)] == [1] * 5
            sealed = writer.seal(ids["chair"], [ids["alice"], ids["bob"]])
            writer.finish({"reason": "done"})
            await writer.commit()
            stored = await ledger.checkpoints(sid)
            assert [c.size for c in stored] == [8, 16, 24, 32, 40]
            assert len(stored[-1].signatures) == 3 and stored[-1] == sealed
            assert (await ledger.verify(sid)).ok

    run(go())


def test_a_failed_commit_loses_nothing_stored_and_stores_nothing_of_its_own(ledger_location: str) -> None:
    """The second commit fails half-way through its transaction (its entries insert, then
    a checkpoint row that is already there refuses it): the ledger keeps exactly what the
    first commit stored, which still verifies, and the writer refuses to go on."""

    async def go() -> None:
        sid, envs, ids = build_session(5)  # 23 entries
        async with await Ledger.open(ledger_location) as ledger:
            writer = ledger.session_writer(sid, "spec", "", "sha256:0", checkpoint_signer=ids["chair"], checkpoint_every=EVERY)
            writer.append(_items(envs[:10]))  # a checkpoint at 8
            await writer.commit()
            # Someone else stores the checkpoint of 16 entries (a row this commit needs).
            async with ledger.engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO checkpoints (session_id, tree_size, root_hash, note, created_at) "
                        "VALUES (:s, 16, 'x', 'x', 'x')"
                    ),
                    {"s": sid},
                )
            writer.append(_items(envs[10:]))
            writer.finish({"reason": "done"})
            with pytest.raises(LedgerError, match="checkpoint .* refused"):
                await writer.commit()
            with pytest.raises(LedgerError, match="earlier commit failed"):
                await writer.commit()
            with pytest.raises(LedgerError, match="earlier commit failed"):
                writer.append(_items(envs[10:]))
            rows = await ledger.entries(sid)
            assert [r.idx for r in rows] == list(range(10))
            assert [r.envelope for r in rows] == [e.canonical().decode() for e in envs[:10]]
            notes = await ledger.checkpoint_notes(sid)
            assert len(notes) == 2 and notes[1] == "x"  # the checkpoint of 8, and the stray row
            info = await ledger.find_session(sid)
            assert info.status == "running" and info.outcome is None and info.entries == 10
            # The ledger has forgotten what it cached; what it reads again holds, and the
            # session can be continued the ordinary way.
            await ledger.append(sid, envs[10:12])
            assert (await ledger.tree(sid)).size == 12
        async with await Ledger.open(ledger_location) as ledger:
            async with ledger.engine.begin() as conn:
                await conn.execute(text("DELETE FROM checkpoints WHERE session_id = :s AND tree_size = 16"), {"s": sid})
            report = await ledger.verify(sid)
            assert report.ok, report.problems

    run(go())


def test_a_session_that_exists_is_refused_and_nothing_is_written(ledger_location: str) -> None:
    async def go() -> None:
        sid, envs, ids = build_session(2)
        async with await Ledger.open(ledger_location) as ledger:
            await ledger.create_session(sid, "spec", "", "sha256:0")
            await ledger.append(sid, envs[:3])
            # This ledger object knows the session: refused before anything is staged.
            with pytest.raises(LedgerError, match="already exists"):
                ledger.session_writer(sid, "spec", "", "sha256:0")
        async with await Ledger.open(ledger_location) as other:
            # Another one does not: the commit is refused, whole.
            writer = other.session_writer(sid, "spec", "", "sha256:0", checkpoint_signer=ids["chair"])
            writer.append(_items(envs))
            writer.seal(ids["chair"])
            writer.finish({"reason": "done"})
            with pytest.raises(LedgerError, match="already exists"):
                await writer.commit()
            assert len(await other.entries(sid)) == 3
            assert await other.checkpoints(sid) == []
            assert (await other.find_session(sid)).status == "running"

    run(go())


def test_bad_input_is_refused_before_anything_is_staged(tmp_path: Any) -> None:
    async def go() -> None:
        sid, envs, ids = build_session(2)
        _, strangers, _ = build_session(1)
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            with pytest.raises(LedgerError, match="note key name"):
                ledger.session_writer("has space", "spec", "", "sha256:0")
            with pytest.raises(ValueError, match="positive"):
                ledger.session_writer(sid, "spec", "", "sha256:0", checkpoint_every=0)
            writer = ledger.session_writer(sid, "spec", "", "sha256:0", checkpoint_signer=ids["chair"], checkpoint_every=2)
            writer.append(_items(envs[:3]))
            with pytest.raises(LedgerError, match="belongs to session"):
                writer.append(_items([*envs[3:5], strangers[0]]))  # the whole batch is refused
            assert writer.size == 3 and writer.staged == 3
            assert writer.append([]) == []
            writer.append(_items(envs[3:]))
            writer.finish({"reason": "done"})
            with pytest.raises(LedgerError, match="finished"):
                writer.append(_items(envs[:1]))
            with pytest.raises(LedgerError, match="finished already"):
                writer.finish({"reason": "again"})
            await writer.commit()
            assert [r.idx for r in await ledger.entries(sid)] == list(range(len(envs)))
            assert (await ledger.verify(sid)).ok
            assert await ledger.sessions() != [] and (await ledger.find_session(sid)).status == "ended"

    run(go())


def test_on_sqlite_a_commit_waits_for_another_writer_instead_of_failing(tmp_path: Any) -> None:
    """While another connection holds SQLite's write lock, the commit goes through the
    engine, which waits for the lock, rather than failing or stalling the event loop."""

    async def go() -> None:
        sid, envs, ids = build_session(2)
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            blocker = sqlite3.connect(describe_location(ledger.url), isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            writer = ledger.session_writer(sid, "spec", "", "sha256:0", checkpoint_signer=ids["chair"])
            writer.append(_items(envs))
            writer.seal(ids["chair"])
            writer.finish({"reason": "done"})
            loop = asyncio.get_running_loop()
            released = loop.create_future()

            def release() -> None:
                blocker.execute("ROLLBACK")
                released.set_result(None)

            loop.call_later(0.3, release)  # runs only if the loop is not stalled
            await writer.commit()
            assert released.done()
            blocker.close()
            assert len(await ledger.entries(sid)) == len(envs)
            assert (await ledger.verify(sid)).ok
            # And the next session goes the direct way again.
            sid2, envs2, ids2 = build_session(1)
            writer = ledger.session_writer(sid2, "spec", "", "sha256:0")
            writer.append(_items(envs2))
            await writer.commit()
            assert len(await ledger.entries(sid2)) == len(envs2)

    run(go())


def test_a_sessions_row_is_written_with_the_time_the_writer_was_made(tmp_path: Any) -> None:
    async def go() -> None:
        sid, envs, ids = build_session(1)
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            writer = ledger.session_writer(sid, "spec", "", "sha256:0")
            await asyncio.sleep(0.01)
            before = await ledger.sessions()
            await ledger.create_session("later", "spec", "", "sha256:0")
            writer.append(_items(envs))
            await writer.commit()
            assert before == []
            assert [s.id for s in await ledger.sessions()] == [sid, "later"]  # ordered by creation

    run(go())


def test_an_in_memory_ledger_is_written_through_the_engine() -> None:
    async def go() -> None:
        sid, envs, ids = build_session(2)
        async with await Ledger.open("sqlite://") as ledger:
            writer = ledger.session_writer(sid, "spec", "", "sha256:0", checkpoint_signer=ids["chair"])
            writer.append(_items(envs))
            writer.seal(ids["chair"], [ids["alice"]])
            writer.finish({"reason": "done"})
            await writer.commit()
            assert len(await ledger.entries(sid)) == len(envs)
            assert (await ledger.verify(sid)).ok

    run(go())


def test_identity_is_required_only_for_checkpoints(tmp_path: Any) -> None:
    async def go() -> None:
        sid, envs, ids = build_session(3)
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            writer = ledger.session_writer(sid, "spec", "", "sha256:0", checkpoint_every=2)
            writer.append(_items(envs))
            await writer.commit()
            assert await ledger.checkpoints(sid) == []
            assert (await ledger.verify(sid)).ok
            sealed = writer.seal(ids["chair"])
            await writer.commit()
            assert [c.size for c in await ledger.checkpoints(sid)] == [sealed.size] == [len(envs)]
            assert (await ledger.verify(sid)).ok

    run(go())


def test_a_relative_sqlite_url_is_written_where_it_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sqlite:///rel.db` names a file relative to the working directory: the writer's own
    connection must find it there (a relative path has no file URI)."""
    monkeypatch.chdir(tmp_path)
    sid, envs, ids = build_session(2)

    async def go() -> None:
        async with await Ledger.open("sqlite:///rel.db") as ledger:
            writer = ledger.session_writer(sid, "t", "title", "sha256:0", checkpoint_signer=ids["chair"])
            writer.append([(e, e.canonical()) for e in envs])
            await writer.commit()
            assert len(await ledger.entries(sid)) == len(envs)
            assert (await ledger.verify(sid)).ok

    run(go())
