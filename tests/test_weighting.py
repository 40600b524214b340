"""Card weights from support and wiser-than votes (constituencies/weighting.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constituencies import Constituency, ValuesCard
from constituencies.constituency import Weighting, WiserThanVote

POLICIES = ["MOMENTS when a", "PLACES where b", "SIGNS that c"]
CARDS = ["a", "b", "c", "d"]


def card(cid: str) -> ValuesCard:
    return ValuesCard(id=cid, title=cid, description="d", policies=POLICIES)


def constituency(holders: list[list[str]], votes: list[tuple[str, str, str]], **weighting: object) -> Constituency:
    return Constituency(
        id="c",
        cards=[card(c) for c in CARDS],
        constituents=[{"id": f"p{n}", "holds": h} for n, h in enumerate(holders)],
        wiser_than=[
            WiserThanVote(context="ctx", less_wise=a, wiser=b, vote=v) for a, b, v in votes  # type: ignore[arg-type]
        ],
        weighting=Weighting(**weighting),  # type: ignore[arg-type]
    )


def test_support_rule_ignores_votes() -> None:
    c = constituency([["a"], ["b"]], [("a", "b", "upgrade")] * 3, rule="support")
    assert c.card_weights("ctx") == {"a": 0.5, "b": 0.5, "c": 0.0, "d": 0.0}


def test_damping_zero_is_support_only() -> None:
    c = constituency([["a"], ["b"]], [("a", "b", "upgrade")] * 3, damping=0.0)
    assert c.card_weights("ctx")["a"] == pytest.approx(0.5)


def test_upgrades_move_weight_to_the_wiser_card() -> None:
    c = constituency([["a"], ["b"]], [("a", "b", "upgrade")] * 3)
    w = c.card_weights("ctx")
    assert w["b"] > w["a"]
    assert sum(w.values()) == pytest.approx(1.0)


def test_votes_of_another_context_are_pooled_when_none_here() -> None:
    c = constituency([["a"], ["b"]], [("a", "b", "upgrade")] * 3)
    assert c.card_weights("elsewhere") == c.card_weights("ctx")


votes_st = st.lists(
    st.tuples(st.sampled_from(CARDS), st.sampled_from(CARDS), st.sampled_from(["upgrade", "no_upgrade", "not_sure"])).filter(
        lambda t: t[0] != t[1]
    ),
    max_size=12,
)
holders_st = st.lists(st.lists(st.sampled_from(CARDS), min_size=1, max_size=3, unique=True), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(holders=holders_st, votes=votes_st)
def test_weights_sum_to_one(holders: list[list[str]], votes: list[tuple[str, str, str]]) -> None:
    w = constituency(holders, votes).card_weights("ctx")
    assert sum(w.values()) == pytest.approx(1.0)
    assert all(x >= 0 for x in w.values())


@settings(max_examples=150, deadline=None)
@given(holders=holders_st, votes=votes_st, data=st.data())
def test_order_of_input_does_not_matter(holders: list[list[str]], votes: list[tuple[str, str, str]], data: st.DataObject) -> None:
    shuffled_votes = data.draw(st.permutations(votes))
    shuffled_people = data.draw(st.permutations(holders))
    a = constituency(holders, votes).card_weights("ctx")
    b = constituency(shuffled_people, shuffled_votes).card_weights("ctx")
    assert a == pytest.approx(b, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(holders=holders_st, votes=votes_st, pair=st.tuples(st.sampled_from(CARDS), st.sampled_from(CARDS)).filter(lambda t: t[0] != t[1]))
def test_an_upgrade_never_lowers_the_wiser_card_relative_to_the_other(
    holders: list[list[str]], votes: list[tuple[str, str, str]], pair: tuple[str, str]
) -> None:
    a, b = pair
    before = constituency(holders, votes).card_weights("ctx")
    after = constituency(holders, [*votes, (a, b, "upgrade")]).card_weights("ctx")
    # Compare B relative to A: the ratio b/a must not fall (cross-multiplied for zeros).
    assert after[b] * before[a] >= before[b] * after[a] - 1e-12
