"""QoS 1 delivers at least once: every message delivered twice still records each move once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import accord.session
from accord.bus.memory import MemoryBus
from accord.ledger import verify_entries
from accord.session_plan import load_plan
from accord.simulate import simulate
from tests.conftest import FIXTURES, run
from tests.helpers import run_plan


class EchoingBus(MemoryBus):
    """Delivers every message twice, as an MQTT broker may after a reconnect."""

    async def publish(self, topic, payload, **kwargs):  # noqa: ANN001, ANN003, ANN201
        await super().publish(topic, payload, **kwargs)
        await super().publish(topic, payload, **kwargs)


def test_every_message_twice_changes_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(accord.session, "open_bus", lambda url, **kw: EchoingBus())
    plan, _ = load_plan(FIXTURES / "tiny.yaml")
    _, result, rows = run(run_plan(plan, tmp_path / "l.db"))
    assert verify_entries(result.session_id, rows).ok
    assert result.ended == simulate(load_plan(FIXTURES / "tiny.yaml")[0]).ended
    seqs = Counter((r.actor, r.seq) for r in rows)
    assert max(seqs.values()) == 1
    moves = [r for r in rows if r.kind == "move"]
    refused = [r for r in rows if r.kind == "refused-message"]
    # Each delegate message came twice: the copy is refused and logged, never applied
    # (but for the last one, whose copy arrives after the session has closed).
    assert len(refused) >= len([r for r in rows if r.actor != "chair"]) - 1
    assert all("already recorded" in r.body["reason"] for r in refused)
    assert len({(m.actor, m.seq) for m in moves}) == len(moves)
    assert not [r for r in rows if r.kind == "rejection"]
