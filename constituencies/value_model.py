"""A delegate's value model: weighted cards plus assessments give traceable utilities.

utility(outcome) = sum over issues i of share(i) * sum over cards c of
    weight(c, context(i)) * score(c, i, outcome[i])

where share(i) is 1/|issues| unless the constituency sets issue weights, and the card
weights in each context sum to 1; so every utility is in [-1, 1] and splits exactly
into per-card contributions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict

from constituencies.assessment import Assessment, AssessmentTable
from constituencies.constituency import Constituency
from constituencies.hashing import content_hash


class CardContribution(BaseModel):
    """How much one card added to (or took from) a utility."""

    model_config = ConfigDict(frozen=True)

    card: str
    title: str
    contribution: float


class UtilityBreakdown(BaseModel):
    """A utility together with the per-card contributions that sum to it."""

    model_config = ConfigDict(frozen=True)

    utility: float
    contributions: list[CardContribution]

    def top(self, n: int = 3) -> list[CardContribution]:
        return sorted(self.contributions, key=lambda c: -abs(c.contribution))[:n]


class ValueModel:
    """One constituency's weighted values applied to an agenda's issues."""

    def __init__(
        self,
        constituency: Constituency,
        assessments: Iterable[Assessment],
        issue_contexts: Mapping[str, str | None],
    ) -> None:
        self.constituency = constituency
        own = {c.id for c in constituency.cards}
        self.assessments = AssessmentTable(a for a in assessments if a.card in own)
        self.issue_contexts = dict(issue_contexts)
        self._titles = {c.id: c.title for c in constituency.cards}
        self.issue_shares = constituency.issue_shares(list(self.issue_contexts))
        # Precomputed per-issue card weights: utility() is on every strategy's hot path.
        self._issue_weights: dict[str, dict[str, float]] = {
            issue: {c: w * self.issue_shares[issue] for c, w in constituency.card_weights(ctx).items()}
            for issue, ctx in self.issue_contexts.items()
        }
        self._card_order = [c.id for c in constituency.cards]
        # What each option of each issue adds to the utility: a utility is then one
        # lookup per issue, which matters on outcome spaces of hundreds of thousands.
        self.option_values: dict[str, dict[str, float]] = {}
        for issue, weights in self._issue_weights.items():
            values: dict[str, float] = {}
            for (i, option, card), _ in self.assessments.items():
                if i == issue and card in weights:
                    values[option] = values.get(option, 0.0) + weights[card] * self.assessments.score(
                        issue, option, card
                    )
            self.option_values[issue] = values
        self.hash = content_hash(
            {
                "constituency": constituency.model_dump(mode="json"),
                "assessments": sorted(
                    (a.model_dump(mode="json") for a in self.assessments),
                    key=lambda a: (a["option"], a["card"]),
                ),
                "issue_contexts": self.issue_contexts,
            }
        )

    @property
    def id(self) -> str:
        return self.constituency.id

    def card_title(self, card_id: str) -> str:
        return self._titles[card_id]

    def utility(self, outcome: Mapping[str, str]) -> float:
        total = 0.0
        for issue, values in self.option_values.items():
            total += values.get(outcome[issue], 0.0)
        return total

    def breakdown(self, outcome: Mapping[str, str]) -> UtilityBreakdown:
        per_card = dict.fromkeys(self._card_order, 0.0)
        for issue, weights in self._issue_weights.items():
            option = outcome[issue]
            for card, weight in weights.items():
                per_card[card] += weight * self.assessments.score(issue, option, card)
        contributions = [
            CardContribution(card=c, title=self._titles[c], contribution=v)
            for c, v in per_card.items()
        ]
        return UtilityBreakdown(
            utility=sum(c.contribution for c in contributions), contributions=contributions
        )

    def constituent_utility(self, constituent_id: str, outcome: Mapping[str, str]) -> float:
        """One person's utility: the same rule over only the cards they hold, equally weighted."""
        person = next(p for p in self.constituency.constituents if p.id == constituent_id)
        total = 0.0
        for issue, ctx in self.issue_contexts.items():
            share = self.issue_shares[issue]
            held = [
                c for c in person.holds if self.constituency.card(c).applies_in(ctx)
            ]
            if not held:
                continue
            for card in held:
                total += share / len(held) * self.assessments.score(issue, outcome[issue], card)
        return total
