"""What delegates say: moves, each carrying the values that justify it.

Plain pydantic models, so that a protocol's move union can serve directly as the
structured output type of a language-model agent and be validated like any other move.
Each protocol names the move kinds it accepts (`Protocol.moves`); a call names the
kinds allowed right now (`Call.allowed`).
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
    """Why a move was made: cited cards, their contributions, and a rationale in words.

    `utility` is the delegate's utility for the outcome the move is about (the offer,
    the text voted on, or the top of a ranking); the cited contributions add up to it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    utility: float = Field(description="The utility the delegate claims the outcome has for it.")
    cited: list[CardCitation] = Field(
        description="Cards whose contributions add up to `utility`."
    )
    rationale: str = Field(min_length=1)


class Propose(BaseModel):
    """Put a complete outcome on the table as the delegate's offer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["propose"] = "propose"
    offer: dict[Id, Id]
    justification: Justification


class Accept(BaseModel):
    """Accept the outcome on the table, named in full so that a stale acceptance is caught."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["accept"] = "accept"
    offer: dict[Id, Id]
    justification: Justification


class Reject(BaseModel):
    """Decline the outcome put to a vote (a single negotiation text, an offer on the table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["reject"] = "reject"
    offer: dict[Id, Id]
    justification: Justification


class Rank(BaseModel):
    """A ranked ballot over the candidates of the call, best first, every candidate once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["rank"] = "rank"
    ranking: list[Id] = Field(min_length=1)
    justification: Justification


class Critique(BaseModel):
    """What a delegate would change in a candidate statement, and why (a deliberation move)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["critique"] = "critique"
    candidate: Id
    text: str = Field(min_length=1)
    suggestion: dict[Id, Id] | None = Field(
        default=None, description="An amended outcome the delegate would prefer, if any."
    )
    justification: Justification


class Vote(BaseModel):
    """A conditional vote for an offer on the table (MOPAC): count me in if the coalition
    that accepts it has between `min_power` and `max_power` members, me included."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["vote"] = "vote"
    offer: dict[Id, Id]
    min_power: int = Field(default=2, ge=1)
    max_power: int = Field(default=1_000_000, ge=1)
    justification: Justification


class Votes(BaseModel):
    """All of a delegate's conditional votes in one voting phase (possibly none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["votes"] = "votes"
    votes: list[Vote]
    justification: Justification


MOVE_TYPES: tuple[type[BaseModel], ...] = (Propose, Accept, Reject, Rank, Critique, Votes)

Move = Annotated[
    Propose | Accept | Reject | Rank | Critique | Votes, Field(discriminator="kind")
]
