"""What a chair says: calls to delegates, rejections, and the end of a session.

A protocol state machine emits these; the runtime delivers them and logs them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from constituencies.ids import Id


class Call(BaseModel):
    """It is `to`'s turn: which moves are allowed and what is on the table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["call"] = "call"
    to: Id
    round: int = Field(ge=1)
    deadline_round: int = Field(ge=1)
    allowed: list[str] = Field(description="Move kinds the protocol accepts now.")
    standing_offer: dict[str, str] | None = None
    offered_by: Id | None = None
    note: str = ""

    @property
    def time(self) -> float:
        """Share of the session used so far, in [0, 1): what time-dependent tactics read."""
        return (self.round - 1) / self.deadline_round


class Rejection(BaseModel):
    """An illegal move, refused with the reason; the session goes on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["rejection"] = "rejection"
    to: Id
    reason: str
    move: dict[str, Any] | None = None


class Absence(BaseModel):
    """A delegate missed its turn (timed out or gone), and what the protocol did about it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["absence"] = "absence"
    delegate: Id
    round: int
    consequence: str


class Ended(BaseModel):
    """The session's outcome. No agreement at the deadline is a legitimate outcome."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["ended"] = "ended"
    agreement: dict[str, str] | None
    reason: str
    round: int
    accepted_by: list[Id] = Field(default_factory=list)


ChairEvent = Annotated[Call | Rejection | Absence | Ended, Field(discriminator="kind")]
