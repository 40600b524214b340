"""The fast path of a simulated negotiation makes what the plain path made.

Calls, moves and justifications built without validation (`protocols.trusted`) equal the
validated ones field for field; remembered utilities, justifications and mandate verdicts
(`Explainer`, `OutcomeSpace.violation`) equal computing them afresh; offers scored by item
codes (`Strategy._closest_in`) equal `AskTally.closest`'s scan; the agenda's one-set check
of an outcome agrees with its issue-by-issue one.
"""

from __future__ import annotations

import random

import pytest

from accord.importers.genius import import_genius
from accord.session_plan import build_plan, load_plan
from accord.simulate import simulate
from constituencies import Mandate
from delegates.asks import AskTally
from delegates.base import DelegateView
from delegates.justification import Explainer, justify, value_summary
from delegates.outcome_space import OutcomeSpace
from delegates.time_dependent import Boulware, Linear, TimeDependentOptions
from protocols import trusted
from protocols.events import Call
from protocols.moves import Accept, CardCitation, Justification, Propose, Reject
from tests.conftest import EXAMPLES, SHARED
from tests.test_strategies import AGENDA, call, o, view


def same(built, validated) -> None:  # noqa: ANN001
    """`built` is what validation made: equal, dumped alike, the same fields set."""
    assert type(built) is type(validated)
    assert built == validated
    assert list(built.__dict__) == list(validated.__dict__)
    assert built.model_fields_set == validated.model_fields_set
    assert built.model_dump() == validated.model_dump()
    assert built.model_dump_json() == validated.model_dump_json()
    assert repr(built) == repr(validated)
    assert type(built).model_validate(built.model_dump(mode="json")) == built


def test_trusted_builders_make_what_validation_makes() -> None:
    cited = [CardCitation(card="a", contribution=0.25), CardCitation(card="b", contribution=-0.05)]
    j = trusted.justification(0.2, list(cited), "because")
    same(j, Justification(utility=0.2, cited=cited, rationale="because"))
    # An int utility (nothing cited sums to 0) is a float, as validation makes it.
    same(trusted.justification(0, [], "nothing"), Justification(utility=0, cited=[], rationale="nothing"))
    with pytest.raises(ValueError):
        trusted.justification(0.1, [], "")
    offer = {"heavy": "h1", "light": "l2"}
    same(trusted.propose(dict(offer), j), Propose(offer=offer, justification=j))
    same(trusted.accept(dict(offer), j), Accept(offer=offer, justification=j))
    same(trusted.reject(dict(offer), j), Reject(offer=offer, justification=j))
    for standing, by, allowed in ((None, None, ["propose"]), (offer, "them", ["accept", "propose"])):
        built = trusted.turn_call("us", 3, 30, list(allowed), standing and dict(standing), by, "a note")
        same(
            built,
            Call(
                to="us", round=3, deadline_round=30, allowed=allowed,
                standing_offer=standing, offered_by=by, note="a note",
            ),
        )
        assert built.time == pytest.approx(2 / 30)


def _anac_plan(key: str):  # noqa: ANN202
    folder = SHARED / "data" / "genius" / "anac" / key
    if not folder.is_dir():
        pytest.skip(f"the ANAC domain {folder} is absent (the shared data sits beside the checkout)")
    return build_plan(import_genius(folder, deadline_rounds=60).spec, str(folder))


RIVERSIDE = next(p for p in EXAMPLES if p.parent.name == "riverside")


def test_every_simulated_move_is_one_validation_accepts() -> None:
    plans = [load_plan(RIVERSIDE)[0], _anac_plan("y2011/Amsterdam")]
    for plan in plans:
        sim = simulate(plan)
        assert sim.moves
        for _, move in sim.moves:
            assert type(move).model_validate(move.model_dump(mode="json")) == move
        # Two runs of one plan make the same moves (fresh delegates: the same seed).
        assert [m.model_dump() for _, m in simulate(load_plan(RIVERSIDE)[0]).moves] == [
            m.model_dump() for _, m in simulate(load_plan(RIVERSIDE)[0]).moves
        ]
    protocol = plans[0].new_protocol()
    (first,) = protocol.start()
    same(first, Call(**first.model_dump(include=first.model_fields_set)))


def test_explainer_answers_as_utility_justify_and_value_summary() -> None:
    models = [view().model, view("them").model, *(p.model for p in _anac_plan("y2013/Coffee").participants)]
    agendas = [AGENDA, AGENDA, *[_anac_plan("y2013/Coffee").agenda] * 2]
    for model, agenda in zip(models, agendas, strict=True):
        explain = Explainer(model)
        for _ in range(2):  # computed, then remembered
            for outcome in agenda.outcomes():
                found = explain(outcome)
                assert found.utility == model.utility(outcome)
                assert found.summary == value_summary(model, outcome)
                made = explain.justify(outcome, "why")
                same(made, justify(model, outcome, "why"))
                assert made.cited is not found.cited  # each justification has its own list


def test_offers_scored_by_item_code_equal_the_tally_scan() -> None:
    plan = _anac_plan("y2011/Grocery")
    rng = random.Random(7)
    outcomes = list(plan.agenda.outcomes())
    for participant in plan.participants:
        strategy = Linear(participant.delegate.view, TimeDependentOptions())
        space = strategy.view.space
        assert strategy._indexed
        n = len(space.admissible)
        start = rng.randrange(n - 40)
        for step in range(300):
            if rng.random() < 0.3:
                strategy.tally.observe(rng.choice(["x", "y"]), rng.choice(outcomes))
            if not strategy.tally:
                continue
            # Sliding and jumping windows, as aspirations move.
            start = max(0, min(n - 1, start + rng.choice([0, 1, 2, 5, -3, 40, -40])))
            near = range(start, min(n, start + rng.randrange(1, 33)))
            expected = strategy.tally.closest(reversed(space.admissible[near.start : near.stop]))
            assert strategy._closest_in(near) == expected, step


def test_ties_in_score_and_utility_come_in_the_scans_order() -> None:
    s = Linear(view(), TimeDependentOptions(e=1.0))
    space = s.view.space
    s.tally.observe("them", o("h2", "l3"))
    for near in (range(0, 9), range(2, 7), range(3, 4), range(5, 9)):
        assert s._closest_in(near) == s.tally.closest(reversed(space.admissible[near.start : near.stop]))


def test_tally_counts_by_item_code_and_keeps_unknown_items() -> None:
    tally = AskTally("us", AGENDA.item_codes)
    tally.observe("them", o("h3", "l3"))
    tally.observe("them", o("h3", "l3"))  # the same standing offer again: counted once
    tally.observe("x", {"heavy": "h3", "light": "l9"})  # an option the agenda lacks
    assert tally.counts == {("heavy", "h3"): 2, ("light", "l3"): 1, ("light", "l9"): 1}
    assert tally.closeness(o("h3", "l3")) == 3
    plain = AskTally("us")
    for sender, offer in (("them", o("h3", "l3")), ("x", {"heavy": "h3", "light": "l9"})):
        plain.observe(sender, offer)
    assert plain.counts == tally.counts


def test_agenda_check_of_an_outcome_agrees_with_the_issue_by_issue_one() -> None:
    assert AGENDA.problem_with(o("h1", "l2")) is None
    assert AGENDA.problem_with({"heavy": "h1"}) == "no option chosen for issue(s): light"
    assert AGENDA.problem_with({"heavy": "h1", "light": "l1", "extra": "x"}) == "unknown issue(s): extra"
    assert AGENDA.problem_with({"heavy": "h1", "weight": "l1"}) == "unknown issue(s): weight"
    assert AGENDA.problem_with({"heavy": "h1", "light": "h1"}) == "unknown option 'h1' for issue 'light'"
    assert AGENDA.problem_with({}) == "no option chosen for issue(s): heavy, light"


def test_the_spaces_remembered_mandate_verdict_is_the_mandates() -> None:
    base = view()
    mandate = Mandate.model_validate({"red_lines": [{"heavy": "h2"}], "reservation": 0.0})
    space = OutcomeSpace(AGENDA, base.model, mandate)
    odd = [{"heavy": "h2"}, {"heavy": "h1", "light": "l1", "x": "y"}, {"light": "l1", "heavy": "h3"}]
    for _ in range(2):
        for outcome in [*AGENDA.outcomes(), *odd[2:]]:
            assert space.violation(outcome) == mandate.violation(outcome, base.model.utility(outcome))
        with pytest.raises(KeyError):
            space.violation(odd[0])  # the utility of an incomplete outcome is undefined
        assert space.violation(odd[1]) == mandate.violation(odd[1], base.model.utility(odd[1]))


def test_time_dependent_aspiration_is_its_target_at_every_call() -> None:
    s = Boulware(view(), TimeDependentOptions())
    for r in (1, 1, 2, 5, 5, 3, 20, 1):
        assert s.aspiration(call(r)) == s.target(r / 20)


def test_a_delegate_view_without_item_codes_still_bids() -> None:
    v = view()
    plain = DelegateView(v.delegate_id, v.agenda, v.model, v.mandate, _Space(v.space), v.rng)
    s = Linear(plain, TimeDependentOptions(e=1.0))
    assert not s._indexed
    s.observe(call(4, offer=o("h3", "l1")))
    assert s.choose_offer(call(4)) == o("h1", "l1")


class _Space:
    """An outcome space as a strategy written before item codes would supply it."""

    def __init__(self, space: OutcomeSpace) -> None:
        self.admissible, self.all, self.span = space.admissible, space.all, space.span
        self.neighbourhood = space.neighbourhood
