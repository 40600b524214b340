"""MAI's edge statistics and weighted PageRank, reproduced; and the opt-in improvements."""

from __future__ import annotations

import math
import random
from typing import Literal

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constituencies.cards import ValuesCard
from constituencies.constituency import WiserThanVote
from constituencies.moral_graph import MoralGraph, wisdom_weights
from constituencies.wisdom import (
    RankingOptions,
    VoteCounts,
    entropy,
    filter_edges,
    keeps_edge,
    pagerank,
    rank_values,
    wiser_likelihood,
)
from tests.moral_graph_data import REAL_EDGES, real_graph, real_graph_path  # noqa: F401

VoteKind = Literal["upgrade", "no_upgrade", "not_sure"]


def _counts(w: int, n: int, lw: int, u: int, imp: int) -> VoteCounts:
    return VoteCounts(
        marked_wiser=w, marked_not_wiser=n, marked_less_wise=lw, marked_unsure=u, impressions=imp
    )


# --- per-edge statistics ---------------------------------------------------------------


@pytest.mark.parametrize("index", range(REAL_EDGES), ids=[f"edges[{i}]" for i in range(REAL_EDGES)])
def test_recomputed_summary_equals_stored(real_graph: MoralGraph, index: int) -> None:
    edge = real_graph.edges[index]
    assert wiser_likelihood(edge.counts) == pytest.approx(edge.summary.wiser_likelihood, abs=1e-9)
    assert entropy(edge.counts) == pytest.approx(edge.summary.entropy, abs=1e-9)


def test_formulas_on_hand_worked_edges() -> None:
    # 167 -> 174 in the real graph: 3 wiser, 1 unsure, 4 impressions.
    c = _counts(3, 0, 0, 1, 4)
    assert wiser_likelihood(c) == 0.75
    expected = -(3 / 8 * math.log2(3 / 8) + 1 / 8 * math.log2(1 / 8) + 4 / 8 * math.log2(4 / 8))
    assert entropy(c) == pytest.approx(expected, abs=1e-15)
    # Less-wise votes count against, and in the denominator: 292 -> 260 is (20 - 2) / 30.
    assert wiser_likelihood(_counts(20, 3, 2, 5, 32)) == pytest.approx(0.6)
    # MAI's entropy counts impressions as an answer; over the votes only it is lower.
    assert entropy(_counts(2, 0, 0, 0, 2)) == 1.0
    assert entropy(_counts(2, 0, 0, 0, 2), votes_only=True) == 0.0
    three_to_one = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert entropy(c, votes_only=True) == pytest.approx(three_to_one)
    # No answers at all: MAI divides by zero; here 0.0, and the edge is filtered out.
    assert wiser_likelihood(_counts(0, 0, 0, 0, 3)) == 0.0
    assert not keeps_edge(_counts(0, 0, 0, 0, 3))


def test_mai_filter_thresholds() -> None:
    assert keeps_edge(_counts(2, 0, 0, 0, 2))
    assert not keeps_edge(_counts(1, 0, 0, 0, 1))  # fewer than 2 wiser votes
    assert keeps_edge(_counts(3, 0, 0, 6, 9))  # likelihood 1/3 >= 0.33, as 166 -> 260
    assert not keeps_edge(_counts(2, 2, 0, 3, 7))  # likelihood 2/7 < 0.33
    assert not keeps_edge(_counts(2, 1, 0, 1, 4))  # entropy 1.75 > 1.69
    relaxed = RankingOptions(max_entropy=2.0)
    assert keeps_edge(_counts(2, 1, 0, 1, 4), relaxed)


def test_every_real_edge_passes_mai_filter(real_graph: MoralGraph) -> None:
    # The export holds only trimmed edges, so the defaults must keep all of them.
    assert len(real_graph.edges) == REAL_EDGES
    assert filter_edges(real_graph.edges) == real_graph.edges


# --- PageRank --------------------------------------------------------------------------


def _mai_pagerank_oracle(graph: MoralGraph) -> dict[int, float]:
    """MAI's loop as its prose reads: file order, per-edge outgoing sums, 100 rounds."""
    edges = [(e.source_value_id, e.wiser_value_id, e.summary.wiser_likelihood) for e in graph.edges]
    nodes = list(dict.fromkeys(n for s, w, _ in edges for n in (s, w)))
    rank = {n: 1 / len(nodes) for n in nodes}
    for _ in range(100):
        new = {n: 0.15 / len(nodes) for n in nodes}
        for s, w, lik in edges:
            total = sum(l2 for s2, _, l2 in edges if s2 == s)
            if total > 0:
                new[w] += 0.85 * rank[s] * lik / total
        rank = new
    return rank


def test_pagerank_reproduces_mai(real_graph: MoralGraph) -> None:
    ranking = rank_values(real_graph)[None]
    oracle = _mai_pagerank_oracle(real_graph)
    assert set(ranking.scores) == set(oracle) == {v.id for v in real_graph.values}
    for value_id, score in oracle.items():
        assert ranking.scores[value_id] == pytest.approx(score, rel=1e-12, abs=1e-15)
    # Sinks leak: MAI's pageRank figures do not sum to 1.
    assert sum(ranking.scores.values()) < 0.5
    assert ranking.edges == REAL_EDGES


def test_weights_agree_with_networkx(real_graph: MoralGraph) -> None:
    """networkx hands dangling mass on uniformly; normalised, that is MAI's ranking."""
    g = nx.DiGraph()
    for e in real_graph.edges:
        g.add_edge(e.source_value_id, e.wiser_value_id, weight=wiser_likelihood(e.counts))
    theirs = nx.pagerank(g, alpha=0.85, weight="weight", tol=1e-14, max_iter=1000)
    ours = rank_values(real_graph)[None].weights
    for value_id, weight in theirs.items():
        assert ours[value_id] == pytest.approx(weight, abs=1e-7)


def test_real_weights_print_and_sum_to_one(real_graph: MoralGraph) -> None:
    ranking = rank_values(real_graph)[None]
    assert sum(ranking.weights.values()) == pytest.approx(1.0, abs=1e-12)
    top = ranking.ranked()[:10]
    lines = [f"{i:>2}. {w:.4f}  {real_graph.value(v).title}" for i, (v, w) in enumerate(top, 1)]
    print("\n".join(lines))
    assert [v for v, _ in top[:3]] == [289, 298, 303]
    assert len(lines) == 10


def test_dangling_redistribution_keeps_weights_and_fixes_the_sum(real_graph: MoralGraph) -> None:
    leak = rank_values(real_graph, RankingOptions(iterations=300))[None]
    uniform = rank_values(real_graph, RankingOptions(iterations=300, dangling="uniform"))[None]
    assert sum(uniform.scores.values()) == pytest.approx(1.0, abs=1e-12)
    for value_id, weight in leak.weights.items():
        assert uniform.weights[value_id] == pytest.approx(weight, abs=1e-12)


def test_personalised_teleport_moves_weight() -> None:
    arcs = [(1, 2, 1.0), (3, 2, 0.5), (3, 4, 0.5)]
    plain = pagerank(arcs)
    tilted = pagerank(arcs, personalization={3: 1.0}, dangling="personalization")
    assert sum(tilted.values()) == pytest.approx(1.0)
    assert tilted[1] == pytest.approx(0.0)
    assert tilted[4] / tilted[2] > plain[4] / plain[2]
    with pytest.raises(ValueError, match="no mass"):
        pagerank(arcs, personalization={9: 1.0})
    with pytest.raises(ValueError, match="needs a personalization"):
        pagerank(arcs, dangling="personalization")
    with pytest.raises(ValueError, match="negative"):
        pagerank([(1, 2, -0.5)])
    assert pagerank([]) == {}


def test_per_context_rankings_on_the_real_graph(real_graph: MoralGraph) -> None:
    per_context = rank_values(real_graph, RankingOptions(per_context=True))
    assert None not in per_context
    assert sorted(per_context) == real_graph.contexts()
    for context, ranking in per_context.items():
        assert ranking.context == context
        assert sum(ranking.weights.values()) == pytest.approx(1.0, abs=1e-12)
    # The one edge voted in two contexts (296 -> 283) counts in both.
    assert 283 in per_context["When in distress"].weights
    assert 283 in per_context["When seeking support"].weights
    assert sum(r.edges for r in per_context.values()) == REAL_EDGES + 1


def test_ranking_ignores_file_order(real_graph: MoralGraph) -> None:
    rng = random.Random(7)
    values, edges = list(real_graph.values), list(real_graph.edges)
    rng.shuffle(values)
    rng.shuffle(edges)
    shuffled = MoralGraph(values=values, edges=edges)
    for options in (RankingOptions(), RankingOptions(per_context=True, dangling="uniform")):
        assert rank_values(shuffled, options) == rank_values(real_graph, options)


# --- properties of the aggregation, on constituency-sized data -------------------------

CARDS = [
    ValuesCard(
        id=f"c{i}",
        title=f"Value {i}",
        description="d",
        policies=[f"MOMENTS {i}", f"SIGNS {i}", f"CHOICES {i}"],
    )
    for i in range(5)
]
IDS = [c.id for c in CARDS]
CONTEXTS = ["home", "work"]

vote = st.builds(
    WiserThanVote,
    context=st.sampled_from(CONTEXTS),
    less_wise=st.sampled_from(IDS),
    wiser=st.sampled_from(IDS),
    vote=st.sampled_from(["upgrade", "upgrade", "no_upgrade", "not_sure"]),
).filter(lambda v: v.less_wise != v.wiser)
votes = st.lists(vote, max_size=40)
options = st.builds(
    RankingOptions,
    per_context=st.booleans(),
    rank_all_values=st.booleans(),
    dangling=st.sampled_from(["leak", "uniform"]),
    entropy_votes_only=st.booleans(),
    min_wiser_votes=st.sampled_from([1, 2]),
)


@settings(max_examples=200, deadline=None)
@given(votes=votes, opts=options)
def test_weights_sum_to_one_in_every_context(
    votes: list[WiserThanVote], opts: RankingOptions
) -> None:
    for ranking in wisdom_weights(CARDS, votes, opts).values():
        assert sum(ranking.values()) == pytest.approx(1.0, abs=1e-9)
        assert all(w >= 0 for w in ranking.values())


@settings(max_examples=150, deadline=None)
@given(votes=votes, opts=options, seed=st.integers(0, 2**32 - 1))
def test_input_order_does_not_matter(
    votes: list[WiserThanVote], opts: RankingOptions, seed: int
) -> None:
    rng = random.Random(seed)
    shuffled_votes, shuffled_cards = list(votes), list(CARDS)
    rng.shuffle(shuffled_votes)
    rng.shuffle(shuffled_cards)
    expected = wisdom_weights(CARDS, votes, opts)
    assert wisdom_weights(shuffled_cards, shuffled_votes, opts) == expected


# Options (c) and (d): see the two tests after the property for why MAI's defaults fail it.
MONOTONE_OPTIONS = [
    RankingOptions(entropy_votes_only=True, rank_all_values=True),
    RankingOptions(entropy_votes_only=True, rank_all_values=True, per_context=True),
    RankingOptions(
        entropy_votes_only=True, rank_all_values=True, dangling="uniform", min_wiser_votes=1
    ),
    RankingOptions(max_entropy=math.inf, rank_all_values=True),
]


def _relative_standing_kept(
    before: dict[str, float], after: dict[str, float], less_wise: str, wiser: str
) -> bool:
    """Did `wiser` keep its standing against `less_wise`? Unranked means no weight at all.

    Both ranked before: `wiser` may not drop out while `less_wise` stays, and their ratio
    may not fall. Only `wiser` ranked before: it stays ranked.
    """
    if wiser not in before:
        return True
    if less_wise not in before:
        return wiser in after
    if less_wise not in after:
        return True
    if wiser not in after:
        return False
    return after[wiser] * before[less_wise] >= before[wiser] * after[less_wise] * (1 - 1e-9)


@settings(max_examples=300, deadline=None)
@given(
    votes=votes,
    pair=st.lists(st.sampled_from(IDS), min_size=2, max_size=2, unique=True),
    context=st.sampled_from(CONTEXTS),
    opts=st.sampled_from(MONOTONE_OPTIONS),
)
def test_an_upgrade_never_lowers_the_wiser_value(
    votes: list[WiserThanVote], pair: list[str], context: str, opts: RankingOptions
) -> None:
    less_wise, wiser = pair
    extra = WiserThanVote(context=context, less_wise=less_wise, wiser=wiser, vote="upgrade")
    before = wisdom_weights(CARDS, votes, opts)
    after = wisdom_weights(CARDS, [*votes, extra], opts)
    key = context if opts.per_context else None
    assert _relative_standing_kept(before.get(key, {}), after.get(key, {}), less_wise, wiser)


def test_mai_entropy_filter_can_punish_an_upgrade() -> None:
    """Why the property above uses option (c) or no entropy cap: with MAI's defaults one
    more upgrade for B over A can push A -> B past entropy 1.69 and delete the edge."""

    def votes_for(extra_upgrades: int) -> list[WiserThanVote]:
        def v(a: str, b: str, kind: VoteKind, n: int) -> list[WiserThanVote]:
            return [WiserThanVote(context="x", less_wise=a, wiser=b, vote=kind)] * n

        return [
            *v("c0", "c1", "upgrade", 5 + extra_upgrades),
            *v("c0", "c1", "no_upgrade", 5),
            *v("c0", "c1", "not_sure", 5),
            *v("c1", "c0", "no_upgrade", 4),
            *v("c2", "c0", "upgrade", 3),
            *v("c3", "c1", "upgrade", 3),
        ]

    mai_before = wisdom_weights(CARDS, votes_for(0))[None]
    mai_after = wisdom_weights(CARDS, votes_for(1))[None]
    assert mai_after["c1"] / mai_after["c0"] < mai_before["c1"] / mai_before["c0"]
    fixed = RankingOptions(entropy_votes_only=True)
    before = wisdom_weights(CARDS, votes_for(0), fixed)[None]
    after = wisdom_weights(CARDS, votes_for(1), fixed)[None]
    assert after["c1"] / after["c0"] >= before["c1"] / before["c0"]


def test_mai_node_set_can_drop_the_upgraded_value() -> None:
    """An upgrade for c1 over c0 cancels c1's only edge (c1 -> c0), so MAI stops ranking
    c1 at all while c0 stays ranked; with option (d) c1 keeps its teleport share."""

    def v(a: str, b: str, kind: VoteKind) -> WiserThanVote:
        return WiserThanVote(context="x", less_wise=a, wiser=b, vote=kind)

    votes = [
        *[v("c1", "c0", "upgrade")] * 2,
        v("c1", "c0", "not_sure"),
        *[v("c0", "c2", "upgrade")] * 2,
    ]
    extra = v("c0", "c1", "upgrade")
    before, after = wisdom_weights(CARDS, votes)[None], wisdom_weights(CARDS, [*votes, extra])[None]
    assert "c1" in before and "c1" not in after and "c0" in after
    everyone = RankingOptions(rank_all_values=True)
    before = wisdom_weights(CARDS, votes, everyone)[None]
    after = wisdom_weights(CARDS, [*votes, extra], everyone)[None]
    assert set(before) == set(after) == set(IDS)
    assert after["c1"] / after["c0"] > before["c1"] / before["c0"]


def test_rank_all_values_ranks_every_value(real_graph: MoralGraph) -> None:
    lonely = real_graph.values[0].model_copy(update={"id": 1})
    graph = MoralGraph(values=[*real_graph.values, lonely], edges=real_graph.edges)
    assert 1 not in rank_values(graph)[None].weights
    pooled = rank_values(graph, RankingOptions(rank_all_values=True))[None]
    assert set(pooled.weights) == {v.id for v in graph.values}
    assert pooled.weights[1] == min(pooled.weights.values())
    split = rank_values(graph, RankingOptions(rank_all_values=True, per_context=True))
    assert all(len(r.weights) == len(graph.values) for r in split.values())
