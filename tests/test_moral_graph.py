"""MAI moral-graph files: import, export, conversion to Accord cards, assembly from votes."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constituencies.cards import ValuesCard
from constituencies.constituency import WiserThanVote
from constituencies.moral_graph import (
    MoralGraph,
    MoralGraphError,
    assemble_moral_graph,
    dump_moral_graph,
    load_moral_graph,
    moral_graph_json,
    wisdom_weights,
)
from constituencies.wisdom import RankingOptions
from tests.moral_graph_data import real_graph, real_graph_path  # noqa: F401 (fixtures)

VoteKind = Literal["upgrade", "no_upgrade", "not_sure"]


def _card(card_id: str, title: str | None = None) -> ValuesCard:
    return ValuesCard(
        id=card_id,
        title=title or f"Value {card_id}",
        description=f"What {card_id} attends to.",
        policies=[
            f"MOMENTS when {card_id} matters",
            f"SIGNS that {card_id} is honoured",
            f"CHOICES that keep {card_id} alive",
        ],
    )


def _vote(
    less_wise: str, wiser: str, vote: VoteKind = "upgrade", context: str = "ctx"
) -> WiserThanVote:
    return WiserThanVote(context=context, less_wise=less_wise, wiser=wiser, vote=vote)


# --- the real graph --------------------------------------------------------------------


def test_real_graph_imports(real_graph: MoralGraph) -> None:
    graph = real_graph
    assert len(graph.values) == 59
    assert len(graph.edges) == 67
    assert graph.value(332).title == "Engaging Education"
    first = graph.edges[0]
    assert (first.source_value_id, first.wiser_value_id) == (167, 174)
    assert first.contexts == ["When making decisions"]
    assert first.counts.marked_wiser == 3 and first.counts.impressions == 4
    assert first.summary.wiser_likelihood == 0.75
    policy_counts = Counter(len(v.evaluation_criteria) for v in graph.values)
    assert sorted(policy_counts) == [2, 3, 4, 5, 6, 7, 9]
    assert len(graph.contexts()) == 11


def test_real_graph_round_trips_byte_for_byte(
    tmp_path: Path, real_graph: MoralGraph, real_graph_path: Path
) -> None:
    out = tmp_path / "again.json"
    dump_moral_graph(real_graph, out)
    assert out.read_bytes() == real_graph_path.read_bytes()
    assert load_moral_graph(out) == real_graph
    assert json.loads(moral_graph_json(real_graph)) == json.loads(real_graph_path.read_text())


def test_real_graph_to_cards_keeps_conforming_values(real_graph: MoralGraph) -> None:
    graph = real_graph
    cards, rejected = graph.to_cards()
    assert len(cards) + len(rejected) == len(graph.values)
    assert {value_id for value_id, _ in rejected} == {332, 219, 304, 284, 208}
    assert all("a card needs 3 to 7" in reason for _, reason in rejected)
    by_id = {c.id: c for c in cards}
    card = by_id["mg-333"]
    assert card.title == "Reward-Based Motivation"
    assert card.policies == graph.value(333).evaluation_criteria
    assert card.description == graph.value(333).instructions_short


def test_real_graph_tallies_use_vote_vocabulary(real_graph: MoralGraph) -> None:
    graph = real_graph
    tallies = graph.to_tallies()
    assert len(tallies) == len(graph.edges)
    for tally, edge in zip(tallies, graph.edges, strict=True):
        assert tally.less_wise == f"mg-{edge.source_value_id}"
        assert tally.wiser == f"mg-{edge.wiser_value_id}"
        assert (tally.upgrade, tally.no_upgrade, tally.not_sure) == (
            edge.counts.marked_wiser,
            edge.counts.marked_not_wiser,
            edge.counts.marked_unsure,
        )
        assert tally.reverse_upgrade == edge.counts.marked_less_wise
        assert tally.contexts == edge.contexts


# --- extra fields and shape ------------------------------------------------------------


def _tiny() -> dict[str, Any]:
    value = {
        "id": 1,
        "title": "One",
        "instructionsShort": "s",
        "instructionsDetailed": "d",
        "evaluationCriteria": ["MOMENTS a", "SIGNS b", "CHOICES c"],
    }
    edge = {
        "sourceValueId": 1,
        "wiserValueId": 2,
        "contexts": ["c"],
        "counts": {
            "markedWiser": 2,
            "markedNotWiser": 0,
            "markedLessWise": 0,
            "markedUnsure": 0,
            "impressions": 2,
        },
        "summary": {"wiserLikelihood": 1, "entropy": 1},
    }
    return {"values": [value, {**value, "id": 2, "title": "Two"}], "edges": [edge]}


def test_extra_fields_are_kept_on_export(tmp_path: Path) -> None:
    data = _tiny()
    data["values"][0]["pageRank"] = 0.25
    data["values"][0]["votes"] = 3
    data["edges"][0]["summary"]["demographics"] = {"Democrat": 2}
    data["edges"][0]["note"] = "kept"
    data["allEdges"] = []
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(data))
    graph = load_moral_graph(path)
    out = tmp_path / "out.json"
    dump_moral_graph(graph, out)
    assert json.loads(out.read_text()) == data


def test_dump_does_not_leave_half_files(tmp_path: Path) -> None:
    graph = MoralGraph.model_validate(_tiny())
    dump_moral_graph(graph, tmp_path / "g.json")
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


# --- malformed files -------------------------------------------------------------------


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _append_copy(kind: str, index: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data[kind].append({**data[kind][index], **changes})

    return mutate


MALFORMED = [
    ("missing-field", _delete(["edges", 12, "counts", "impressions"]),
     ["edges[12].counts.impressions", "missing"]),
    ("missing-summary", _delete(["edges", 3, "summary"]), ["edges[3].summary", "missing"]),
    ("unknown-value", _set(["edges", 12, "wiserValueId"], 99999),
     ["edges[12].wiserValueId", "unknown value id 99999"]),
    ("negative-count", _set(["edges", 7, "counts", "markedNotWiser"], -1),
     ["edges[7].counts.markedNotWiser", "greater than or equal to 0"]),
    ("fractional-count", _set(["edges", 7, "counts", "markedWiser"], 2.5),
     ["edges[7].counts.markedWiser"]),
    ("id-not-int", _set(["values", 4, "id"], "three"), ["values[4].id"]),
    ("title-missing", _delete(["values", 9, "title"]), ["values[9].title", "missing"]),
    ("policies-not-list", _set(["values", 2, "evaluationCriteria"], "ONE thing"),
     ["values[2].evaluationCriteria"]),
    ("impressions-below-votes", _set(["edges", 5, "counts", "impressions"], 0),
     ["edges[5].counts", "impressions (0) is less than"]),
    ("likelihood-out-of-range", _set(["edges", 2, "summary", "wiserLikelihood"], 3),
     ["edges[2].summary.wiserLikelihood"]),
    ("duplicate-value", _append_copy("values", 0), ["values[59].id", "duplicate value id 332"]),
    ("duplicate-edge", _append_copy("edges", 0), ["edges[67]", "duplicate edge 167 -> 174"]),
    ("self-loop", _set(["edges", 1, "wiserValueId"], 166), ["edges[1]", "to itself"]),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [pytest.param(m, e, id=name) for name, m, e in MALFORMED]
)
def test_malformed_graph_names_entry_and_field(
    tmp_path: Path,
    real_graph: MoralGraph,
    mutate: Callable[[dict[str, Any]], None],
    expected: list[str],
) -> None:
    data = json.loads(moral_graph_json(real_graph))
    mutate(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MoralGraphError) as caught:
        load_moral_graph(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message
    assert isinstance(caught.value, ValueError)


def test_bad_json_names_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"values": [], "edges": [\n  {"sourceValueId": 1,,}\n]}')
    with pytest.raises(MoralGraphError, match=r"bad\.json: line 2 column \d+: not valid JSON"):
        load_moral_graph(path)


def test_wrong_top_level_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[]")
    with pytest.raises(MoralGraphError, match="list.json: .*dictionary"):
        load_moral_graph(path)
    with pytest.raises(MoralGraphError, match="nowhere.json: cannot read"):
        load_moral_graph(tmp_path / "nowhere.json")


def test_every_problem_is_listed(tmp_path: Path) -> None:
    data = _tiny()
    del data["edges"][0]["counts"]["markedWiser"]
    data["values"][1]["id"] = "x"
    path = tmp_path / "two.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MoralGraphError) as caught:
        load_moral_graph(path)
    locations = [loc for loc, _ in caught.value.problems]
    assert locations == ["values[1].id", "edges[0].counts.markedWiser"]


# --- assembly from Accord cards and votes ----------------------------------------------


def test_assembly_counts_votes_as_mai_does() -> None:
    cards = [_card("b"), _card("a"), _card("c")]
    votes = [
        _vote("a", "b", "upgrade", "home"),
        _vote("a", "b", "upgrade", "work"),
        _vote("a", "b", "no_upgrade", "home"),
        _vote("a", "b", "not_sure", "home"),
        _vote("b", "a", "upgrade", "home"),
        _vote("b", "a", "no_upgrade", "home"),
        _vote("a", "c", "no_upgrade", "home"),
    ]
    graph = assemble_moral_graph(cards, votes)
    assert [v.card_id for v in graph.values] == ["a", "b", "c"]
    assert [v.id for v in graph.values] == [1, 2, 3]
    edges = {
        (graph.card_id(e.source_value_id), graph.card_id(e.wiser_value_id)): e
        for e in graph.edges
    }
    ab, ba, ac, ca = edges["a", "b"], edges["b", "a"], edges["a", "c"], edges["c", "a"]
    assert ab.counts.model_dump() == {
        "marked_wiser": 2,
        "marked_not_wiser": 1,
        "marked_less_wise": 1,
        "marked_unsure": 1,
        "impressions": 6,
    }
    assert ab.contexts == ["home", "work"]
    assert ab.summary.wiser_likelihood == pytest.approx((2 - 1) / 5)
    assert (ba.counts.marked_wiser, ba.counts.marked_less_wise, ba.counts.impressions) == (1, 2, 6)
    assert (ac.counts.marked_not_wiser, ac.counts.impressions) == (1, 1)
    assert (ca.counts.votes, ca.counts.impressions, ca.summary.wiser_likelihood) == (0, 1, 0.0)
    home_only = assemble_moral_graph(cards, votes, context="home")
    assert home_only.edges[0].counts.marked_wiser == 1


def test_assembly_rejects_unknown_cards_and_self_votes() -> None:
    cards = [_card("a"), _card("b")]
    with pytest.raises(MoralGraphError, match=r"votes\[1\]\.wiser: unknown card 'z'"):
        assemble_moral_graph(cards, [_vote("a", "b"), _vote("a", "z")])
    with pytest.raises(MoralGraphError, match=r"votes\[0\]: a card cannot be wiser than itself"):
        assemble_moral_graph(cards, [_vote("a", "a")])
    with pytest.raises(MoralGraphError, match="duplicate card id 'a'"):
        assemble_moral_graph([_card("a"), _card("a")], [])


def test_assembled_graph_round_trips_to_cards(tmp_path: Path) -> None:
    cards = [_card("r-home", "Staying rooted"), _card("r-green", "Green places")]
    graph = assemble_moral_graph(cards, [_vote("r-home", "r-green")])
    back, rejected = graph.to_cards()
    assert rejected == []
    assert [(c.id, c.title, c.policies) for c in back] == [
        (c.id, c.title, c.policies) for c in sorted(cards, key=lambda c: c.id)
    ]
    dump_moral_graph(graph, tmp_path / "g.json")
    assert json.loads((tmp_path / "g.json").read_text())["values"][0]["cardId"] == "r-green"
    assert load_moral_graph(tmp_path / "g.json") == graph


CARD_IDS = ["a", "b", "c", "d"]
votes_strategy = st.lists(
    st.builds(
        _vote,
        st.sampled_from(CARD_IDS),
        st.sampled_from(CARD_IDS),
        st.sampled_from(["upgrade", "no_upgrade", "not_sure"]),
        st.sampled_from(["home", "work"]),
    ).filter(lambda v: v.less_wise != v.wiser),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(votes=votes_strategy)
def test_assembled_counts_match_the_votes(votes: list[WiserThanVote]) -> None:
    graph = assemble_moral_graph([_card(c) for c in CARD_IDS], votes)
    for edge in graph.edges:
        a, b = graph.card_id(edge.source_value_id), graph.card_id(edge.wiser_value_id)
        on_ab = Counter(v.vote for v in votes if (v.less_wise, v.wiser) == (a, b))
        on_ba = Counter(v.vote for v in votes if (v.less_wise, v.wiser) == (b, a))
        assert edge.counts.marked_wiser == on_ab["upgrade"]
        assert edge.counts.marked_not_wiser == on_ab["no_upgrade"]
        assert edge.counts.marked_unsure == on_ab["not_sure"]
        assert edge.counts.marked_less_wise == on_ba["upgrade"]
        assert edge.counts.impressions == on_ab.total() + on_ba.total()
    direct = sum(
        e.counts.marked_wiser + e.counts.marked_not_wiser + e.counts.marked_unsure
        for e in graph.edges
    )
    assert direct == len(votes)


def test_wisdom_weights_by_card() -> None:
    cards = [_card(c) for c in "abc"]
    votes = [_vote("a", "b")] * 3 + [_vote("b", "c", context="work")] * 3
    pooled = wisdom_weights(cards, votes)
    assert set(pooled) == {None}
    assert sum(pooled[None].values()) == pytest.approx(1.0)
    assert pooled[None]["c"] > pooled[None]["b"] > pooled[None]["a"]
    split = wisdom_weights(cards, votes, RankingOptions(per_context=True))
    assert set(split) == {"ctx", "work"}
    assert set(split["ctx"]) == {"a", "b"} and set(split["work"]) == {"b", "c"}
    tilted = wisdom_weights(
        cards, votes, RankingOptions(dangling="personalization"), personalization={"a": 1.0}
    )
    assert sum(tilted[None].values()) == pytest.approx(1.0)
    assert tilted[None]["a"] > pooled[None]["a"]
    with pytest.raises(ValueError, match="by card id"):
        wisdom_weights(cards, votes, RankingOptions(personalization={1: 1.0}))
