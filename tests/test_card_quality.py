"""Card quality after MAI's rubric, and canonical cards that remember their holders."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constituencies.cards import ValuesCard
from constituencies.constituency import Constituent, WiserThanVote
from constituencies.moral_graph import MoralGraph
from constituencies.quality import (
    CardQualityReport,
    canonicalise,
    card_identity,
    check_card,
    check_moral_graph,
    check_policies,
    policy_head,
)
from tests.moral_graph_data import real_graph, real_graph_path  # noqa: F401 (fixtures)

ROOTED = [
    "MOMENTS when a family can stay in the neighbourhood it grew up in",
    "RELATIONSHIPS with neighbours that only years in one place build",
    "SIGNS that people like us are still welcome here",
]


def _codes(report: CardQualityReport) -> tuple[list[str], list[str]]:
    return [i.code for i in report.errors], [i.code for i in report.warnings]


def test_a_good_card_is_clean() -> None:
    card = ValuesCard(id="r-home", title="Staying rooted", description="d", policies=ROOTED)
    report = check_card(card)
    assert report == CardQualityReport(card_id="r-home")
    assert report.ok


@pytest.mark.parametrize("n", [0, 2, 8, 9])
def test_policy_count_outside_three_to_seven_is_an_error(n: int) -> None:
    policies = [f"MOMENTS number {i} when it matters" for i in range(n)]
    errors, _ = _codes(check_policies("x", policies))
    assert errors == ["policy-count"]


def test_duplicate_policies_after_normalising() -> None:
    again = "MOMENTS  when a Family can stay in the neighbourhood it grew up in."
    report = check_policies("x", [*ROOTED, again])
    assert _codes(report)[0] == ["duplicate-policy"]
    assert report.errors[0].policy == 3
    assert "policies[0]" in report.errors[0].message


@pytest.mark.parametrize(
    ("policy", "head", "qualifier"),
    [
        ("MOMENTS when a neighbour needs help", "MOMENTS", "when a neighbour needs help"),
        ("OPPORTUNITIES for strangers to meet", "OPPORTUNITIES", "for strangers to meet"),
        ("WORDS and RESPONSES of the child", "WORDS and RESPONSES", "of the child"),
        ("The child's ZONE OF PROXIMAL DEVELOPMENT today", "ZONE OF PROXIMAL DEVELOPMENT", "today"),
        ("Moments when a neighbour needs help", "Moments", "when a neighbour needs help"),
        ("Instances where VERBAL PRAISE is used", "Instances", "where VERBAL PRAISE is used"),
    ],
)
def test_policy_head_and_qualifier(policy: str, head: str, qualifier: str) -> None:
    assert policy_head(policy) == (head, qualifier)


@pytest.mark.parametrize(
    ("policy", "error"),
    [
        ("moments when a neighbour needs help", "no-head"),
        ("when a neighbour needs help", "no-head"),
        ("MOMENTS", "no-qualifier"),
        ("SIGNS OF TRUST.", "no-qualifier"),
    ],
)
def test_policy_shape_errors(policy: str, error: str) -> None:
    errors, _ = _codes(check_policies("x", [*ROOTED[:2], policy]))
    assert errors == [error]


@pytest.mark.parametrize(
    ("policy", "warning"),
    [
        ("CLARITY about what the neighbours need", "not-plural"),
        ("MOMENTS that help me in order to win the vote", "instrumental"),
        ("CHOICES made so that the budget balances", "instrumental"),
        ("STEPS that achieve the quarterly target", "instrumental"),
        ("PLANS that maximize turnout", "instrumental"),
        ("NEIGHBOURS who should be consulted first", "prescriptive"),
        ("RULES that everyone must follow", "prescriptive"),
        ("DUTIES we ought to honour", "prescriptive"),
        ("PROMISES that are never broken", "prescriptive"),
        ("MEETINGS that always start on time", "prescriptive"),
        ("Encourage NEIGHBOURS to talk to each other", "imperative"),
        ("CONVERSATIONS that feel meaningful", "poetic"),
    ],
)
def test_warnings_for_goals_rules_and_style(policy: str, warning: str) -> None:
    report = check_policies("x", [*ROOTED[:2], policy])
    assert report.ok
    assert warning in _codes(report)[1]
    assert all(i.policy == 2 for i in report.warnings)


def test_plural_heads_do_not_warn() -> None:
    plural = ["PEOPLE who listen first", "RESOURCES or PEOPLE they can reach", "CHILDREN at play"]
    for policy in plural:
        assert "not-plural" not in _codes(check_policies("x", [*ROOTED[:2], policy]))[1]


def test_focus_as_a_noun_is_not_an_imperative() -> None:
    report = check_policies("x", [*ROOTED[:2], "FOCUS on the task at hand"])
    assert "imperative" not in _codes(report)[1]


def test_quality_report_runs_on_every_real_value(real_graph: MoralGraph) -> None:
    reports = check_moral_graph(real_graph)
    assert [r.card_id for r in reports] == [f"mg-{v.id}" for v in real_graph.values]
    failing = {r.card_id for r in reports if not r.ok}
    assert failing == {"mg-332", "mg-219", "mg-304", "mg-284", "mg-208"}
    assert {i.code for r in reports for i in r.errors} == {"policy-count"}
    warnings = Counter(i.code for r in reports for i in r.warnings)
    assert warnings["imperative"] == 3  # 169 "Encourage ...", "Promote ...", "Foster ..."
    assert warnings["not-plural"] > 0
    cards, _ = real_graph.to_cards()
    for card in cards:
        assert check_card(card).ok


# --- canonicalisation ------------------------------------------------------------------


def _variant(
    card_id: str, policies: list[str], title: str = "Staying rooted", contexts: tuple[str, ...] = ()
) -> ValuesCard:
    return ValuesCard(
        id=card_id,
        title=title,
        description=f"said by {card_id}",
        policies=policies,
        contexts=list(contexts),
    )


SAME = [
    _variant("p1-home", ROOTED),
    _variant("p2-home", [p.upper() for p in reversed(ROOTED)], title="  staying   ROOTED "),
    _variant("p3-home", [p + "." for p in ROOTED], title="Staying rooted."),
]
OTHER = _variant(
    "p4-green", ["PLACES where children can play outside", *ROOTED[1:]], title="Green places"
)
PEOPLE = [
    Constituent(id="p1", holds=["p1-home"]),
    Constituent(id="p2", holds=["p2-home", "p4-green"], weight=2.0),
    Constituent(id="p3", holds=["p3-home"]),
    Constituent(id="p4", holds=["p4-green"]),
]


def test_identical_cards_collapse_and_remember_holders() -> None:
    result = canonicalise([*SAME, OTHER], PEOPLE)
    assert [c.card.id for c in result.cards] == ["p1-home", "p4-green"]
    home, green = result.cards
    assert home.merged == ["p1-home", "p2-home", "p3-home"]
    assert home.holders == ["p1", "p2", "p3"]
    assert home.support == 4.0
    assert home.card == SAME[0]
    assert green.holders == ["p2", "p4"] and green.merged == ["p4-green"]
    assert result.canonical_id == {
        "p1-home": "p1-home",
        "p2-home": "p1-home",
        "p3-home": "p1-home",
        "p4-green": "p4-green",
    }
    assert len({card_identity(c) for c in SAME}) == 1
    assert card_identity(OTHER) != card_identity(SAME[0])


def test_a_person_holding_two_copies_counts_once() -> None:
    result = canonicalise(SAME, [Constituent(id="p9", holds=["p1-home", "p2-home"], weight=3.0)])
    assert result.cards[0].holders == ["p9"] and result.cards[0].support == 3.0


def test_contexts_merge() -> None:
    a = _variant("a", ROOTED, contexts=("housing",))
    b = _variant("b", ROOTED, contexts=("parks",))
    c = _variant("c", ROOTED)
    assert canonicalise([a, b]).cards[0].card.contexts == ["housing", "parks"]
    assert canonicalise([a, b, c]).cards[0].card.contexts == []


def test_votes_move_onto_canonical_cards() -> None:
    result = canonicalise([*SAME, OTHER])
    votes = [
        WiserThanVote(context="x", less_wise="p2-home", wiser="p4-green", vote="upgrade"),
        WiserThanVote(context="x", less_wise="p2-home", wiser="p3-home", vote="upgrade"),
    ]
    assert [(v.less_wise, v.wiser) for v in result.remap_votes(votes)] == [("p1-home", "p4-green")]


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_canonicalisation_ignores_order(seed: int) -> None:
    rng = random.Random(seed)
    cards, people = [*SAME, OTHER], list(PEOPLE)
    rng.shuffle(cards)
    rng.shuffle(people)
    assert canonicalise(cards, people) == canonicalise([*SAME, OTHER], PEOPLE)
