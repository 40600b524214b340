"""The protocol interface: a sans-I/O state machine run by a chair.

Like h11, a protocol never reads a socket or a clock. The runtime feeds it events
(a delegate's move, a delegate's timeout) and delivers what it emits (calls,
rejections, the end). Given the same inputs and seed it emits the same events.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cache
from typing import Annotated, Any, ClassVar, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from protocols.agenda import Agenda
from protocols.events import Call, ChairEvent, Ended
from protocols.moves import Accept, Move, Propose


class ProtocolParams(BaseModel):
    """Base for a protocol's parameters, as written under `protocol:` in a session file."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Protocol(ABC):
    """Rules of a session.

    Subclasses set `name` (what session files write), `description` (one line for
    `accord protocols`), `citation` (where the rules come from), `Params` (a pydantic
    model of the parameters) and `moves` (the move models they accept).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    citation: ClassVar[str] = ""
    Params: ClassVar[type[ProtocolParams]] = ProtocolParams
    moves: ClassVar[tuple[type[BaseModel], ...]] = (Propose, Accept)

    @classmethod
    def move_adapter(cls) -> TypeAdapter[Any]:
        """Validates a move of this protocol from JSON-compatible data."""
        return _adapter(cls.moves)

    def __init__(
        self, participants: Sequence[str], agenda: Agenda, params: ProtocolParams, seed: int
    ) -> None:
        if len(participants) < 2:
            raise ValueError("a negotiation needs at least two delegates")
        if len(set(participants)) != len(participants):
            raise ValueError("participants must be distinct")
        self.participants = list(participants)
        self.agenda = agenda
        self.params = params
        self.seed = seed
        self._ended: Ended | None = None

    @abstractmethod
    def start(self) -> list[ChairEvent]:
        """The opening calls."""

    @abstractmethod
    def receive(self, sender: str, move: Move) -> list[ChairEvent]:
        """Consume a delegate's move. An illegal move yields a Rejection and changes nothing."""

    @abstractmethod
    def timeout(self, delegate: str) -> list[ChairEvent]:
        """`delegate` did not answer its call in time."""

    @property
    def ended(self) -> Ended | None:
        return self._ended

    @property
    def done(self) -> bool:
        return self._ended is not None

    @property
    @abstractmethod
    def pending(self) -> list[Call]:
        """Calls still awaiting an answer (what a resumed runtime must re-issue)."""

    def awaits(self, delegate: str) -> bool:
        """Whether a call to `delegate` is pending. The chair asks after every move, so a
        protocol whose `pending` builds a list of every delegate's call should answer
        this directly (at 1,000 delegates, per move, that list made a round quadratic)."""
        return any(call.to == delegate for call in self.pending)


@cache
def _adapter(moves: tuple[type[BaseModel], ...]) -> TypeAdapter[Any]:
    if len(moves) == 1:
        return TypeAdapter(moves[0])
    return TypeAdapter(Annotated[Union[moves], Field(discriminator="kind")])  # noqa: UP007
