"""How the ranking options of `constituencies.wisdom` move the top-10 values of a real graph.

    python benchmarks/moral_graph_options.py [path/to/moral-graph.json]

Defaults to MAI's DFT graph in ../shared. The baseline is MAI's method (all options
off). Per-context rankings (option (a)) have no single order; to compare them with the
pooled one, each value's weight is averaged over the contexts, either with each context
weighted by the votes cast on its edges ("by votes") or all contexts alike ("equal"); a
value absent from a context weighs 0 there. The per-context table compares each context
with the pooled ranking restricted to the same values, which needs no such choice.
Ranks are 1-based; '-' is "not ranked".
"""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path
from typing import Literal

from constituencies.moral_graph import MoralGraph, load_moral_graph
from constituencies.wisdom import RankingOptions, filter_edges, rank_values

DEFAULT = (
    Path(__file__).resolve().parents[1].parent
    / "shared" / "data" / "moral-graph" / "moral-graph-prolific-run.json"
)
TOP = 10
Mix = Literal["votes", "equal"]
ALL = RankingOptions(
    per_context=True, dangling="uniform", entropy_votes_only=True, rank_all_values=True
)

# (row label, column label, options, how per-context weights are mixed)
VARIANTS: list[tuple[str, str, RankingOptions, Mix]] = [
    ("MAI (baseline)", "MAI", RankingOptions(), "votes"),
    ("(a) per context, by votes", "(a)votes", RankingOptions(per_context=True), "votes"),
    ("(a) per context, equal", "(a)equal", RankingOptions(per_context=True), "equal"),
    ("(b) dangling uniform", "(b)", RankingOptions(dangling="uniform"), "votes"),
    ("(c) votes-only entropy <= 1.69", "(c)1.69", RankingOptions(entropy_votes_only=True), "votes"),
    (
        "(c) votes-only entropy <= 1.38",
        "(c)1.38",
        RankingOptions(entropy_votes_only=True, max_entropy=1.38),
        "votes",
    ),
    ("(d) rank all values", "(d)", RankingOptions(rank_all_values=True), "votes"),
    ("(a)+(b)+(c 1.69)+(d), by votes", "all", ALL, "votes"),
]


def global_weights(graph: MoralGraph, options: RankingOptions, mix: Mix) -> dict[int, float]:
    rankings = rank_values(graph, options)
    if not options.per_context:
        return rankings[None].weights
    kept = filter_edges(graph.edges, options)
    share = {
        c: sum(e.counts.votes for e in kept if c in e.contexts) if mix == "votes" else 1.0
        for c in rankings
    }
    total_share = sum(share.values())
    total: dict[int, float] = {}
    for context, ranking in rankings.items():
        for value_id, weight in ranking.weights.items():
            total[value_id] = total.get(value_id, 0.0) + weight * share[context] / total_share
    return total


def order(weights: dict[int, float]) -> list[int]:
    return [v for v, _ in sorted(weights.items(), key=lambda item: (-item[1], item[0]))]


def kendall_tau(a: dict[int, float], b: dict[int, float]) -> float:
    common = sorted(set(a) & set(b))
    concordant = discordant = 0
    for x, y in combinations(common, 2):
        s = (a[x] - a[y]) * (b[x] - b[y])
        concordant += s > 0
        discordant += s < 0
    pairs = concordant + discordant
    return (concordant - discordant) / pairs if pairs else 1.0


def main(path: Path) -> None:
    graph = load_moral_graph(path)
    print(f"{path.name}: {len(graph.values)} values, {len(graph.edges)} edges, "
          f"{len(graph.contexts())} contexts\n")
    results = {row: global_weights(graph, opts, mix) for row, _, opts, mix in VARIANTS}
    base = results[VARIANTS[0][0]]
    base_top = order(base)[:TOP]
    all_edges = {(e.source_value_id, e.wiser_value_id) for e in graph.edges}

    print(f"{'option':32} {'edges':>5} {'top-10 kept':>11} {'mean |Δrank|':>12} "
          f"{'max |Δrank|':>11} {'max |Δweight|':>13} {'tau':>6}  new in top-10; edges dropped")
    for row, _, opts, _ in VARIANTS:
        weights = results[row]
        ranks = {v: i for i, v in enumerate(order(weights), 1)}
        shifts = [abs(ranks.get(v, len(base) + 1) - i) for i, v in enumerate(base_top, 1)]
        top = order(weights)[:TOP]
        delta = max(abs(weights.get(v, 0.0) - base.get(v, 0.0)) for v in set(base) | set(weights))
        kept = filter_edges(graph.edges, opts)
        dropped = sorted(all_edges - {(e.source_value_id, e.wiser_value_id) for e in kept})
        entrants = ", ".join(str(v) for v in top if v not in base_top) or "-"
        gone = ", ".join(f"{a}->{b}" for a, b in dropped) or "-"
        print(f"{row:32} {len(kept):>5} {len(set(top) & set(base_top)):>8}/{TOP} "
              f"{sum(shifts) / TOP:>12.1f} {max(shifts):>11} {delta:>13.2e} "
              f"{kendall_tau(base, weights):>6.3f}  {entrants}; {gone}")

    print(f"\nBaseline top-{TOP} and each value's rank under each option")
    columns = [
        (col, {v: r for r, v in enumerate(order(results[row]), 1)})
        for row, col, _, _ in VARIANTS[1:]
    ]
    header = "".join(f"{c:>9}" for c, _ in columns)
    print(f"{'#':>2} {'id':>4} {'weight':>7}  {'title':40}{header}")
    for i, value_id in enumerate(base_top, 1):
        title = graph.value(value_id).title[:40]
        cells = "".join(f"{ranks.get(value_id, '-'):>9}" for _, ranks in columns)
        print(f"{i:>2} {value_id:>4} {base[value_id]:>7.4f}  {title:40}{cells}")

    print("\n(a) per context: the context's own ranking vs the pooled one restricted to its values")
    print(f"{'context':26} {'edges':>5} {'values':>6} {'pooled top':>10} {'own top':>8} "
          f"{'top-3 kept':>10} {'tau':>6}")
    for context, ranking in rank_values(graph, RankingOptions(per_context=True)).items():
        own = ranking.weights
        pooled = {v: base[v] for v in own}
        kept3 = len(set(order(own)[:3]) & set(order(pooled)[:3]))
        print(f"{context!s:26} {ranking.edges:>5} {len(own):>6} {order(pooled)[0]:>10} "
              f"{order(own)[0]:>8} {kept3:>8}/3 {kendall_tau(pooled, own):>6.3f}")

    leak = rank_values(graph)[None]
    uniform = rank_values(graph, RankingOptions(dangling="uniform"))[None]
    print(f"\n(b) sum of the raw PageRank scores: MAI (leak) {sum(leak.scores.values()):.4f}, "
          f"dangling uniform {sum(uniform.scores.values()):.4f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
