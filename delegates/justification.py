"""Building a move's justification from the value model, so every number is traceable."""

from __future__ import annotations

from collections.abc import Mapping

from constituencies import ValueModel
from protocols.moves import CardCitation, Justification


def justify(model: ValueModel, offer: Mapping[str, str], rationale: str) -> Justification:
    """Cite every card that moved the utility of `offer`; their contributions sum to it."""
    breakdown = model.breakdown(offer)
    cited = [
        CardCitation(card=c.card, contribution=c.contribution)
        for c in breakdown.contributions
        if c.contribution != 0.0
    ]
    return Justification(
        utility=sum(c.contribution for c in cited), cited=cited, rationale=rationale
    )


def value_summary(model: ValueModel, offer: Mapping[str, str], n: int = 2) -> str:
    """'honours Staying rooted (+0.21); strains Clear books (-0.05)': for rationales."""
    parts = []
    for c in model.breakdown(offer).top(n):
        if c.contribution == 0.0:
            continue
        verb = "honours" if c.contribution > 0 else "strains"
        parts.append(f"{verb} '{c.title}' ({c.contribution:+.2f})")
    return "; ".join(parts) or "touches none of our cards"
