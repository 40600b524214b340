"""How a constituency's cards are weighted in a context: support, and wisdom.

Two things make a card weigh: how many constituents hold it (**support**) and whether
people judged it a wiser way of attending than the alternatives (**wisdom**, from the
wiser-than votes, after MAI's moral graph). The rule that combines them is personalised
PageRank over the constituency's own wiser-than graph in that context:

    w = (1 - d) * support_share + d * (rank flowing along kept wiser-than edges)

with the teleport distribution equal to the support shares, so that with damping
`d = 0` the weights are exactly the support shares, and as `d` grows the votes move
weight from less wise cards to wiser ones. Edges are kept by MAI's filters (enough
wiser votes, a likely enough upgrade, low enough entropy), with two of the documented
improvements (docs/moral-graph.md): entropy over the votes only, and every applicable
card ranked, so a card without edges keeps its support share's teleport mass and an
added upgrade vote for B over A never lowers B's weight relative to A.

Votes cast in the context at hand are used where there are any; otherwise the votes of
all contexts between the applicable cards (pooled, as MAI does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from constituencies.moral_graph import wisdom_weights
from constituencies.wisdom import RankingOptions

if TYPE_CHECKING:
    from constituencies.constituency import Constituency


def support_shares(constituency: Constituency, cards: list[str]) -> dict[str, float]:
    support = constituency.support()
    total = sum(support[c] for c in cards)
    if total <= 0.0:
        return {c: 1.0 / len(cards) for c in cards}
    return {c: support[c] / total for c in cards}


def weights_in_context(constituency: Constituency, context: str | None) -> dict[str, float]:
    applicable = [c for c in constituency.cards if c.applies_in(context)]
    if not applicable:
        return {}
    ids = [c.id for c in applicable]
    shares = support_shares(constituency, ids)
    rule = constituency.weighting
    if rule.rule == "support" or rule.damping == 0.0:
        return shares
    inside = set(ids)
    votes = [v for v in constituency.wiser_than if v.wiser in inside and v.less_wise in inside]
    here = [v for v in votes if v.context == context]
    votes = here or votes
    if not any(v.vote == "upgrade" for v in votes):
        return shares
    options = RankingOptions(
        min_wiser_votes=rule.min_wiser_votes,
        min_likelihood=rule.min_likelihood,
        max_entropy=rule.max_entropy,
        entropy_votes_only=True,
        rank_all_values=True,
        dangling="personalization",
        damping=rule.damping,
    )
    ranked = wisdom_weights(applicable, votes, options, personalization=shares).get(None, {})
    total = sum(ranked.get(c, 0.0) for c in ids)
    if total <= 0.0:
        return shares
    return {c: ranked.get(c, 0.0) / total for c in ids}
