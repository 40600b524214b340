"""The default offer choice: a bounded neighbourhood of the aspiration in the presorted
ranking, and within it what the others have asked for most (`AskTally`)."""

from __future__ import annotations

import pytest

from delegates.asks import AskTally
from delegates.time_dependent import Linear, TimeDependentOptions
from protocols.events import TableOffer
from tests.test_strategies import call, o, view

# "us" in the hand-made scenario of test_strategies, best first:
# h1l1 .3, h1l2 .275, h1l3 .25, h2l1 .05, h2l2 .025, h2l3 0, h3l1 -.2, h3l2 -.225, h3l3 -.25


def outcomes(space, indices: range) -> list[dict[str, str]]:  # noqa: ANN001
    return [space.admissible[k][1] for k in indices]


def test_neighbourhood_runs_from_the_lowest_outcome_above_the_target_up_by_width() -> None:
    space = view().space
    assert space.span == pytest.approx(0.55)
    assert outcomes(space, space.neighbourhood(0.26, 0.03, 10)) == [o("h1", "l1"), o("h1", "l2")]
    assert outcomes(space, space.neighbourhood(0.26, 0.0, 10)) == [o("h1", "l2")]
    # The lowest ones are kept when the limit bites.
    assert outcomes(space, space.neighbourhood(0.2, 0.1, 2)) == [o("h1", "l2"), o("h1", "l3")]
    # Nothing reaches the target: the best outcome alone.
    assert outcomes(space, space.neighbourhood(0.9, 0.5, 10)) == [o("h1", "l1")]
    # Below everything: the worst outcomes, up to the width.
    assert outcomes(space, space.neighbourhood(-1.0, 0.06, 10)) == [
        o("h3", "l1"), o("h3", "l2"), o("h3", "l3")
    ]


def test_ask_tally_counts_each_new_offer_once_and_never_our_own() -> None:
    tally = AskTally("us")
    assert not tally
    tally.observe("them", o("h3", "l3"))
    tally.observe("them", o("h3", "l3"))  # the same standing offer at a later turn
    tally.observe("us", o("h1", "l1"))
    tally.observe("them", o("h2", "l3"))
    tally.observe("x", o("h2", "l1"))
    assert tally.latest == {"them": o("h2", "l3"), "x": o("h2", "l1")}
    assert tally.closeness(o("h2", "l3")) == 2 + 2
    assert tally.closeness(o("h1", "l2")) == 0
    # Lowest utility first; the closest wins, then the first (lowest) utility among them.
    assert tally.closest([(0.0, o("h1", "l2")), (0.1, o("h2", "l3")), (0.2, o("h3", "l3"))]) == [
        o("h2", "l3")
    ]
    assert tally.closest([(0.0, o("h1", "l3")), (0.0, o("h3", "l1")), (0.1, o("h1", "l1"))]) == [
        o("h1", "l3"), o("h3", "l1")
    ]


def test_bids_what_the_others_asked_for_within_the_neighbourhood_not_just_the_lowest() -> None:
    s = Linear(view(), TimeDependentOptions(e=1.0))
    # Round 4 of 20: aspiration 0.3 - 0.55 * 0.2 = 0.19, so the neighbourhood is h1l3 (.25)
    # up to 0.25 + 0.1 * 0.55: h1l3, h1l2, h1l1.
    assert s.aspiration(call(4)) == pytest.approx(0.19)
    assert s.choose_offer(call(4)) == o("h1", "l3")  # no asks yet: the lowest above it
    s.observe(call(4, offer=o("h3", "l1")))  # they want l1
    assert s.choose_offer(call(4)) == o("h1", "l1")


def test_a_mopac_table_shown_at_every_call_is_counted_once() -> None:
    s = Linear(view(), TimeDependentOptions(e=1.0))
    table = [TableOffer(by="x", offer=o("h2", "l2")), TableOffer(by="us", offer=o("h1", "l1"))]
    for r in (1, 2, 3):
        s.observe(call(r, allowed=["votes"], table=table))
    assert s.tally.counts == {("heavy", "h2"): 1, ("light", "l2"): 1}
    assert s.seen == {"x": o("h2", "l2")}
