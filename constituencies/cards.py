"""Values cards and contexts, after the Meaning Alignment Institute's definitions.

A values card names a source of meaning by what a person attends to when choosing
(its attentional policies), not by a goal, rule or slogan.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from constituencies.ids import Id

Policy = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=400)]

CardSource = Literal["elicited", "preference-derived"]


class ValuesCard(BaseModel):
    """A source of meaning: a title, a description and 3 to 7 attentional policies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    policies: list[Policy] = Field(min_length=3, max_length=7)
    contexts: list[str] = Field(
        default_factory=list,
        description="Contexts (kinds of choice) in which this value applies; empty means all.",
    )
    source: CardSource = Field(
        default="elicited",
        description="'elicited' from people, or 'preference-derived' from a thin preference "
        "profile (an imported negotiation domain): such cards are not values in MAI's sense.",
    )

    @field_validator("policies")
    @classmethod
    def _distinct_policies(cls, policies: list[str]) -> list[str]:
        seen: set[str] = set()
        for policy in policies:
            key = policy.casefold()
            if key in seen:
                raise ValueError(f"duplicate attentional policy: {policy!r}")
            seen.add(key)
        return policies

    def applies_in(self, context: str | None) -> bool:
        return context is None or not self.contexts or context in self.contexts


class Context(BaseModel):
    """A kind of choice in which values apply, e.g. 'When deciding how public land is used'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    description: str
