"""Building a move's justification from the value model, so every number is traceable."""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import NamedTuple
from weakref import WeakKeyDictionary, ref

from constituencies import ValueModel
from protocols import trusted
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
    utility, cited = justify_parts(model, offer)
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


class Explained(NamedTuple):
    """All a move says about one outcome, for one value model (see `explain`)."""

    utility: float  #: `model.utility(outcome)`, what strategies and mandates compare
    claimed: float  #: the cited contributions summed, a justification's `utility`
    cited: list[CardCitation]  #: as `justify` cites them (never handed out: copied)
    summary: str  #: `value_summary(model, outcome)`
    worth: str  #: `f"{utility:.2f}"`, as rationales quote it


class _Explanations(dict):  # type: ignore[type-arg]
    """One model's `Explained` outcomes by key (`Explainer.key`), each made the first time
    it is looked up (`__missing__`): one remembered is a dict lookup in C, with no call."""

    def __init__(self, model: ValueModel) -> None:
        super().__init__()
        # Weakly: the models are the weak keys of `_explained`, which holds this.
        self._model = ref(model)
        self._issues = tuple(model.issue_contexts)

    def __missing__(self, key: object) -> Explained:
        if len(self) >= _MEMO_SIZE:
            self.clear()
        model = self._model()
        assert model is not None, "a model's explanations outlive it only while unused"
        # The outcome again from its key: its options on the model's issues, all that
        # `utility`, `justify_parts` and `value_summary` read of an outcome.
        issues = self._issues
        outcome = dict(zip(issues, key)) if len(issues) != 1 else {issues[0]: key}
        claimed, cited = justify_parts(model, outcome)
        utility = model.utility(outcome)
        found = self[key] = Explained(
            utility, claimed, cited, value_summary(model, outcome), f"{utility:.2f}"
        )
        return found


_explained: WeakKeyDictionary[ValueModel, _Explanations] = WeakKeyDictionary()


class Explainer:
    """One value model's `Explained` outcomes, remembered per outcome like `justify`'s.

    A strategy or a delegate keeps one for its model and asks it on every move: the
    utility, the justification and the value summary of an outcome in one lookup. What
    it returns is what `model.utility`, `justify` and `value_summary` return.
    """

    def __init__(self, model: ValueModel) -> None:
        self.model = model
        # The key of an outcome: its options, issue by issue (one issue: the option).
        issues = tuple(model.issue_contexts)
        self.key = itemgetter(*issues) if issues else (lambda outcome: ())
        #: `memo[key(outcome)]` is `self(outcome)`, shared by every Explainer of the model.
        self.memo = _explained.get(model)
        if self.memo is None:
            self.memo = _explained[model] = _Explanations(model)

    def __call__(self, outcome: Mapping[str, str]) -> Explained:
        return self.memo[self.key(outcome)]

    def justify(self, outcome: Mapping[str, str], rationale: str) -> Justification:
        """`justify(model, outcome, rationale)`."""
        found = self(outcome)
        return trusted.justification(found.claimed, list(found.cited), rationale)


def justify_parts(model: ValueModel, offer: Mapping[str, str]) -> tuple[float, list[CardCitation]]:
    """What `justify` cites for `offer`: (utility, cited), remembered; do not mutate."""
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
    return found
