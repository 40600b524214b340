"""The ledger process (`accord.ledger_worker`): sessions it signs and stores are the ones
this process would store (tests/test_local_session.py compares them entry for entry);
what it refuses is said, with nothing stored lost; it dies loudly; it runs from anywhere.
And `SessionWriter.write_ahead`, the open transaction it writes a session through."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from accord.ledger import Identity, Ledger, LedgerError, Signer
from accord.ledger_worker import BATCH, LedgerWorker
from accord.local_session import run_local
from accord.session_plan import load_plan
from tests.conftest import FIXTURES, run
from tests.test_ledger_tamper import build_session

TINY = FIXTURES / "tiny.yaml"


def test_pending_envelopes_become_the_sealed_ones() -> None:
    identity = Identity.generate("residents")
    sealer, pender = Signer(identity, "s-1"), Signer(identity, "s-1")
    bodies: list[dict[str, Any]] = [{"round": 1, "x": 0.5}, {"round": 2, "note": "naïve"}, {"odd": float("nan")}]
    for body in bodies:
        pending = pender.seal_pending("move", body)
        sealed = sealer.seal("move", body)
        if pending.envelope is None:  # the fast path: signed later
            assert pending.size == len(sealed.canonical())
            env = pending.signed(identity.sign(pending.message))
        else:  # the slow path sealed it at once (it then fails as `seal` does, or not)
            env = pending.envelope
        # Only the clock may differ between the two.
        assert env.model_dump(exclude={"ts", "sig"}) == sealed.model_dump(exclude={"ts", "sig"})
        assert env.canonical() == env.model_copy(update={}).canonical()


def test_sessions_on_any_backend(ledger_location: str) -> None:
    """One worker, several sessions (more entries than a batch), on a SQLite file and on
    PostgreSQL (where the worker's writer cannot write ahead: it commits at the end)."""

    async def go() -> None:
        async with await Ledger.open(ledger_location) as ledger:
            with LedgerWorker() as worker:
                assert worker.ready() and worker.can_write(ledger)
                results = [await run_local(load_plan(TINY)[0], ledger, worker=worker) for _ in range(3)]
                assert not worker.broken
            here = await run_local(load_plan(TINY)[0], ledger)
            for result in results:
                assert result.entries == here.entries > BATCH
                report = await ledger.verify(result.session_id)
                assert report.ok, report.problems
                witnesses = len(load_plan(TINY)[0].participants)
                assert len((await ledger.checkpoints(result.session_id))[-1].signatures) == 1 + witnesses
            sessions = {s.id: s for s in await ledger.sessions()}
            assert {sessions[r.session_id].outcome["reason"] for r in results} == {sessions[here.session_id].outcome["reason"]}

    run(go())


def test_an_in_memory_ledger_is_written_here() -> None:
    async def go() -> None:
        async with await Ledger.open("sqlite://") as ledger:
            with LedgerWorker() as worker:
                assert not worker.can_write(ledger)
                result = await run_local(load_plan(TINY)[0], ledger, worker=worker)
                report = await ledger.verify(result.session_id)
                assert report.ok, report.problems
                with pytest.raises(LedgerError, match="in-memory"):
                    worker.session_writer(ledger, "s", "spec", "", "sha256:0", {})

    run(go())


def test_a_session_it_refuses_is_said_and_nothing_stored_is_lost(tmp_path: Path) -> None:
    """A session id the ledger has already: the worker's commit is refused, the error
    names the session, the session stored before is as it was, and the worker writes
    the next session."""

    async def go() -> None:
        async with await Ledger.open(tmp_path / "ledger.db") as ledger:
            with LedgerWorker() as worker:
                first = await run_local(load_plan(TINY)[0], ledger, worker=worker)
                before = await ledger.entries(first.session_id)
                with pytest.raises(LedgerError, match=first.session_id):
                    await run_local(load_plan(TINY)[0], ledger, worker=worker, session_id=first.session_id)
                assert await ledger.entries(first.session_id) == before
                assert (await ledger.verify(first.session_id)).ok
                after = await run_local(load_plan(TINY)[0], ledger, worker=worker)
                assert (await ledger.verify(after.session_id)).ok
                assert not worker.broken

    run(go())


class _Boom(RuntimeError):
    pass


def test_a_failed_session_stores_what_it_recorded_and_leaves_the_worker_to_the_next(tmp_path: Path) -> None:
    async def go() -> None:
        async with await Ledger.open(tmp_path / "ledger.db") as ledger:
            with LedgerWorker() as worker:
                plan = load_plan(TINY)[0]
                strategy = plan.participants[1].delegate.strategy
                calls = {"n": 0}
                respond = strategy.respond

                def failing(call: Any) -> Any:
                    calls["n"] += 1
                    if calls["n"] == 3:
                        raise _Boom("strategy failed")
                    return respond(call)

                strategy.respond = failing  # type: ignore[method-assign]
                with pytest.raises(_Boom):
                    await run_local(plan, ledger, worker=worker)
                failed = [s for s in await ledger.sessions() if s.status == "running"]
                assert len(failed) == 1
                partial = await ledger.verify(failed[0].id)
                assert partial.entries > 1 and not [p for p in partial.problems if "signature" in str(p)]
                result = await run_local(load_plan(TINY)[0], ledger, worker=worker)
                report = await ledger.verify(result.session_id)
                assert report.ok, report
                assert not worker.broken

    run(go())


def test_a_dead_worker_is_said_and_the_ledger_stays_whole(tmp_path: Path) -> None:
    async def go() -> None:
        async with await Ledger.open(tmp_path / "ledger.db") as ledger:
            worker = LedgerWorker()
            try:
                first = await run_local(load_plan(TINY)[0], ledger, worker=worker)
                worker._process.kill()
                worker._process.wait()
                with pytest.raises(LedgerError, match=r"ledger process \(pid \d+\) died"):
                    await run_local(load_plan(TINY)[0], ledger, worker=worker)
                assert worker.broken and not worker.can_write(ledger) and not worker.ready()
                assert (await ledger.verify(first.session_id)).ok
                # Nothing of the lost session is stored (its transaction died with it).
                assert [s.id for s in await ledger.sessions()] == [first.session_id]
                # With a dead worker, sessions are written here.
                later = await run_local(load_plan(TINY)[0], ledger, worker=worker)
                assert (await ledger.verify(later.session_id)).ok
            finally:
                worker.close()

    run(go())


def test_write_ahead_holds_the_write_lock_until_its_commit(tmp_path: Path) -> None:
    """A writer that wrote ahead keeps its transaction open: another ledger object on the
    same file cannot write ahead meanwhile (it stages, and commits later), nothing shows
    before the commit, and `abandon` rolls it all back."""

    async def go() -> None:
        path = tmp_path / "ledger.db"
        async with await Ledger.open(path) as one, await Ledger.open(path) as two:
            (sa, envs_a, ids_a), (sb, envs_b, _) = build_session(3), build_session(3)
            a = one.session_writer(sa, "spec", "", "sha256:0", checkpoint_signer=ids_a["chair"])
            b = two.session_writer(sb, "spec", "", "sha256:0")
            a.append([(e, e.canonical()) for e in envs_a])
            a.write_ahead()
            b.append([(e, e.canonical()) for e in envs_b])
            b.write_ahead()  # locked by a: staged, not written
            assert await two.sessions() == []  # a's rows are not committed
            a.seal(ids_a["chair"])
            a.finish({"reason": "done"})
            await a.commit()
            await b.commit()
            assert {s.id: s.status for s in await two.sessions()} == {sa: "ended", sb: "running"}
            assert (await two.verify(sa)).ok and len(await two.entries(sb)) == len(envs_b)
            # Abandoned: nothing of it stays, and the writer refuses to go on.
            sc, envs_c, _ = build_session(2)
            c = one.session_writer(sc, "spec", "", "sha256:0")
            c.append([(e, e.canonical()) for e in envs_c])
            c.write_ahead()
            c.abandon()
            assert sc not in {s.id for s in await two.sessions()}
            with pytest.raises(LedgerError, match="closed"):
                await c.commit()

    run(go())


def test_a_script_without_a_main_guard_can_start_one(tmp_path: Path) -> None:
    # The worker is a new interpreter (`python -m accord.ledger_worker`), not a
    # multiprocessing child, which would run the calling script again.
    script = tmp_path / "plain.py"
    script.write_text(
        "import asyncio\n"
        "from accord.ledger import Ledger\n"
        "from accord.ledger_worker import LedgerWorker\n"
        "from accord.local_session import run_local\n"
        "from accord.session_plan import load_plan\n"
        "async def go():\n"
        f"    async with await Ledger.open({str(tmp_path / 'l.db')!r}) as ledger:\n"
        "        with LedgerWorker() as w:\n"
        f"            r = await run_local(load_plan({str(TINY)!r})[0], ledger, worker=w)\n"
        "        assert (await ledger.verify(r.session_id)).ok\n"
        "asyncio.run(go())\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


def test_the_worker_imports_nothing_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process that holds the keys must not pick up an `accord/` or `nacl/` folder
    # lying where the user happens to be (it runs with python -P).
    here = tmp_path / "here"
    for package in ("nacl", "accord"):
        (here / package).mkdir(parents=True)
        (here / package / "__init__.py").write_text("raise SystemExit('imported from the current directory')\n")
    monkeypatch.chdir(here)

    async def go() -> None:
        async with await Ledger.open(tmp_path / "ledger.db") as ledger:
            with LedgerWorker() as worker:
                result = await run_local(load_plan(TINY)[0], ledger, worker=worker)
                assert not worker.broken
            assert (await ledger.verify(result.session_id)).ok

    run(go())


@pytest.mark.parametrize("busy", ["never", "always", "every-third"])
def test_whoever_signs_an_entry_the_ledger_is_the_same(
    busy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker takes batches from the front and this process signs from the back
    when the worker is busy (`backlogged`): however that falls out, the entries arrive
    in order and the ledger is the one written here."""
    calls = {"n": 0}

    def backlogged(self: LedgerWorker) -> bool:
        calls["n"] += 1
        return busy == "always" or (busy == "every-third" and calls["n"] % 3 == 0)

    monkeypatch.setattr(LedgerWorker, "backlogged", backlogged)

    async def go() -> None:
        async with await Ledger.open(tmp_path / "ledger.db") as ledger:
            here = await run_local(load_plan(TINY)[0], ledger)
            with LedgerWorker() as worker:
                apart = await run_local(load_plan(TINY)[0], ledger, worker=worker)
            report = await ledger.verify(apart.session_id)
            assert report.ok, report.problems

            def said(rows: list[Any]) -> list[Any]:
                return [(r.idx, r.actor, r.seq, r.kind) for r in rows]

            assert said(await ledger.entries(apart.session_id)) == said(await ledger.entries(here.session_id))
            assert calls["n"] > 0

    run(go())


def test_an_interrupted_wait_retires_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while waiting for the worker's answer: that answer would otherwise be read
    as the next commit's, so the worker is not used again (sessions are written here)."""

    async def go() -> None:
        async with await Ledger.open(tmp_path / "ledger.db") as ledger:
            with LedgerWorker() as worker:
                assert worker.ready()

                def interrupted(self: Any) -> bytes:
                    raise KeyboardInterrupt

                with monkeypatch.context() as patch:
                    patch.setattr(type(worker._replies), "recv_bytes", interrupted)
                    with pytest.raises(KeyboardInterrupt):
                        await run_local(load_plan(TINY)[0], ledger, worker=worker)
                assert worker.broken and not worker.can_write(ledger)
                later = await run_local(load_plan(TINY)[0], ledger, worker=worker)
                assert (await ledger.verify(later.session_id)).ok

    run(go())


def test_a_ledger_file_replaced_at_the_same_path_is_opened_anew(tmp_path: Path) -> None:
    async def go() -> None:
        path = tmp_path / "ledger.db"
        with LedgerWorker() as worker:
            async with await Ledger.open(path) as ledger:
                await run_local(load_plan(TINY)[0], ledger, worker=worker)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            async with await Ledger.open(path) as ledger:
                result = await run_local(load_plan(TINY)[0], ledger, worker=worker)
                assert [s.id for s in await ledger.sessions()] == [result.session_id]
                assert (await ledger.verify(result.session_id)).ok

    run(go())


def test_an_interrupted_send_mid_session_releases_the_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while a batch is being sent, mid-session: the worker, which holds the
    session's open transaction, is ended with it, so the next session (written here)
    gets the ledger's write lock at once."""

    async def go() -> None:
        async with await Ledger.open(tmp_path / "ledger.db") as ledger:
            with LedgerWorker() as worker:
                assert worker.ready()
                sent = {"n": 0}
                send_bytes = type(worker._requests).send_bytes

                def interrupted(self: Any, data: Any) -> None:
                    send_bytes(self, data)
                    sent["n"] += 1
                    if sent["n"] == 3:
                        raise KeyboardInterrupt

                with monkeypatch.context() as patch:
                    patch.setattr(type(worker._requests), "send_bytes", interrupted)
                    with pytest.raises(KeyboardInterrupt):
                        await run_local(load_plan(TINY)[0], ledger, worker=worker)
                assert worker.broken and worker._process.poll() is not None  # ended with it
                free = sqlite3.connect(tmp_path / "ledger.db", timeout=0, isolation_level=None)
                try:
                    free.execute("BEGIN IMMEDIATE")  # nobody holds the write lock
                    free.execute("ROLLBACK")
                finally:
                    free.close()
                later = await asyncio.wait_for(run_local(load_plan(TINY)[0], ledger, worker=worker), 4)
                assert (await ledger.verify(later.session_id)).ok

    run(go())


def test_closing_a_ledger_rolls_back_a_session_written_ahead(tmp_path: Path) -> None:
    async def go() -> None:
        path = tmp_path / "ledger.db"
        sid, envs, _ = build_session(2)
        ledger = await Ledger.open(path)
        writer = ledger.session_writer(sid, "spec", "", "sha256:0")
        writer.append([(e, e.canonical()) for e in envs])
        writer.write_ahead()
        await asyncio.wait_for(ledger.close(), 5)  # no deadlock on the held lock
        assert writer.closed
        async with await Ledger.open(path) as again:
            assert await again.sessions() == []

    run(go())


def test_a_session_id_that_cannot_be_is_refused_before_the_run(tmp_path: Path) -> None:
    async def go() -> None:
        async with await Ledger.open(tmp_path / "ledger.db") as ledger:
            with LedgerWorker() as worker:
                for bad in ("has space", "has+plus"):
                    with pytest.raises(LedgerError):
                        await run_local(load_plan(TINY)[0], ledger, worker=worker, session_id=bad)
                assert await ledger.sessions() == []
                ok = await run_local(load_plan(TINY)[0], ledger, worker=worker)
                assert (await ledger.verify(ok.session_id)).ok

    run(go())


def test_a_garbled_request_stops_the_worker_and_says_so(tmp_path: Path) -> None:
    with LedgerWorker() as worker:
        assert worker.ready()
        worker._frames.append(b"\x07\xff\xff\x00\x00")  # a frame longer than its request
        worker._send()
        assert not worker.ready() and worker.broken
