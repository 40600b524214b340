"""The busless run writes its session through `Ledger.session_writer`: one transaction
when it ends (or every FLUSH_ENTRIES entries), what was recorded stored when it fails,
and new session ids drawn again when the ledger has just used one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import accord.local_session as local_session
from accord.ledger import Ledger, LedgerError
from accord.local_session import run_local
from accord.progress import SessionEvent
from accord.session_plan import SessionPlan, load_plan
from protocols.events import Call
from protocols.moves import Move
from tests.conftest import FIXTURES, run
from tests.test_local_session import _assert_same

TINY = FIXTURES / "tiny.yaml"


class _Breaks:
    """The wrapped strategy, until its `at`-th call: then it raises."""

    def __init__(self, inner: Any, at: int) -> None:
        self.inner, self.at, self.calls = inner, at, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def respond(self, call: Call) -> Move:
        self.calls += 1
        if self.calls == self.at:
            raise RuntimeError("the strategy broke")
        return self.inner.respond(call)


def _breaking_plan(at: int) -> SessionPlan:
    plan = load_plan(TINY)[0]
    first = plan.participants[0].delegate
    first.strategy = _Breaks(first.strategy, at)  # type: ignore[assignment]
    return plan


@pytest.mark.parametrize("flush", [None, 5], ids=["one-transaction", "flushed-every-5"])
def test_a_failed_run_stores_what_was_recorded_before_the_error(
    flush: int | None, ledger_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if flush is not None:
        monkeypatch.setattr(local_session, "FLUSH_ENTRIES", flush)
    seen: list[SessionEvent] = []

    async def go() -> None:
        async with await Ledger.open(ledger_location) as ledger:
            before = {s.id for s in await ledger.sessions()}
            with pytest.raises(RuntimeError, match="the strategy broke"):
                await run_local(_breaking_plan(at=4), ledger, progress=seen.append)
            (info,) = [s for s in await ledger.sessions() if s.id not in before]
            assert info.status == "running" and info.outcome is None
            rows = await ledger.entries(info.id)
            assert len(rows) == len(seen) > 5
            assert [(r.actor, r.kind, r.body) for r in rows] == [(e.actor, e.kind, e.body) for e in seen]
            assert rows[0].kind == "session.open" and rows[-1].kind != "session.close"
            assert await ledger.checkpoints(info.id) == []  # no final checkpoint
            report = await ledger.verify(info.id)
            assert report.ok, report.problems

    run(go())


def test_a_long_session_is_stored_in_several_transactions_and_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_session, "FLUSH_ENTRIES", 3)
    commits: list[int] = []
    original = local_session.SessionWriter.commit

    async def counted(self: Any) -> None:
        commits.append(self.staged)
        await original(self)

    original_apart = local_session.WorkerSessionWriter.commit

    async def counted_apart(self: Any) -> None:
        commits.append(self.staged)
        await original_apart(self)

    monkeypatch.setattr(local_session.SessionWriter, "commit", counted)
    monkeypatch.setattr(local_session.WorkerSessionWriter, "commit", counted_apart)
    rows = _assert_same(lambda: load_plan(TINY)[0], tmp_path)
    # `_assert_same` runs the busless session twice: signed and stored here, and by a
    # ledger process.
    assert len(commits) > 8 and sum(commits) == 2 * len(rows)


def test_a_session_id_the_ledger_holds_is_refused_before_the_run(tmp_path: Path) -> None:
    async def go() -> None:
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            first = await run_local(load_plan(TINY)[0], ledger, session_id="tiny-fixed")
            with pytest.raises(LedgerError, match="already exists"):
                await run_local(load_plan(TINY)[0], ledger, session_id="tiny-fixed")
            assert [s.id for s in await ledger.sessions()] == [first.session_id]
            assert len(await ledger.entries("tiny-fixed")) == first.entries

    run(go())


def test_session_ids_drawn_in_one_second_do_not_collide_and_a_reused_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids name the spec, the second and 48 random bits: a benchmark's hundreds of
    sessions a second get distinct ids; an id the ledger holds already is refused."""
    from accord.session import new_session_id

    ids = {new_session_id("tiny") for _ in range(20_000)}
    assert len(ids) == 20_000
    monkeypatch.setattr(local_session, "new_session_id", lambda spec_id: "tiny-a")

    async def go() -> None:
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            one = await run_local(load_plan(TINY)[0], ledger)
            with pytest.raises(LedgerError, match="'tiny-a' already exists"):
                await run_local(load_plan(TINY)[0], ledger)
            assert (await ledger.verify(one.session_id)).ok

    run(go())


def test_when_the_ledger_refuses_a_commit_that_is_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stored every 3 entries; someone else takes entry 7's place in between: the
    commit that holds it is refused, and that refusal is what the run raises (nothing
    is stored after it); what earlier commits stored stays."""
    import sqlite3

    monkeypatch.setattr(local_session, "FLUSH_ENTRIES", 3)
    path = tmp_path / "l.db"
    session: dict[str, str] = {}

    def squat(event: SessionEvent) -> None:
        if event.idx == 4:
            with sqlite3.connect(path) as conn:
                (sid,) = conn.execute("SELECT id FROM sessions").fetchone()
                session["id"] = sid
                conn.execute(
                    "INSERT INTO entries (session_id, idx, actor, seq, kind, envelope, prev_hash, entry_hash, leaf_hash) "
                    "VALUES (?, 7, 'squatter', 1, 'note', '{}', '', '', '')",
                    (sid,),
                )

    async def go() -> None:
        async with await Ledger.open(path) as ledger:
            with pytest.raises(LedgerError, match="refused"):
                await run_local(load_plan(TINY)[0], ledger, progress=squat)
            stored = [r.idx for r in await ledger.entries(session["id"])]
            assert stored[-1] == 7  # the squatter
            assert 3 <= len(stored) - 1 < 7 and stored[:-1] == list(range(len(stored) - 1))  # the first commit
            assert (await ledger.find_session(session["id"])).status == "running"

    run(go())
