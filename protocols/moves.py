"""What delegates say: moves, each carrying the values that justify it.

Plain pydantic models, so that a move union can serve directly as the structured
output type of a language-model agent and be validated like any other move.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from constituencies.ids import Id


class CardCitation(BaseModel):
    """A values card and how much it contributed to the claimed utility."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    card: Id
    contribution: float


class Justification(BaseModel):
    """Why a move was made: cited cards, their contributions, and a rationale in words."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    utility: float = Field(description="The utility the delegate claims the offer has for it.")
    cited: list[CardCitation] = Field(
        description="Cards whose contributions add up to `utility`."
    )
    rationale: str = Field(min_length=1)


class Propose(BaseModel):
    """Put a complete outcome on the table as the new standing offer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["propose"] = "propose"
    offer: dict[Id, Id]
    justification: Justification


class Accept(BaseModel):
    """Accept the standing offer, named in full so that a stale acceptance is caught."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["accept"] = "accept"
    offer: dict[Id, Id]
    justification: Justification


Move = Annotated[Propose | Accept, Field(discriminator="kind")]
