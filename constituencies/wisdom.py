"""Which values are wiser: MAI's moral-graph statistics, and a few opt-in improvements.

Reference: the Meaning Alignment Institute's `summarizeGraph` in
github.com/meaningalignment/dft, `app/values-tools/generate-moral-graph.ts` (commit
a777ec4, the one that produced `shared/data/moral-graph/`). What it computes, and what
this module reproduces by default:

- Counts per ordered pair (A -> B, "B is wiser than A"): every vote on A -> B adds one
  to `markedWiser` / `markedNotWiser` / `markedUnsure` (for upgrade / no_upgrade /
  not_sure) *and* one to `impressions`; every vote on B -> A adds one to `impressions`
  of A -> B too, and an upgrade on B -> A adds one to `markedLessWise`.
- `wiserLikelihood = (markedWiser - markedLessWise) / (markedWiser + markedNotWiser +
  markedUnsure + markedLessWise)`; MAI's division by zero (NaN) is 0.0 here, as in MAI's
  later `values-tools`; such an edge has no wiser vote and is always filtered out.
- `entropy` = Shannon entropy in bits of *all five* count fields taken as one
  distribution, `impressions` included (verified: it reproduces every stored figure).
- Filter: keep an edge when `markedWiser >= 2`, `wiserLikelihood >= 0.33` and
  `entropy <= 1.69`.
- Weighted PageRank over the kept edges only (nodes = values on a kept edge), damping
  0.85, start 1/N, 100 fixed iterations, teleport (1 - d)/N; a node passes d * rank to
  each out-neighbour in proportion to the edge's `wiserLikelihood` among its outgoing
  edges; a node with no kept outgoing edge (a "wisest" value) passes nothing on, so its
  mass leaks and the scores sum to less than 1. That sum is MAI's `pageRank`; here it is
  `ValueWeights.scores`, and `ValueWeights.weights` are the scores scaled to sum to 1.

Options that improve on the reference, all off by default (`RankingOptions`):

(a) `per_context=True`: rank each context's edges on their own instead of pooling every
    context into one graph. A value's wisdom is claimed *in a context* ("when seeking
    support"); pooling lets an edge voted in one context move weight in another. With a
    MAI export the counts of an edge listing several contexts are pooled already, so
    that edge counts in each of its contexts; for exact per-context counts from Accord
    votes, assemble one graph per context (`assemble_moral_graph(..., context=c)`).
(b) `dangling="uniform"` or `"personalization"`: a value with no kept outgoing edge
    hands its mass on (uniformly, or along the personalisation vector) instead of
    leaking it, so the scores are a probability distribution and can be compared across
    graphs and contexts. When the dangling mass goes where the teleport goes, the
    scores are a scalar multiple of the leaking ones, so the *weights* do not change
    (tested); they change when the teleport is personalised and the dangling mass is
    spread uniformly, or the reverse. `personalization` (value id -> mass) sets the
    teleport vector, e.g. to the share of constituents who hold each card.
(c) `entropy_votes_only=True`: entropy over the four vote counts only. Impressions are
    not an answer; counting them as one makes a unanimous edge score 1 bit instead of 0
    and lets unseen reverse votes move the figure. Without reverse votes MAI's entropy
    is 1 + H_votes / 2, so MAI's 1.69 corresponds to `max_entropy=1.38` here;
    `max_entropy` is not changed for you. With MAI's entropy, one more upgrade vote can
    push an edge past 1.69 and delete it (tested); over the votes only, with a cap of
    at least log2(1/0.33) = 1.6 (1.69 is), it cannot, since an edge that passes the
    likelihood test has at least a third of its answers "wiser", and adding to such a
    share lowers the entropy there.
(d) `rank_all_values=True`: rank every value of the graph, not only those on a kept
    edge. In MAI a value with no kept edge is not ranked at all, so a vote that cancels
    a value's only edge makes it vanish; here it keeps its teleport share (per context
    too: every value, voted in that context or not).

With (c) and (d) together an upgrade vote for B over A never lowers B's weight relative
to A (a property test); with MAI's defaults it can, in both ways above.

Everything is deterministic and independent of input order: nodes are sorted and edges
are summed in sorted order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    computed_field,
    model_validator,
)
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from constituencies.moral_graph import MoralGraph, MoralGraphEdge

MAI_DAMPING = 0.85
MAI_ITERATIONS = 100
MAI_MIN_WISER_VOTES = 2
MAI_MIN_LIKELIHOOD = 0.33
MAI_MAX_ENTROPY = 1.69

Count = Annotated[int, Strict(), Field(ge=0)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class VoteCounts(BaseModel):
    """MAI's `counts` of one ordered pair A -> B (see the module docstring)."""

    model_config = ConfigDict(
        extra="allow", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    marked_wiser: Count = Field(description="upgrade votes on A -> B")
    marked_not_wiser: Count = Field(description="no_upgrade votes on A -> B")
    marked_less_wise: Count = Field(description="upgrade votes on B -> A")
    marked_unsure: Count = Field(description="not_sure votes on A -> B")
    impressions: Count = Field(description="all votes on A -> B and on B -> A")

    @model_validator(mode="after")
    def _impressions_cover_votes(self) -> VoteCounts:
        if self.impressions < self.votes:
            raise ValueError(
                f"impressions ({self.impressions}) is less than the {self.votes} votes "
                "counted; every vote is also an impression"
            )
        return self

    @property
    def votes(self) -> int:
        """The denominator of MAI's likelihood: every answer that bears on A -> B."""
        return (
            self.marked_wiser + self.marked_not_wiser + self.marked_unsure + self.marked_less_wise
        )


class EdgeSummary(BaseModel):
    """MAI's `summary` of an edge, derived from its counts."""

    model_config = ConfigDict(
        extra="allow", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    wiser_likelihood: FiniteFloat = Field(ge=-1.0, le=1.0)
    entropy: FiniteFloat = Field(ge=0.0)


def wiser_likelihood(counts: VoteCounts) -> float:
    """(wiser - less wise) / votes: net share of answers saying B is wiser than A.

    0.0 when nobody answered (MAI's original divides by zero; such an edge never passes
    the filter because it has no wiser vote).
    """
    total = counts.votes
    if total == 0:
        return 0.0
    return (counts.marked_wiser - counts.marked_less_wise) / total


def entropy(counts: VoteCounts, *, votes_only: bool = False) -> float:
    """Shannon entropy in bits of the counts taken as one distribution.

    MAI's figure (the default) includes `impressions` as a fifth category; with
    `votes_only` it is the entropy of the four answers alone (option (c)).
    """
    parts = [
        counts.marked_wiser,
        counts.marked_not_wiser,
        counts.marked_less_wise,
        counts.marked_unsure,
    ]
    if not votes_only:
        parts.append(counts.impressions)
    total = sum(parts)
    if total == 0:
        return 0.0
    return -sum(n / total * math.log2(n / total) for n in parts if n > 0)


def summarize(counts: VoteCounts, *, votes_only: bool = False) -> EdgeSummary:
    """The `summary` MAI stores beside the counts."""
    return EdgeSummary(
        wiser_likelihood=wiser_likelihood(counts),
        entropy=entropy(counts, votes_only=votes_only),
    )


DanglingMode = Literal["leak", "uniform", "personalization"]


class RankingOptions(BaseModel):
    """Thresholds and PageRank settings; the defaults reproduce MAI exactly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_wiser_votes: int = Field(default=MAI_MIN_WISER_VOTES, ge=1)
    min_likelihood: float = Field(
        default=MAI_MIN_LIKELIHOOD,
        ge=0.0,
        description="Likelihood is the PageRank edge weight, so it may not go negative.",
    )
    max_entropy: float = MAI_MAX_ENTROPY
    entropy_votes_only: bool = Field(default=False, description="option (c)")
    damping: float = Field(default=MAI_DAMPING, ge=0.0, lt=1.0)
    iterations: int = Field(default=MAI_ITERATIONS, ge=1)
    per_context: bool = Field(default=False, description="option (a)")
    rank_all_values: bool = Field(default=False, description="option (d)")
    dangling: DanglingMode = Field(default="leak", description="option (b)")
    personalization: dict[int, Annotated[float, Field(ge=0.0)]] | None = Field(
        default=None,
        description="Teleport mass per value id; uniform when None. Needed by "
        "dangling='personalization'.",
    )


def keeps_edge(counts: VoteCounts, options: RankingOptions | None = None) -> bool:
    """MAI's filter: enough wiser votes, a likely enough upgrade, and agreement."""
    opts = options or RankingOptions()
    return (
        counts.marked_wiser >= opts.min_wiser_votes
        and wiser_likelihood(counts) >= opts.min_likelihood
        and entropy(counts, votes_only=opts.entropy_votes_only) <= opts.max_entropy
    )


def filter_edges(
    edges: Iterable[MoralGraphEdge], options: RankingOptions | None = None
) -> list[MoralGraphEdge]:
    """The edges that pass MAI's thresholds, judged on their counts (not a stored summary)."""
    return [edge for edge in edges if keeps_edge(edge.counts, options)]


Arc = tuple[int, int, float]


def pagerank(
    arcs: Iterable[Arc],
    *,
    damping: float = MAI_DAMPING,
    iterations: int = MAI_ITERATIONS,
    dangling: DanglingMode = "leak",
    personalization: Mapping[int, float] | None = None,
    extra_nodes: Iterable[int] = (),
) -> dict[int, float]:
    """Weighted PageRank over arcs (less wise, wiser, weight), MAI's power iteration.

    Nodes are the arcs' endpoints plus `extra_nodes`. A node splits d times its rank over its
    arcs in proportion to their weights; a node whose arcs weigh nothing in total is
    dangling, and its mass leaks (MAI), or goes uniformly or along the personalisation
    vector.
    """
    arc_list = sorted(arcs)
    if any(weight < 0 for _, _, weight in arc_list):
        raise ValueError("PageRank arc weights must not be negative")
    nodes = sorted({n for a, b, _ in arc_list for n in (a, b)}.union(extra_nodes))
    if not nodes:
        return {}
    teleport = _distribution(nodes, personalization)
    if dangling == "uniform":
        sink_share = {n: 1.0 / len(nodes) for n in nodes}
    elif dangling == "personalization":
        if personalization is None:
            raise ValueError("dangling='personalization' needs a personalization vector")
        sink_share = teleport
    else:
        sink_share = None
    out_weight = dict.fromkeys(nodes, 0.0)
    for source, _, weight in arc_list:
        out_weight[source] += weight
    shares = [(s, w, weight / out_weight[s]) for s, w, weight in arc_list if out_weight[s] > 0]
    sinks = [n for n in nodes if out_weight[n] <= 0]

    rank = {n: 1.0 / len(nodes) for n in nodes}
    for _ in range(iterations):
        new = {n: (1.0 - damping) * teleport[n] for n in nodes}
        for source, wiser, share in shares:
            new[wiser] += damping * rank[source] * share
        if sink_share is not None:
            lost = damping * sum(rank[n] for n in sinks)
            for n in nodes:
                new[n] += lost * sink_share[n]
        rank = new
    return rank


def _distribution(nodes: Sequence[int], mass: Mapping[int, float] | None) -> dict[int, float]:
    if mass is None:
        return {n: 1.0 / len(nodes) for n in nodes}
    total = sum(max(mass.get(n, 0.0), 0.0) for n in nodes)
    if total <= 0.0:
        raise ValueError("the personalization vector gives no mass to any ranked value")
    return {n: max(mass.get(n, 0.0), 0.0) / total for n in nodes}


class ValueWeights(BaseModel):
    """PageRank of the values in one context (None: all contexts pooled)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    context: str | None
    scores: dict[int, float] = Field(
        description="PageRank as computed: MAI's `pageRank` when dangling mass leaks."
    )
    edges: int = Field(description="How many kept edges produced the scores.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def weights(self) -> dict[int, float]:
        """The scores scaled to sum to 1: what a delegate weighs its values by."""
        total = sum(self.scores.values())
        if total <= 0.0:
            return {}
        return {v: s / total for v, s in self.scores.items()}

    def ranked(self) -> list[tuple[int, float]]:
        """(value id, weight), heaviest first, ties by id."""
        return sorted(self.weights.items(), key=lambda item: (-item[1], item[0]))


def rank_values(
    graph: MoralGraph, options: RankingOptions | None = None
) -> dict[str | None, ValueWeights]:
    """Weights of the graph's values, pooled (key None) or per context (option (a)).

    Contexts in which no edge passes the filter are left out, unless every value is
    ranked (option (d)): then every context of the graph has a ranking.
    """
    opts = options or RankingOptions()
    kept = filter_edges(graph.edges, opts)
    everyone = [v.id for v in graph.values] if opts.rank_all_values else []
    groups: dict[str | None, list[MoralGraphEdge]]
    if not opts.per_context:
        groups = {None: kept}
    else:
        groups = {c: [] for c in graph.contexts()} if everyone else {}
        for edge in kept:
            for context in dict.fromkeys(edge.contexts):
                groups.setdefault(context, []).append(edge)
    result: dict[str | None, ValueWeights] = {}
    for context in sorted(groups, key=lambda c: (c is not None, c or "")):
        edges = groups[context]
        if not edges and not everyone:
            continue
        arcs = [
            (e.source_value_id, e.wiser_value_id, wiser_likelihood(e.counts)) for e in edges
        ]
        scores = pagerank(
            arcs,
            damping=opts.damping,
            iterations=opts.iterations,
            dangling=opts.dangling,
            personalization=opts.personalization,
            extra_nodes=everyone,
        )
        if not scores:
            continue
        result[context] = ValueWeights(context=context, scores=scores, edges=len(edges))
    return result
