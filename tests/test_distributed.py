"""Sessions over a real Mosquitto with the chair and every delegate in its own process."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from accord.ledger import verify_entries
from accord.session_plan import load_plan
from accord.simulate import simulate
from tests.conftest import EXAMPLES, FIXTURES
from tests.processes import ACCORD, accord_env, latest_session_rows, peek_entries, start_chair, start_delegate

pytestmark = pytest.mark.mqtt



@pytest.mark.parametrize("path", [FIXTURES / "tiny.yaml", *EXAMPLES], ids=lambda p: p.parent.name if p.name == "session.yaml" else p.stem)
def test_same_outcome_in_separate_processes_over_mosquitto(path: Path, mqtt_broker, tmp_path: Path) -> None:  # noqa: ANN001
    ledger = tmp_path / "l.db"
    out = subprocess.run(
        [*ACCORD, "run", str(path), "--bus", mqtt_broker.url, "--json", "--ledger", str(ledger)],
        env=accord_env(), capture_output=True, text=True, timeout=240,
    )
    assert out.returncode == 0, out.stderr
    over_mqtt = json.loads(out.stdout)
    in_memory = simulate(load_plan(path)[0])
    assert over_mqtt["agreement"] == in_memory.ended.agreement
    assert (over_mqtt["reason"], over_mqtt["round"]) == (in_memory.ended.reason, in_memory.ended.round)
    session_id, rows = latest_session_rows(ledger)
    assert verify_entries(session_id, rows).ok
    recorded = [(r.actor, r.body["move"]) for r in rows if r.kind == "move"]
    assert recorded == [(a, m.model_dump(mode="json")) for a, m in in_memory.moves]


def _session_with(tmp_path: Path, **protocol: object) -> Path:
    doc = yaml.safe_load((FIXTURES / "tiny.yaml").read_text())
    doc["protocol"].update(protocol)
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_killed_delegate_is_absent_then_catches_up(mqtt_broker, tmp_path: Path) -> None:  # noqa: ANN001
    path = _session_with(tmp_path, deadline_rounds=40, absence_limit=1000)
    ledger, keys, session = tmp_path / "l.db", tmp_path / "keys", "kill-test"
    chair = start_chair(path, session, mqtt_broker.url, ledger)
    others = [start_delegate(path, session, mqtt_broker.url, d, keys, ACCORD_PACE_S="0.05") for d in ("neighbours", "parents")]
    victim = start_delegate(path, session, mqtt_broker.url, "shops", keys, ACCORD_PACE_S="0.05", ACCORD_CRASH_DELEGATE="shops:3")
    try:
        assert victim.wait(60) == -signal.SIGKILL
        # Wait until the chair has seen the will and let at least one turn lapse.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(k == "timeout" for _, k, _ in peek_entries(ledger)):
            time.sleep(0.1)
        restarted = start_delegate(path, session, mqtt_broker.url, "shops", keys, ACCORD_PACE_S="0.05")
        out, err = chair.communicate(timeout=120)
        assert chair.returncode == 0, err
        assert restarted.wait(30) == 0, restarted.stderr.read() if restarted.stderr else ""
    finally:
        for proc in (chair, victim, *others):
            if proc.poll() is None:
                proc.kill()
    session_id, rows = latest_session_rows(ledger)
    assert verify_entries(session_id, rows).ok
    kinds = [(r.actor, r.kind, r.body) for r in rows]
    assert ("chair", "presence", {"delegate": "shops", "status": "offline"}) in kinds
    assert ("chair", "presence", {"delegate": "shops", "status": "online"}) in kinds
    assert any(k == "timeout" and b["delegate"] == "shops" for _, k, b in kinds)
    assert any(k == "absence" and b["delegate"] == "shops" for _, k, b in kinds)
    assert any(k == "resync" for _, k, _ in kinds)
    shops_moves = [r for r in rows if r.actor == "shops" and r.kind == "move"]
    assert len(shops_moves) > 3, "the restarted delegate went on making moves"
    assert len({r.seq for r in shops_moves}) == len(shops_moves)
    assert json.loads(out)["reason"]


def test_broker_restart_loses_and_duplicates_no_move(restartable_broker, tmp_path: Path) -> None:  # noqa: ANN001
    path = _session_with(tmp_path, deadline_rounds=12)
    ledger, keys, session = tmp_path / "l.db", tmp_path / "keys", "restart-test"
    url = restartable_broker.url
    chair = start_chair(path, session, url, ledger)
    delegates = [start_delegate(path, session, url, d, keys, ACCORD_PACE_S="0.1") for d in ("neighbours", "shops", "parents")]
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
    expected = simulate(load_plan(path)[0])
    recorded = [(r.actor, r.body["move"]) for r in rows if r.kind == "move"]
    assert recorded == [(a, m.model_dump(mode="json")) for a, m in expected.moves]
    assert json.loads(out)["agreement"] == expected.ended.agreement


def test_a_host_cannot_announce_another_delegates_key() -> None:
    from accord.bus.topics import presence_topic
    from accord.presence import Presence, speaks_for

    ids = ["shops", "parents", "a", "b"]
    forged = Presence(host="shops", status="online", delegates={"shops": "k1", "parents": "k2"}, spec_hash="h")
    topic = presence_topic("s", "shops")
    assert speaks_for(topic, forged, "shops", ids)
    assert not speaks_for(topic, forged, "parents", ids)
    assert not speaks_for(presence_topic("s", "other"), forged, "shops", ids)
    group = Presence(host="host-a-2", status="online", delegates={"a": "k", "b": "k"}, spec_hash="h")
    assert speaks_for(presence_topic("s", "host-a-2"), group, "b", ids)
