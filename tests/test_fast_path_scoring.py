"""The per-move shortcuts of a simulated negotiation give what the plain computation gives.

Scores kept from turn to turn and raised offer by offer (`Strategy._closest_in`, with the
tally's bit masks and the space's count getters) equal `AskTally.closest`'s scan; the
space's remembered neighbourhoods equal `OutcomeSpace.neighbourhood`; an aspiration kept
with its call is the target; the fields sets the trusted builders share are never
changed by pydantic; `simulate` gives the garbage collector back as it found it.
"""

from __future__ import annotations

import gc
import random

import pytest

from accord.simulate import simulate
from constituencies import Assessment, Constituency, ValueModel
from delegates.base import DelegateView
from delegates.justification import Explainer, _explained, justify, value_summary
from delegates.time_dependent import Boulware, Linear, TimeDependentOptions
from protocols import trusted
from protocols.agenda import Agenda, Issue, Option
from protocols.moves import CardCitation, Propose
from tests.test_fast_path import _anac_plan, same
from tests.test_strategies import POLICIES, call, view


def _check_closest_in_against_the_scan(
    strategy: Linear, rng: random.Random, steps: int, burst: int
) -> None:
    """Random offers (up to `burst` between two bids) and sliding or jumping windows."""
    space = strategy.view.space
    outcomes = [outcome for _, outcome in space.all]
    n = len(space.admissible)
    start = 0
    for step in range(steps):
        for _ in range(rng.randrange(burst + 1)):
            strategy.tally.observe(rng.choice(["x", "y", "z"]), rng.choice(outcomes))
        if not strategy.tally:
            continue
        start = max(0, min(n - 1, start + rng.choice([0, 0, 1, 2, 5, -3, 40, -40])))
        near = range(start, min(n, start + rng.randrange(1, 33)))
        expected = strategy.tally.closest(reversed(space.admissible[near.start : near.stop]))
        assert strategy._closest_in(near) == expected, step


def test_scores_raised_offer_by_offer_equal_the_tally_scan() -> None:
    plan = _anac_plan("y2011/Grocery")
    for participant in plan.participants:
        for burst in (1, 2, 4):  # one or two new offers: raised; more: scored again
            strategy = Linear(participant.delegate.view, TimeDependentOptions())
            assert strategy._indexed
            _check_closest_in_against_the_scan(strategy, random.Random(burst), 400, burst)


def _one_issue_view() -> DelegateView:
    agenda = Agenda(issues=[Issue(id="only", options=[Option(id=f"v{i}") for i in range(6)])])
    cards = [{"id": "c", "title": "A card", "description": "A test card.", "policies": POLICIES}]
    constituency = Constituency(
        id="us",
        cards=cards,
        constituents=[{"id": "u1", "holds": ["c"]}],
        mandate={"reservation": -1.0},
    )
    assessments = [
        Assessment(option=f"only/v{i}", card="c", score=round(1 - i / 3, 3), by="organizer")
        for i in range(6)
    ]
    model = ValueModel(constituency, assessments, agenda.issue_contexts)
    return DelegateView.build("us", agenda, model, constituency.mandate, 0)


def test_scores_on_a_one_issue_agenda_equal_the_tally_scan() -> None:
    strategy = Linear(_one_issue_view(), TimeDependentOptions())
    space = strategy.view.space
    assert strategy._indexed
    for k in range(len(space.admissible)):  # a one-option getter still gives a sequence
        assert sum(space.counter(k)(strategy.tally.by_code)) == 0
    _check_closest_in_against_the_scan(strategy, random.Random(3), 200, 2)


def test_remembered_neighbourhoods_are_the_computed_ones() -> None:
    rng = random.Random(5)
    for space in (view().space, _anac_plan("y2013/Coffee").participants[0].delegate.view.space):
        for width, limit in ((0.1 * space.span, 32), (0.0, 4), (2.0, 1)):
            near = space.neighbourhoods(width, limit)
            assert space.neighbourhoods(width, limit) is not near  # a function each, one memo
            utilities = [u for u, _ in space.admissible]
            targets = [*utilities, *(u + 1e-13 for u in utilities), *(u - 1e-9 for u in utilities)]
            targets += [rng.uniform(space.worst - 0.5, space.best + 0.5) for _ in range(200)]
            for _ in range(2):  # computed, then remembered
                for target in targets:
                    assert near(target) == space.neighbourhood(target, width, limit), target


def test_an_aspiration_kept_with_its_call_is_the_target() -> None:
    s = Boulware(view(), TimeDependentOptions())
    calls = [call(r) for r in (1, 2, 2, 7, 20)]
    for c in [*calls, *calls[::-1], calls[1], calls[1]]:
        assert s.aspiration(c) == s.target(c.round / c.deadline_round)


def test_shared_fields_sets_are_never_changed() -> None:
    cited = [CardCitation(card="a", contribution=0.25)]
    why = trusted.justification(0.25, list(cited), "why")
    first = trusted.propose({"heavy": "h1", "light": "l1"}, why)
    second = trusted.propose({"heavy": "h2", "light": "l1"}, trusted.justification(0.25, [], "x"))
    turn = trusted.turn_call("us", 1, 30, ["propose"], None, None, "")
    before = [set(m.model_fields_set) for m in (first, first.justification, turn)]
    copied = first.model_copy(update={"kind": "propose"})
    assert copied.model_fields_set == {"kind", "offer", "justification"}
    turn.model_copy(update={"phase": "x"})
    first.justification.model_copy(update={"rationale": "other"})
    with pytest.raises(Exception):  # frozen: no assignment adds to the shared set
        first.offer = {}  # type: ignore[misc]
    assert [set(m.model_fields_set) for m in (first, first.justification, turn)] == before
    assert second.model_fields_set == {"offer", "justification"}
    validated = Propose(offer=first.offer, justification=first.justification)
    assert validated.model_fields_set == first.model_fields_set


def test_simulate_gives_the_collector_back_as_it_found_it() -> None:
    plan = _anac_plan("y2011/Laptop")
    assert gc.isenabled()
    simulate(plan)
    assert gc.isenabled()
    gc.disable()
    try:
        simulate(plan)
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(RuntimeError):
        simulate(plan, max_steps=3)
    assert gc.isenabled()


def test_a_simulated_negotiation_leaves_no_cyclic_garbage() -> None:
    """What pausing the collector during `simulate` rests on: nothing it allocates is
    kept alive by a reference cycle, so reference counting frees all of it."""
    plan = _anac_plan("y2011/Car")
    gc.collect()
    gc.disable()
    try:
        simulation = simulate(plan)
        assert simulation.moves
        del simulation
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_explanations_made_from_an_outcomes_key_are_the_models() -> None:
    """`Explainer` makes what it lacks from the outcome's key (its options): the same
    utility, justification and summary as from the outcome itself, on one issue too."""
    for v in (_one_issue_view(), view()):
        model, explain = v.model, Explainer(v.model)
        for outcome in v.agenda.outcomes():
            found = explain(outcome)
            assert explain.memo[explain.key(outcome)] is found
            assert found.utility == model.utility(outcome)
            assert found.summary == value_summary(model, outcome)
            assert found.worth == f"{found.utility:.2f}"
            same(explain.justify(outcome, "why"), justify(model, outcome, "why"))


def test_a_models_explanations_go_with_it() -> None:
    v = _one_issue_view()
    Explainer(v.model)(next(v.agenda.outcomes()))
    before = len(_explained)
    del v
    gc.collect()
    assert len(_explained) == before - 1
