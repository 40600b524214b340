"""Time-dependent concession: targets, acceptance, determinism."""

from __future__ import annotations

import pytest

from accord.session_plan import load_plan
from delegates.time_dependent import Boulware, Conceder, Linear
from protocols.events import Call
from protocols.moves import Accept, Propose
from tests.conftest import FIXTURES


@pytest.fixture
def view():  # noqa: ANN201
    plan, _ = load_plan(FIXTURES / "tiny.yaml")
    return plan.participant("shops").delegate.view


def test_targets_fall_from_best_to_floor_at_the_right_pace(view) -> None:  # noqa: ANN001
    b, lin, c = Boulware(view), Linear(view), Conceder(view)
    for s in (b, lin, c):
        assert s.target(0) == pytest.approx(s.best)
        assert s.target(1) == pytest.approx(s.floor)
        ts = [s.target(t / 10) for t in range(11)]
        assert ts == sorted(ts, reverse=True)
    assert b.target(0.5) > lin.target(0.5) > c.target(0.5)


def test_floor_is_reservation_or_worst_admissible(view) -> None:  # noqa: ANN001
    s = Linear(view)
    assert s.floor >= view.mandate.reservation
    assert s.best == view.space.admissible[0][0]


def test_accepts_an_offer_at_or_above_aspiration(view) -> None:  # noqa: ANN001
    s = Boulware(view)
    best = view.space.admissible[0][1]
    call = Call(to="shops", round=1, deadline_round=10, allowed=["accept", "propose"], standing_offer=best, offered_by="x")
    assert isinstance(s.respond(call), Accept)
    worst = view.space.all[-1][1]
    call = call.model_copy(update={"standing_offer": worst})
    move = s.respond(call)
    assert isinstance(move, Propose)
    assert view.model.utility(move.offer) >= s.target(1 / 10) - 1e-12


def test_proposals_never_leave_the_admissible_space(view) -> None:  # noqa: ANN001
    s = Conceder(view)
    admissible = [o for _, o in view.space.admissible]
    for r in range(1, 11):
        call = Call(to="shops", round=r, deadline_round=10, allowed=["propose"])
        assert s.respond(call).offer in admissible
