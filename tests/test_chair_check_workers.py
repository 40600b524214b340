"""The chair checking delegates' signatures on worker processes (`check_workers`): the
same ledger as checking them in its own process, and bad messages refused for the
same reasons."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

import accord.chair
from accord.chair import CHECK_WORKERS_ENV, Chair
from accord.checking import CheckerError, SignatureChecker
from accord.ledger import Identity, Ledger, PublicKeys, Signer, verify_entries
from accord.ledger.envelope import Envelope
from accord.session import run_session
from accord.session_plan import load_plan
from accord.simulate import simulate
from tests.conftest import FIXTURES, ROOT, run
from tests.helpers import moves_of, run_file, run_plan
from tests.test_bad_messages import SESSION as ROGUE_SESSION
from tests.test_bad_messages import _rogue


def _said(rows: list) -> list[tuple[str, str, object]]:  # noqa: ANN401
    """Every entry but the opening (which carries keys), without signatures nor clocks."""
    return moves_of(rows)


def test_the_option_reaches_the_chair(monkeypatch: pytest.MonkeyPatch) -> None:
    plan, _ = load_plan(FIXTURES / "tiny.yaml")
    signer = Signer(Identity.generate("chair"), "s")

    def make(**kw: int) -> Chair:
        return Chair("s", plan.new_protocol(), signer, PublicKeys({}), None, None, 1.0, **kw)  # type: ignore[arg-type]

    monkeypatch.delenv(CHECK_WORKERS_ENV, raising=False)
    assert make().check_workers == 0  # the default: as before, in the chair's process
    assert make(check_workers=2).check_workers == 2
    monkeypatch.setenv(CHECK_WORKERS_ENV, "3")  # how `accord chair --check-workers` sets it
    assert make().check_workers == 3
    assert make(check_workers=0).check_workers == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_check_workers_record_the_same_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    monkeypatch.setenv(CHECK_WORKERS_ENV, "0")
    _, here, rows_here = run(run_file(FIXTURES / "tiny.yaml", tmp_path / "here.db"))
    monkeypatch.setenv(CHECK_WORKERS_ENV, str(workers))
    _, there, rows_there = run(run_file(FIXTURES / "tiny.yaml", tmp_path / "there.db"))
    assert there.ended == here.ended
    assert _said(rows_there) == _said(rows_here)
    assert verify_entries(there.session_id, rows_there).ok


def test_check_workers_record_the_same_ledger_for_many_delegates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 delegates answering each round at once: batches of many messages, several of
    them in flight on the workers while the chair records the oldest (batches of at most
    7 here, so that a round's answers make six)."""
    monkeypatch.setattr(accord.chair, "_DRAIN_BURST", 7)
    sys.path.insert(0, str(ROOT))
    from benchmarks.session_scale import make_session

    path = tmp_path / "s40.json"
    path.write_text(json.dumps(make_session(40, 6)))
    monkeypatch.setenv(CHECK_WORKERS_ENV, "0")
    _, here, rows_here = run(run_plan(load_plan(path)[0], tmp_path / "here.db"))
    monkeypatch.setenv(CHECK_WORKERS_ENV, "2")
    _, there, rows_there = run(run_plan(load_plan(path)[0], tmp_path / "there.db"))
    assert there.ended == here.ended
    assert _said(rows_there) == _said(rows_here)
    assert sum(r.kind == "move" for r in rows_there) > 100
    assert verify_entries(there.session_id, rows_there).ok


def _refusals(tmp_path: Path, name: str) -> tuple[object, list[str], list]:  # noqa: ANN401
    url = f"memory://bad-messages-{name}"
    plan, _ = load_plan(FIXTURES / "tiny.yaml")

    async def go():  # noqa: ANN202
        ready = asyncio.Event()
        rogue = asyncio.create_task(_rogue(url, ready))
        await ready.wait()
        async with await Ledger.open(tmp_path / f"{name}.db") as ledger:
            result = await run_session(plan, ledger, bus_url=url, session_id=ROGUE_SESSION)
            rows = await ledger.entries(ROGUE_SESSION)
        await rogue
        return result, rows

    result, rows = run(go())
    assert verify_entries(ROGUE_SESSION, rows).ok
    return result, [r.body["reason"] for r in rows if r.kind == "refused-message"], rows


def test_bad_messages_are_refused_for_the_same_reasons_on_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CHECK_WORKERS_ENV, "0")
    here, reasons_here, rows_here = _refusals(tmp_path, "here")
    monkeypatch.setenv(CHECK_WORKERS_ENV, "2")
    there, reasons_there, rows_there = _refusals(tmp_path, "there")
    assert sorted(reasons_there) == sorted(reasons_here)
    assert any(reason.startswith("bad signature from") for reason in reasons_there), reasons_there
    for words in ("not JSON", "exceeds", "malformed envelope", "unknown sender 'mallory'", "but sent on",
                  "replayed sequence number"):
        assert any(words in reason for reason in reasons_there), (words, reasons_there)
    # Nothing a rogue sent changed the course of the session.
    assert there.ended == here.ended == simulate(load_plan(FIXTURES / "tiny.yaml")[0]).ended
    assert [r for r in _said(rows_there) if r[1] == "move"] == [r for r in _said(rows_here) if r[1] == "move"]


# --- the checker itself --------------------------------------------------------------------


def _envelopes() -> tuple[PublicKeys, list[Envelope]]:
    alice, bob = Identity.generate("alice"), Identity.generate("bob")
    keys = PublicKeys({"alice": alice.public_key, "bob": bob.public_key})
    signer = Signer(alice, "s")
    good = [signer.seal("move", {"round": i, "text": "é\u2028\x00"}) for i in range(20)]
    wires = [e.canonical() for e in good]
    doc = json.loads(wires[3])
    tampered = json.dumps(doc | {"body": {"round": 99}}, separators=(",", ":"), sort_keys=True).encode()
    spaced = json.dumps(doc, sort_keys=True).encode()  # good signature, not canonical bytes
    moved = json.dumps({"sig": doc["sig"]} | {k: v for k, v in doc.items() if k != "sig"}).encode()
    forged = Signer(Identity.generate("bob"), "s").seal("move", {"round": 1}).canonical()
    carol = Signer(Identity.generate("carol"), "s").seal("move", {"round": 1}).canonical()  # no key
    bad_sig = json.dumps(doc | {"sig": "not base64!"}, separators=(",", ":"), sort_keys=True).encode()
    wired = [Envelope.parse(w) for w in [*wires, tampered, spaced, moved, forged, carol, bad_sig]]
    return keys, [*wired, signer.seal("move", {"round": 0})]  # the last: no wire bytes


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_the_checker_says_what_verify_says(workers: int) -> None:
    keys, envs = _envelopes()
    expected = [e.model_copy().verify(keys) for e in envs]  # copies: the originals stay unchecked
    assert expected.count(False) == 4 and expected[21] and expected[22]

    async def go() -> list[bool]:
        async with SignatureChecker(keys, workers) as checker:
            # Several batches in flight at once, of several sizes (8+ goes to a thread at 0).
            futures = [checker.check(envs[:3]), checker.check(envs[3:]), checker.check([]), checker.check(envs)]
            results = [await f for f in futures]
            assert results[2] == []
            assert results[3] == results[0] + results[1]
            assert checker.verify_seconds > 0
            return results[0] + results[1]

    assert run(go()) == expected
    # A good signature over the received bytes marks them as the canonical form, as
    # `verify` does; bytes that are not canonical are not kept as such.
    assert envs[0].canonical() == envs[0]._wire
    assert envs[21].canonical() != envs[21]._wire


def test_a_worker_that_dies_costs_only_speed() -> None:
    """What a killed worker owed, and what no worker is left for, is checked here: the
    same outcomes, no hang."""
    keys, envs = _envelopes()
    expected = [e.model_copy().verify(keys) for e in envs]

    async def go() -> None:
        async with SignatureChecker(keys, 2) as checker:
            assert await checker.check(envs) == expected
            checker._workers[0].process.kill()
            owed = [checker.check(envs) for _ in range(4)]  # some sent to the dead one
            assert [await asyncio.wait_for(f, 10) for f in owed] == [expected] * 4
            assert len(checker.lost) == 1
            checker._workers[0].process.kill()
            await asyncio.sleep(0.5)
            assert await asyncio.wait_for(checker.check(envs), 10) == expected
            assert not checker._workers and len(checker.lost) == 2

    run(go())


def test_workers_must_be_started() -> None:
    keys, envs = _envelopes()

    async def go() -> None:
        with pytest.raises(CheckerError, match="start"):
            SignatureChecker(keys, 1).check(envs)

    run(go())


def test_the_cli_has_the_option() -> None:
    from typer.testing import CliRunner

    from accord.cli import app

    out = CliRunner().invoke(app, ["chair", "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and "--check-workers" in out.output


def test_answers_still_being_checked_at_their_deadline_are_not_timed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply taken from the inbox before its deadline but whose signature check ends
    after it is applied, not timed out: as when each batch was checked inline. Checks
    are slowed to 0.4 s against a 0.3 s turn timeout (the replies themselves are
    immediate, on the memory bus)."""
    import yaml

    checked = SignatureChecker.check

    def slow(self: SignatureChecker, envs: list[Envelope]) -> asyncio.Future[list[bool]]:
        inner = checked(self, envs)
        loop = asyncio.get_running_loop()
        out: asyncio.Future[list[bool]] = loop.create_future()
        inner.add_done_callback(lambda f: loop.call_later(0.4, lambda: out.set_result(f.result())))
        return out

    monkeypatch.setattr(SignatureChecker, "check", slow)
    spec = yaml.safe_load((FIXTURES / "tiny.yaml").read_text())
    spec["turn_timeout_s"] = 0.3
    path = tmp_path / "slow-checks.yaml"
    path.write_text(yaml.safe_dump(spec))
    plan, _ = load_plan(path)
    _, result, rows = run(run_plan(plan, tmp_path / "slow.db"))
    kinds = [row.kind for row in rows]
    assert "timeout" not in kinds and "absence" not in kinds and "rejection" not in kinds
    assert result.ended == simulate(load_plan(path)[0]).ended
