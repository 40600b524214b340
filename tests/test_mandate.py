"""The runtime enforces the mandate around any strategy, and logs each refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord import plugins
from accord.ledger import verify_entries
from accord.session_file import load_session
from accord.session_plan import build_plan
from delegates.base import Strategy
from delegates.justification import justify
from protocols.events import Call
from protocols.moves import Accept, Move, Propose
from tests.conftest import FIXTURES, run
from tests.helpers import run_plan

RED_LINE = {"park": "lot"}


class CrossesRedLines(Strategy):
    """Always reaches for the neighbours' red line: proposes it, and accepts anything."""

    name = "crosses-red-lines"
    description = "test double that ignores its mandate"

    def aspiration(self, call: Call) -> float:
        return -1.0

    def respond(self, call: Call) -> Move:
        if call.standing_offer and "accept" in call.allowed:
            offer = call.standing_offer
            return Accept(offer=offer, justification=justify(self.view.model, offer, "accept anything"))
        offer = {"park": "lot", "hours": "late"}
        return Propose(offer=offer, justification=justify(self.view.model, offer, "the car park"))


@pytest.fixture
def rogue_plan(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setitem(plugins._BUILTIN_STRATEGIES, CrossesRedLines.name, CrossesRedLines)
    spec, _ = load_session(FIXTURES / "tiny.yaml")
    delegates = dict(spec.delegates)
    delegates["neighbours"] = delegates["neighbours"].model_copy(update={"strategy": CrossesRedLines.name})
    # Everyone else wants the car park, so the rogue's acceptances would seal it.
    return build_plan(spec.model_copy(update={"delegates": delegates}))


def test_rogue_strategy_never_gets_a_red_line_through(rogue_plan, tmp_path: Path) -> None:  # noqa: ANN001
    _, result, rows = run(run_plan(rogue_plan, tmp_path / "l.db"))
    assert verify_entries(result.session_id, rows).ok
    sent = [r.body["move"] for r in rows if r.kind == "move" and r.actor == "neighbours"]
    assert sent
    for move in sent:
        assert not all(move["offer"].get(k) == v for k, v in RED_LINE.items()), move
    refusals = [r for r in rows if r.kind == "refusal" and r.actor == "neighbours"]
    assert refusals, "each refused move is logged"
    assert all("red line park=lot" in r.body["reason"] for r in refusals if r.body["refused"]["offer"]["park"] == "lot")
    # The refusal is logged before the move that replaced it, in the same turn.
    first = refusals[0]
    after = next(r for r in rows if r.idx > first.idx and r.actor == "neighbours")
    assert after.kind == "move" and after.body["round"] == first.body["round"]
    if result.ended.agreement:
        assert result.ended.agreement["park"] != "lot"


def test_reservation_level_is_enforced_too(rogue_plan, tmp_path: Path) -> None:  # noqa: ANN001
    _, _, rows = run(run_plan(rogue_plan, tmp_path / "l.db"))
    neighbours = rogue_plan.participant("neighbours")
    reservation = neighbours.constituency.mandate.reservation
    for r in rows:
        if r.kind == "move" and r.actor == "neighbours":
            assert neighbours.model.utility(r.body["move"]["offer"]) >= reservation - 1e-12
