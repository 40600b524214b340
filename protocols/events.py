"""What a chair says: calls to delegates, rejections, and the end of a session.

A protocol state machine emits these; the runtime delivers them and logs them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from constituencies.ids import Id


class Candidate(BaseModel):
    """Something to rank or critique: an outcome, with a statement of it where there is one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    outcome: dict[str, str]
    text: str = ""


class TableOffer(BaseModel):
    """An offer on the table (MOPAC), with who put it there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    by: Id
    offer: dict[str, str]


class Call(BaseModel):
    """It is `to`'s turn: which moves are allowed and what is on the table.

    Which of the optional fields a protocol fills depends on what it asks for:
    `standing_offer` is the outcome to accept or reject (the standing offer, or the
    single negotiation text); `compare_to` the text it would replace (hill-climbing);
    `candidates` what to rank or critique; `table` the offers to vote on.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["call"] = "call"
    to: Id
    round: int = Field(ge=1)
    deadline_round: int = Field(ge=1)
    allowed: list[str] = Field(description="Move kinds the protocol accepts now.")
    phase: str = ""
    standing_offer: dict[str, str] | None = None
    offered_by: Id | None = None
    compare_to: dict[str, str] | None = None
    candidates: list[Candidate] | None = None
    table: list[TableOffer] | None = None
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


class PartialAgreement(BaseModel):
    """An agreement among a subset of the delegates (MOPAC-style protocols)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parties: list[Id]
    outcome: dict[str, str]


class Ended(BaseModel):
    """The session's outcome. No agreement at the deadline is a legitimate outcome.

    `agreement` is an outcome every delegate accepted; protocols that allow agreements
    among subsets list them in `partial` (and leave `agreement` empty unless all joined).
    `chosen` names the winning candidate for statement-selecting protocols.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["ended"] = "ended"
    agreement: dict[str, str] | None
    reason: str
    round: int
    accepted_by: list[Id] = Field(default_factory=list)
    partial: list[PartialAgreement] = Field(default_factory=list)
    chosen: Id | None = None


ChairEvent = Annotated[Call | Rejection | Absence | Ended, Field(discriminator="kind")]
