"""The signing process (`accord.signing_worker`) returns the very signatures this process
would make, in order, across batches and sessions; if it dies, what it owed is signed
here and nothing is lost or misplaced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from accord.ledger import Identity, Ledger, Signer
from accord.local_session import run_local
from accord.session_plan import load_plan
from accord.signing_worker import BATCH, SigningWorker
from tests.conftest import FIXTURES, run

TINY = FIXTURES / "tiny.yaml"


def test_the_same_signatures_in_order_across_batches_and_keys() -> None:
    identities = [Identity.generate(f"actor-{i}") for i in range(3)]
    messages = [(i % 3, os.urandom(i * 7 % 900)) for i in range(5 * BATCH + 3)]
    with SigningWorker() as worker:
        keys = [worker.register(identity.sodium_secret) for identity in identities]
        for round_ in range(2):  # twice: what the first call returned is not returned again
            for who, message in messages:
                worker.submit(keys[who], message)
            got = worker.signatures()
            assert got == [identities[who].sign(message) for who, message in messages], round_
        assert worker.signatures() == []
        worker.forget(keys)
        again = worker.register(identities[0].sodium_secret)  # a freed number is used again
        assert again in keys
        worker.submit(again, b"after forgetting")
        assert worker.signatures() == [identities[0].sign(b"after forgetting")]
        assert not worker.broken


def test_a_dead_worker_owes_nothing() -> None:
    identity = Identity.generate("chair")
    messages = [os.urandom(300) for _ in range(3 * BATCH + 5)]
    worker = SigningWorker()
    try:
        key = worker.register(identity.sodium_secret)
        for message in messages[: 2 * BATCH]:
            worker.submit(key, message)
        worker._process.kill()  # mid-session: some replies read, some not
        worker._process.wait()
        for message in messages[2 * BATCH :]:
            worker.submit(key, message)
        assert worker.signatures() == [identity.sign(m) for m in messages]
        assert worker.broken
        worker.submit(key, b"later")  # signed here from now on
        assert worker.signatures() == [identity.sign(b"later")]
    finally:
        worker.close()


def test_a_key_is_64_bytes() -> None:
    with SigningWorker() as worker, pytest.raises(ValueError, match="64 bytes"):
        worker.register(b"short")


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


class _Boom(RuntimeError):
    pass


def test_a_failed_session_leaves_the_worker_to_the_next(tmp_path: Path) -> None:
    """A session that fails halfway stores what it recorded, signed; the next session on
    the same worker gets its own signatures, not the failed one's leftovers."""

    async def go() -> None:
        ledger = await Ledger.open(tmp_path / "ledger.db")
        try:
            with SigningWorker() as worker:
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
                    await run_local(plan, ledger, signing=worker)
                failed = [s for s in await ledger.sessions() if s.status == "running"]
                assert len(failed) == 1
                partial = await ledger.verify(failed[0].id)
                assert partial.entries > 1 and not [p for p in partial.problems if "signature" in str(p)]
                result = await run_local(load_plan(TINY)[0], ledger, signing=worker)
                report = await ledger.verify(result.session_id)
                assert report.ok, report
                assert not worker.broken
        finally:
            await ledger.close()

    run(go())


def test_a_script_without_a_main_guard_can_start_one(tmp_path: Path) -> None:
    # The worker is a new interpreter (`python -m accord.signing_worker`), not a
    # multiprocessing child, which would run the calling script again.
    script = tmp_path / "plain.py"
    script.write_text(
        "from accord.ledger import Identity\n"
        "from accord.signing_worker import SigningWorker\n"
        "i = Identity.generate('a')\n"
        "with SigningWorker() as w:\n"
        "    k = w.register(i.sodium_secret)\n"
        "    w.submit(k, b'hello')\n"
        "    assert w.signatures() == [i.sign(b'hello')]\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


def test_the_worker_imports_nothing_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process that holds the keys must not pick up an `accord/` or `nacl/` folder
    # lying where the user happens to be (it runs with python -P).
    for package in ("nacl", "accord"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("raise SystemExit('imported from the current directory')\n")
    monkeypatch.chdir(tmp_path)
    identity = Identity.generate("chair")
    with SigningWorker() as worker:
        key = worker.register(identity.sodium_secret)
        worker.submit(key, b"hello")
        assert worker.signatures() == [identity.sign(b"hello")]
        assert not worker.broken
