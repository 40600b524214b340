"""A multilateral ultimatum game, as an example of an Accord protocol plug-in.

Güth, Schmittberger and Schwarze, "An experimental analysis of ultimatum bargaining",
Journal of Economic Behavior and Organization 3 (1982), generalised to n parties: the
proposer (the first participant, or `params.proposer`) makes one offer; every other
delegate accepts or rejects it, all at once; the offer is agreed only if all accept.
There is no second chance, which is the point of the game.
"""

from __future__ import annotations

from pydantic import Field

from protocols import Accept, Call, Propose, Protocol, ProtocolParams, Rejection
from protocols.events import Absence, ChairEvent, Ended
from protocols.moves import Move, Reject


class UltimatumParams(ProtocolParams):
    proposer: str | None = Field(default=None, description="Who makes the offer; the first delegate if unset.")


class Ultimatum(Protocol):
    name = "ultimatum"
    description = "One offer by one proposer; everyone else accepts or rejects it; no second chance."
    citation = "Güth, Schmittberger and Schwarze, J. Econ. Behav. Organ. 3 (1982)"
    Params = UltimatumParams
    moves = (Propose, Accept, Reject)

    def __init__(self, participants, agenda, params: UltimatumParams, seed: int) -> None:  # noqa: ANN001
        super().__init__(participants, agenda, params, seed)
        self.proposer = params.proposer or self.participants[0]
        if self.proposer not in self.participants:
            raise ValueError(f"proposer {self.proposer!r} is not a participant")
        self.offer: dict[str, str] | None = None
        self._waiting: dict[str, Call] = {}
        self._accepted: list[str] = []

    @property
    def pending(self) -> list[Call]:
        return list(self._waiting.values())

    def start(self) -> list[ChairEvent]:
        call = Call(to=self.proposer, round=1, deadline_round=1, allowed=["propose"], phase="offer")
        self._waiting = {self.proposer: call}
        return [call]

    def receive(self, sender: str, move: Move) -> list[ChairEvent]:
        call = self._waiting.get(sender)
        if call is None or move.kind not in call.allowed:
            return [Rejection(to=sender, reason="not your turn, or not a move this call allows", move=move.model_dump())]
        problem = self.agenda.problem_with(move.offer)
        if problem or (self.offer is not None and move.offer != self.offer):
            reason = problem or "answers an offer that is not the one on the table"
            return [Rejection(to=sender, reason=reason, move=move.model_dump()), call]
        del self._waiting[sender]
        if isinstance(move, Propose):
            self.offer = dict(move.offer)
            for other in self.participants:
                if other != self.proposer:
                    self._waiting[other] = Call(
                        to=other, round=1, deadline_round=1, allowed=["accept", "reject"],
                        phase="respond", standing_offer=self.offer, offered_by=self.proposer,
                    )
            return list(self._waiting.values())
        if isinstance(move, Reject):
            return self._finish(None, f"{sender} rejected the ultimatum")
        self._accepted.append(sender)
        if not self._waiting:
            return self._finish(self.offer, "every delegate accepted the ultimatum")
        return []

    def timeout(self, delegate: str) -> list[ChairEvent]:
        if delegate not in self._waiting:
            return []
        return [
            Absence(delegate=delegate, round=1, consequence="no answer: counts as a rejection"),
            *self._finish(None, f"{delegate} did not answer"),
        ]

    def _finish(self, agreement: dict[str, str] | None, reason: str) -> list[ChairEvent]:
        self._waiting = {}
        accepted = [self.proposer, *self._accepted] if agreement else []
        self._ended = Ended(agreement=agreement, reason=reason, round=1, accepted_by=accepted)
        return [self._ended]
