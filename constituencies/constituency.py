"""A constituency: the people a delegate speaks for, their cards and their judgements."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from constituencies.cards import Context, ValuesCard
from constituencies.ids import Id
from constituencies.mandate import Mandate


class Constituent(BaseModel):
    """A pseudonymous person and the cards they hold. No personal data lives here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    holds: list[Id] = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0.0)


class WiserThanVote(BaseModel):
    """In `context`, was `wiser` judged a wiser way of attending than `less_wise`?"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    context: str
    less_wise: Id
    wiser: Id
    vote: Literal["upgrade", "no_upgrade", "not_sure"]
    by: Id | None = Field(default=None, description="The constituent who voted, if known.")


class Weighting(BaseModel):
    """The rule that turns support and wiser-than votes into card weights (see weighting.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: Literal["support", "wisdom"] = Field(
        default="wisdom",
        description="'support': shares of the constituents holding each card; 'wisdom': "
        "support shares moved along wiser-than edges by personalised PageRank.",
    )
    damping: float = Field(
        default=0.5,
        ge=0.0,
        lt=1.0,
        description="How much weight wisdom judgements may move (0 = support only).",
    )
    min_wiser_votes: int = Field(default=1, ge=1, description="Upgrade votes an edge needs.")
    min_likelihood: float = Field(default=0.33, ge=0.0, description="MAI's likelihood floor.")
    max_entropy: float = Field(default=1.69, description="MAI's entropy cap (over votes only).")


class Constituency(BaseModel):
    """Cards, constituents, wiser-than votes and the mandate given to their delegate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    name: str = ""
    description: str = ""
    contexts: list[Context] = Field(default_factory=list)
    cards: list[ValuesCard] = Field(min_length=1)
    constituents: list[Constituent] = Field(default_factory=list)
    wiser_than: list[WiserThanVote] = Field(default_factory=list)
    mandate: Mandate = Field(default_factory=Mandate)
    weighting: Weighting = Field(default_factory=Weighting)
    issue_weights: dict[Id, float] | None = Field(
        default=None,
        description="How much each agenda issue counts for this constituency (normalised to "
        "sum 1); equal shares if unset. Thin, preference-derived profiles (imported "
        "negotiation domains) set it; elicited values usually leave it to the cards.",
    )

    @model_validator(mode="after")
    def _references_resolve(self) -> Constituency:
        card_ids = [c.id for c in self.cards]
        dupes = sorted({i for i in card_ids if card_ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate card ids: {', '.join(dupes)}")
        people = [p.id for p in self.constituents]
        dupes = sorted({i for i in people if people.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate constituent ids: {', '.join(dupes)}")
        known = set(card_ids)
        for person in self.constituents:
            unknown = [c for c in person.holds if c not in known]
            if unknown:
                raise ValueError(
                    f"constituent {person.id!r} holds unknown card(s): {', '.join(unknown)}"
                )
        for vote in self.wiser_than:
            for ref in (vote.wiser, vote.less_wise):
                if ref not in known:
                    raise ValueError(f"wiser-than vote names unknown card {ref!r}")
        if self.issue_weights is not None:
            if any(w < 0 for w in self.issue_weights.values()):
                raise ValueError("issue_weights must not be negative")
            if sum(self.issue_weights.values()) <= 0:
                raise ValueError("issue_weights must not all be zero")
        return self

    def issue_shares(self, issues: list[str]) -> dict[str, float]:
        """Each issue's share of the utility, summing to 1 over `issues`."""
        if not issues:
            return {}
        if self.issue_weights is None:
            return {i: 1.0 / len(issues) for i in issues}
        total = sum(self.issue_weights.get(i, 0.0) for i in issues)
        if total <= 0:
            return {i: 1.0 / len(issues) for i in issues}
        return {i: self.issue_weights.get(i, 0.0) / total for i in issues}

    @property
    def label(self) -> str:
        return self.name or self.id

    def card(self, card_id: str) -> ValuesCard:
        for card in self.cards:
            if card.id == card_id:
                return card
        raise KeyError(f"constituency {self.id!r} has no card {card_id!r}")

    def support(self) -> dict[str, float]:
        """Summed weight of the constituents holding each card."""
        held = {c.id: 0.0 for c in self.cards}
        for person in self.constituents:
            for card_id in person.holds:
                held[card_id] += person.weight
        return held

    def card_weights(self, context: str | None = None) -> dict[str, float]:
        """Weights of the cards that apply in `context`, summing to 1.

        Support shares (what the constituents holding a card weigh; equal shares when no
        one is listed, so an organizer's sketch still negotiates), moved toward wiser
        cards by the wiser-than votes under `weighting` (constituencies/weighting.py).
        """
        from constituencies.weighting import weights_in_context

        return weights_in_context(self, context)
