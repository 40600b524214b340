"""Building a move's justification from the value model, so every number is traceable."""

from __future__ import annotations

from collections.abc import Mapping
from weakref import WeakKeyDictionary

from constituencies import ValueModel
from protocols.moves import CardCitation, Justification

# A model's breakdown of an outcome never changes, and a negotiation justifies the same
# few outcomes over and over (every acceptance check, every repeated offer), so what
# each breakdown gives (the cited cards, the summary) is kept per model and outcome.
# Weak keys: a model's entries go when the model does. Bounded: cleared when full.
_MEMO_SIZE = 8192
_cited: WeakKeyDictionary[ValueModel, dict[tuple[str, ...], tuple[float, list[CardCitation]]]] = (
    WeakKeyDictionary()
)
_summaries: WeakKeyDictionary[ValueModel, dict[tuple[tuple[str, ...], int], str]] = WeakKeyDictionary()


def _outcome_key(model: ValueModel, offer: Mapping[str, str]) -> tuple[str, ...]:
    return tuple([offer[issue] for issue in model.issue_contexts])


def _memo(store: WeakKeyDictionary, model: ValueModel) -> dict:  # type: ignore[type-arg]
    memo = store.get(model)
    if memo is None:
        memo = store[model] = {}
    elif len(memo) >= _MEMO_SIZE:
        memo.clear()
    return memo


def justify(model: ValueModel, offer: Mapping[str, str], rationale: str) -> Justification:
    """Cite every card that moved the utility of `offer`; their contributions sum to it."""
    memo = _memo(_cited, model)
    key = _outcome_key(model, offer)
    found = memo.get(key)
    if found is None:
        breakdown = model.breakdown(offer)
        cited = [
            CardCitation(card=c.card, contribution=c.contribution)
            for c in breakdown.contributions
            if c.contribution != 0.0
        ]
        found = memo[key] = (sum(c.contribution for c in cited), cited)
    utility, cited = found
    # Validation copies the list, so no two justifications share one.
    return Justification(utility=utility, cited=cited, rationale=rationale)


def value_summary(model: ValueModel, offer: Mapping[str, str], n: int = 2) -> str:
    """'honours Staying rooted (+0.21); strains Clear books (-0.05)': for rationales."""
    memo = _memo(_summaries, model)
    key = (_outcome_key(model, offer), n)
    found = memo.get(key)
    if found is None:
        parts = []
        for c in model.breakdown(offer).top(n):
            if c.contribution == 0.0:
                continue
            verb = "honours" if c.contribution > 0 else "strains"
            parts.append(f"{verb} '{c.title}' ({c.contribution:+.2f})")
        found = memo[key] = "; ".join(parts) or "touches none of our cards"
    return found
