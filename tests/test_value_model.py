"""Value models: weights, utilities and their per-card breakdowns."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accord.session_file import load_session
from constituencies import Assessment, Constituency, Mandate, RedLine, ValueModel, ValuesCard
from tests.conftest import FIXTURES

POLICIES = ["MOMENTS when a", "PLACES where b", "SIGNS that c"]


def card(cid: str, contexts: list[str] | None = None) -> ValuesCard:
    return ValuesCard(id=cid, title=cid.title(), description="d", policies=POLICIES, contexts=contexts or [])


def test_support_weights_follow_who_holds_what() -> None:
    c = Constituency(
        id="c",
        cards=[card("a"), card("b")],
        constituents=[{"id": "p1", "holds": ["a", "b"]}, {"id": "p2", "holds": ["a"]}],
    )
    assert c.card_weights() == {"a": pytest.approx(2 / 3), "b": pytest.approx(1 / 3)}


def test_context_restricts_cards() -> None:
    c = Constituency(
        id="c",
        cards=[card("a", ["land"]), card("b", ["money"])],
        constituents=[{"id": "p1", "holds": ["a", "b"]}],
    )
    assert c.card_weights("land") == {"a": 1.0}
    assert c.card_weights(None) == {"a": 0.5, "b": 0.5}


def test_utility_is_hand_computable() -> None:
    c = Constituency(
        id="c", cards=[card("a"), card("b")], constituents=[{"id": "p1", "holds": ["a", "b"]}]
    )
    assessments = [
        Assessment(option="i/x", card="a", score=1.0),
        Assessment(option="i/x", card="b", score=-0.5),
        Assessment(option="j/y", card="a", score=0.4),
    ]
    model = ValueModel(c, assessments, {"i": None, "j": None})
    # Each issue counts 1/2; each card weighs 1/2 in every context.
    # issue i: 0.5 * (0.5*1.0 + 0.5*-0.5) = 0.125 ; issue j: 0.5 * (0.5*0.4) = 0.1
    outcome = {"i": "x", "j": "y"}
    assert model.utility(outcome) == pytest.approx(0.225)
    parts = {c.card: c.contribution for c in model.breakdown(outcome).contributions}
    assert parts == {"a": pytest.approx(0.35), "b": pytest.approx(-0.125)}


def test_constituents_own_utility_uses_only_their_cards() -> None:
    c = Constituency(
        id="c",
        cards=[card("a"), card("b")],
        constituents=[{"id": "p1", "holds": ["a"]}, {"id": "p2", "holds": ["b"]}],
    )
    model = ValueModel(c, [Assessment(option="i/x", card="a", score=1.0)], {"i": None})
    assert model.constituent_utility("p1", {"i": "x"}) == 1.0
    assert model.constituent_utility("p2", {"i": "x"}) == 0.0


def test_content_hash_changes_with_the_model() -> None:
    spec, _ = load_session(FIXTURES / "tiny.yaml")
    agenda = spec.agenda_model
    first = ValueModel(spec.constituencies[0], spec.assessments, agenda.issue_contexts)
    again = ValueModel(spec.constituencies[0], list(reversed(spec.assessments)), agenda.issue_contexts)
    assert first.hash == again.hash and first.hash.startswith("sha256:")
    changed = [a.model_copy(update={"score": 0.0}) if a.card == "n-quiet" else a for a in spec.assessments]
    assert ValueModel(spec.constituencies[0], changed, agenda.issue_contexts).hash != first.hash


def test_human_assessments_outrank_a_models() -> None:
    c = Constituency(id="c", cards=[card("a")])
    model = ValueModel(
        c,
        [
            Assessment(option="i/x", card="a", score=-1.0, by="model", model="test:m"),
            Assessment(option="i/x", card="a", score=0.5, by="constituents"),
        ],
        {"i": None},
    )
    assert model.utility({"i": "x"}) == 0.5


def test_red_lines_match_partial_outcomes() -> None:
    m = Mandate(red_lines=[RedLine({"a": "1", "b": "2"})], reservation=0.1)
    assert m.violation({"a": "1", "b": "2", "c": "3"}) is not None
    assert m.violation({"a": "1", "b": "3"}) is None
    assert "reservation" in (m.violation({"a": "0"}, utility=0.0) or "")


@given(
    scores=st.lists(st.floats(min_value=-1, max_value=1), min_size=6, max_size=6),
    holders=st.lists(st.sets(st.sampled_from(["a", "b", "c"]), min_size=1), min_size=1, max_size=6),
)
def test_breakdown_always_sums_to_utility_and_stays_in_range(scores: list[float], holders: list[set[str]]) -> None:
    c = Constituency(
        id="c",
        cards=[card("a"), card("b"), card("c")],
        constituents=[{"id": f"p{n}", "holds": sorted(h)} for n, h in enumerate(holders)],
    )
    options = [("i", "x"), ("i", "y"), ("j", "x")]
    assessments = [
        Assessment(option=f"{i}/{o}", card=cid, score=scores[n * 2 + k])
        for n, (i, o) in enumerate(options)
        for k, cid in enumerate(["a", "b"])
    ]
    model = ValueModel(c, assessments, {"i": None, "j": None})
    for outcome in ({"i": "x", "j": "x"}, {"i": "y", "j": "x"}):
        b = model.breakdown(outcome)
        assert sum(x.contribution for x in b.contributions) == pytest.approx(b.utility, abs=1e-12)
        assert b.utility == pytest.approx(model.utility(outcome), abs=1e-12)
        assert -1 - 1e-9 <= b.utility <= 1 + 1e-9
