"""Sessions at scale: one `calls` envelope per round for many delegates, and an opening
larger than an ordinary envelope (it carries the session file).

The chair groups the calls it makes at once from `GROUP_CALLS_FROM` delegates on (16 by
default); these tests lower that to 2 (`ACCORD_GROUP_CALLS_FROM` in child processes) so
that a three-delegate single-text session exercises grouping, including absence via a
will, a broker restart, and a crash resumed from the ledger.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
import yaml

import accord.chair
from accord.delegate_runner import ChairWords, call_for
from accord.ledger import Identity, Signer, verify_entries
from accord.ledger.envelope import MAX_ENVELOPE_BYTES
from accord.ledger.verify import check_envelope
from accord.session_plan import load_plan
from accord.simulate import simulate
from tests.conftest import FIXTURES, ROOT, run
from tests.processes import ACCORD, accord_env, latest_session_rows, peek_entries, start_chair, start_delegate
from tests.helpers import run_file

GROUPED = {"ACCORD_GROUP_CALLS_FROM": "2"}
start_grouped_chair = partial(start_chair, **GROUPED)
start_grouped_delegate = partial(start_delegate, **GROUPED)


def _single_text(tmp_path: Path, **params: object) -> Path:
    doc = yaml.safe_load((FIXTURES / "tiny.yaml").read_text())
    doc["protocol"] = {"name": "single-text", "deadline_rounds": 8} | params
    path = tmp_path / "single-text.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _delegate_says(rows: list) -> list[tuple[str, str, object]]:  # noqa: ANN401
    return [(r.actor, r.kind, r.body) for r in rows if r.actor != "chair"]


# --- in one process ----------------------------------------------------------------------


def test_grouped_calls_change_no_move_and_no_outcome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _single_text(tmp_path)
    _, alone, rows_alone = run(run_file(path, tmp_path / "alone.db"))
    monkeypatch.setattr(accord.chair, "GROUP_CALLS_FROM", 2)
    _, grouped, rows_grouped = run(run_file(path, tmp_path / "grouped.db"))
    assert grouped.ended == alone.ended
    assert _delegate_says(rows_grouped) == _delegate_says(rows_alone)
    calls = [r for r in rows_grouped if r.kind == "calls"]
    assert calls and not any(r.kind == "call" for r in rows_grouped)
    assert all(sorted(r.body["to"]) == ["neighbours", "parents", "shops"] for r in calls)
    # One envelope a round instead of one per delegate, and each reads its own call.
    assert len(rows_grouped) == len(rows_alone) - 2 * len(calls)
    for r in calls:
        mine = call_for("calls", r.body, "shops")
        assert mine is not None and mine["to"] == "shops" and mine["round"] == r.body["round"]
        assert call_for("calls", r.body, "nobody") is None
    assert verify_entries(grouped.session_id, rows_grouped).ok


def test_a_grouped_call_is_replayed_by_chair_and_delegate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resume folds the ledger: the chair's protocol and each delegate's strategy come
    back to where they were from `calls` entries as from `call` entries."""
    from accord.chair import Chair
    from accord.delegate_runner import DelegateRunner
    from accord.ledger import PublicKeys

    monkeypatch.setattr(accord.chair, "GROUP_CALLS_FROM", 2)
    plan, result, rows = run(run_file(_single_text(tmp_path), tmp_path / "l.db"))
    cut = next(n for n, r in enumerate(rows) if r.kind == "calls" and r.body["round"] == 4)
    head = rows[: cut + 2]  # a grouped call and one answer to it

    class _NoBus:
        pass

    chair = Chair(
        result.session_id, plan.new_protocol(), Signer(Identity.generate("chair"), result.session_id),
        PublicKeys({}), _NoBus(), None, 60.0,  # type: ignore[arg-type]
    )
    chair.replay(head)
    answered = head[-1].actor
    pending = {c.to for c in chair.protocol.pending}
    assert pending == {"neighbours", "parents", "shops"} - {answered}
    assert {c.round for c in chair.protocol.pending} == {4}
    fresh, _ = load_plan(_single_text(tmp_path))
    for p in fresh.participants:
        runner = DelegateRunner(
            result.session_id, p.delegate, Signer(Identity.generate(p.id), result.session_id),
            PublicKeys({}), _NoBus(), p.model.hash,  # type: ignore[arg-type]
        )
        runner.replay(head)  # raises ResumeError if a re-decided move differed


def test_the_opening_alone_may_exceed_the_envelope_limit() -> None:
    chair = Identity.generate("chair")
    signer = Signer(chair, "s1")
    big = "x" * (MAX_ENVELOPE_BYTES + 1000)
    opening = signer.seal("session.open", {"keys": {"chair": chair.public_key}, "spec_hash": "h", "spec": big})
    raw = opening.canonical()
    words = ChairWords()
    facts = words.opening(raw)
    assert not isinstance(facts, str), facts
    assert (facts.session, facts.chair_key, facts.spec_hash) == ("s1", chair.public_key, "h")
    assert words.opening(raw) is facts  # parsed once for every delegate of the host
    # Anything else that large is refused, from the chair too, on the bus and in a ledger.
    other = signer.seal("ended", {"note": big}).canonical()
    assert "exceeds" in str(words.from_chair(other, chair.public_key))
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from accord.ledger.identity import unb64

    keys = {"chair": Ed25519PublicKey.from_public_bytes(unb64(chair.public_key))}
    assert check_envelope(raw, "s1", keys) == (("chair", 1, "session.open"), None)
    header, problem = check_envelope(other, "s1", keys)
    assert header == ("chair", 2, "ended") and problem is not None and "exceeds" in problem
    # An opening signed by another key than the one it names for the chair is ignored.
    forged = Signer(Identity.generate("chair"), "s1").seal(
        "session.open", {"keys": {"chair": chair.public_key}, "spec_hash": "h"}
    )
    assert isinstance(words.opening(forged.canonical()), str)


# --- over Mosquitto, chair and delegates in their own processes --------------------------


@pytest.mark.mqtt
def test_a_large_session_over_mosquitto_matches_memory(mqtt_broker, tmp_path: Path) -> None:  # noqa: ANN001
    """60 delegates in two host processes: the opening (~300 KB) is over the ordinary
    limit, calls are grouped, and each host parses the opening once for its 30."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.session_scale import make_session

    path = tmp_path / "s60.json"
    path.write_text(json.dumps(make_session(60, 3)))
    ledger = tmp_path / "l.db"
    out = subprocess.run(
        [*ACCORD, "run", str(path), "--bus", mqtt_broker.url, "--per-process", "30", "--json", "--ledger", str(ledger)],
        env=accord_env(), capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    over_mqtt = json.loads(out.stdout)
    in_memory = simulate(load_plan(path)[0])
    assert (over_mqtt["agreement"], over_mqtt["reason"]) == (in_memory.ended.agreement, in_memory.ended.reason)
    session_id, rows = latest_session_rows(ledger)
    assert len(rows[0].envelope.encode()) > MAX_ENVELOPE_BYTES
    assert any(r.kind == "calls" for r in rows)
    assert verify_entries(session_id, rows).ok
    recorded = sorted((r.actor, r.seq, json.dumps(r.body["move"], sort_keys=True)) for r in rows if r.kind == "move")
    assert len(recorded) == len(in_memory.moves)
    by_actor: dict[str, list[object]] = {}
    for actor, move in in_memory.moves:
        by_actor.setdefault(actor, []).append(move.model_dump(mode="json"))
    for actor, moves in by_actor.items():
        assert [r.body["move"] for r in rows if r.kind == "move" and r.actor == actor] == moves


@pytest.mark.mqtt
def test_killed_delegate_in_a_grouped_session_is_absent_then_catches_up(mqtt_broker, tmp_path: Path) -> None:  # noqa: ANN001
    path = _single_text(tmp_path, deadline_rounds=40, absence_limit=1000)
    ledger, keys, session = tmp_path / "l.db", tmp_path / "keys", "group-kill"
    chair = start_grouped_chair(path, session, mqtt_broker.url, ledger)
    others = [start_grouped_delegate(path, session, mqtt_broker.url, d, keys, ACCORD_PACE_S="0.05") for d in ("neighbours", "parents")]
    victim = start_grouped_delegate(path, session, mqtt_broker.url, "shops", keys, ACCORD_PACE_S="0.05", ACCORD_CRASH_DELEGATE="shops:3")
    try:
        assert victim.wait(60) == -signal.SIGKILL
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(k == "timeout" for _, k, _ in peek_entries(ledger)):
            time.sleep(0.1)
        restarted = start_grouped_delegate(path, session, mqtt_broker.url, "shops", keys, ACCORD_PACE_S="0.05")
        out, err = chair.communicate(timeout=180)
        assert chair.returncode == 0, err
        assert restarted.wait(30) == 0, restarted.stderr.read() if restarted.stderr else ""
    finally:
        for proc in (chair, victim, *others):
            if proc.poll() is None:
                proc.kill()
    session_id, rows = latest_session_rows(ledger)
    assert verify_entries(session_id, rows).ok
    kinds = [(r.actor, r.kind, r.body) for r in rows]
    assert any(k == "calls" for _, k, _ in kinds)
    assert ("chair", "presence", {"delegate": "shops", "status": "offline"}) in kinds
    assert ("chair", "presence", {"delegate": "shops", "status": "online"}) in kinds
    assert any(k == "timeout" and b["delegate"] == "shops" for _, k, b in kinds)
    assert any(k == "absence" and b["delegate"] == "shops" for _, k, b in kinds)
    assert any(k == "resync" for _, k, _ in kinds)
    shops_moves = [r for r in rows if r.actor == "shops" and r.kind == "move"]
    assert len(shops_moves) > 3, "the restarted delegate went on making moves"
    assert len({r.seq for r in shops_moves}) == len(shops_moves)
    assert json.loads(out)["reason"]


@pytest.mark.mqtt
def test_broker_restart_in_a_grouped_session_loses_and_duplicates_no_move(restartable_broker, tmp_path: Path) -> None:  # noqa: ANN001
    path = _single_text(tmp_path, deadline_rounds=12)
    ledger, keys, session = tmp_path / "l.db", tmp_path / "keys", "group-restart"
    url = restartable_broker.url
    chair = start_grouped_chair(path, session, url, ledger)
    delegates = [start_grouped_delegate(path, session, url, d, keys, ACCORD_PACE_S="0.1") for d in ("neighbours", "shops", "parents")]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(k == "move" for _, k, _ in peek_entries(ledger)) < 6:
            time.sleep(0.05)
        restartable_broker.restart(down_for=1.0)
        out, err = chair.communicate(timeout=180)
        assert chair.returncode == 0, err
        for proc in delegates:
            assert proc.wait(30) == 0
    finally:
        for proc in (chair, *delegates):
            if proc.poll() is None:
                proc.kill()
    session_id, rows = latest_session_rows(ledger)
    assert verify_entries(session_id, rows).ok
    assert any(r.kind == "calls" for r in rows)
    expected = simulate(load_plan(path)[0])
    # Votes of one round arrive in any order: compare each delegate's moves, in order.
    for actor in ("neighbours", "shops", "parents"):
        recorded = [r.body["move"] for r in rows if r.kind == "move" and r.actor == actor]
        assert recorded == [m.model_dump(mode="json") for a, m in expected.moves if a == actor]
    assert json.loads(out)["agreement"] == expected.ended.agreement


@pytest.mark.parametrize("after_entries", [3, 9, 20])
def test_a_grouped_session_killed_mid_round_resumes_to_the_same_outcome(after_entries: int, tmp_path: Path) -> None:
    path = _single_text(tmp_path)
    clean = subprocess.run(
        [*ACCORD, "run", str(path), "--json", "--ledger", str(tmp_path / "clean.db")],
        env=accord_env(**GROUPED), capture_output=True, text=True, timeout=120,
    )
    assert clean.returncode == 0, clean.stderr
    ledger = tmp_path / "l.db"
    killed = subprocess.run(
        [*ACCORD, "run", str(path), "--json", "--ledger", str(ledger)],
        # Flushed entry by entry, so that the kill lands mid-session, not after the end.
        env=accord_env(**GROUPED, ACCORD_CRASH_AFTER_ENTRIES=str(after_entries), ACCORD_LEDGER_FLUSH_S="0"),
        capture_output=True, text=True, timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL
    resumed = subprocess.run(
        [*ACCORD, "resume", "latest", "--json", "--ledger", str(ledger)],
        env=accord_env(**GROUPED), capture_output=True, text=True, timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    expected, got = json.loads(clean.stdout), json.loads(resumed.stdout)
    assert (got["agreement"], got["reason"], got["round"]) == (expected["agreement"], expected["reason"], expected["round"])
    session_id, rows = latest_session_rows(ledger)
    assert verify_entries(session_id, rows).ok
    assert any(r.kind == "calls" for r in rows)
    moves = [(r.actor, r.seq) for r in rows if r.kind == "move"]
    assert len(moves) == len(set(moves)), "a move was recorded twice"
