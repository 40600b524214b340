"""Stacked alternating offers, multilateral (SAOP).

Aydoğan, Festen, Hindriks and Jonker, "Alternating Offers Protocols for Multilateral
Negotiation", in Modern Approaches to Agent-based Complex Automated Negotiation,
Springer 2017. Delegates take turns in a fixed order. On its turn a delegate accepts the
standing offer or replaces it with its own. The offer is agreed when every other delegate
has accepted it in turn. A round is one turn each; at the deadline without agreement the
session ends with no agreement, a legitimate outcome.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from protocols import trusted
from protocols.agenda import Agenda
from protocols.base import Protocol, ProtocolParams
from protocols.events import Absence, Call, ChairEvent, Ended, Rejection
from protocols.moves import Accept, Move, Propose


class SAOParams(ProtocolParams):
    deadline_rounds: int = Field(default=30, ge=1, le=100_000)
    absence_limit: int = Field(
        default=3,
        ge=1,
        description="Consecutive missed turns after which a delegate counts as absent; "
        "unanimity is then impossible and the session ends without agreement.",
    )
    strikes: int = Field(
        default=3, ge=1, description="Illegal moves in one turn before the turn counts as missed."
    )


class StackedAlternatingOffers(Protocol):
    name = "stacked-alternating-offers"
    description = "Turn-taking: accept the standing offer or replace it; agreed when all accept."
    citation = "Aydoğan et al., Alternating Offers Protocols for Multilateral Negotiation, 2017"
    Params = SAOParams

    def __init__(
        self, participants: Sequence[str], agenda: Agenda, params: SAOParams, seed: int
    ) -> None:
        super().__init__(participants, agenda, params, seed)
        self.params: SAOParams = params
        self.round = 1
        self._turn = 0  # index into participants
        self.standing_offer: dict[str, str] | None = None
        self.offered_by: str | None = None
        self._accepted: list[str] = []
        self._missed: dict[str, int] = dict.fromkeys(self.participants, 0)
        self._strikes = 0
        self._pending: Call | None = None
        self._deadline = params.deadline_rounds  # read on every turn; params are frozen
        self._issue_count = len(agenda.issues)
        self._items = agenda.item_set  # every (issue, option) of the (frozen) agenda

    @property
    def current(self) -> str:
        return self.participants[self._turn]

    @property
    def pending(self) -> list[Call]:
        return [self._pending] if self._pending is not None else []

    def start(self) -> list[ChairEvent]:
        return [self._call()]

    def _call(self, note: str = "") -> Call:
        standing = self.standing_offer
        # Built from the protocol's own validated state, on every turn: not validated again.
        self._pending = trusted.turn_call(  # to, round, deadline_round, allowed, ...
            self.participants[self._turn],
            self.round,
            self._deadline,
            ["propose"] if standing is None else ["accept", "propose"],
            None if standing is None else dict(standing),  # standing_offer
            self.offered_by,
            note,
        )
        return self._pending

    def _end(self, agreement: dict[str, str] | None, reason: str) -> list[ChairEvent]:
        self._pending = None
        self._ended = Ended(
            agreement=agreement,
            reason=reason,
            round=self.round,
            accepted_by=[self.offered_by, *self._accepted] if agreement and self.offered_by else [],
        )
        return [self._ended]

    def _advance(self) -> list[ChairEvent]:
        self._strikes = 0
        self._turn = (self._turn + 1) % len(self.participants)
        if self._turn == 0:
            self.round += 1
            if self.round > self.params.deadline_rounds:
                self.round = self.params.deadline_rounds
                return self._end(None, "deadline reached without agreement")
        return [self._call()]

    def _illegal(self, sender: str, move: Move, reason: str) -> list[ChairEvent]:
        rejection = Rejection(to=sender, reason=reason, move=move.model_dump(mode="json"))
        if sender != self.current:
            return [rejection]
        self._strikes += 1
        if self._strikes >= self.params.strikes:
            return [rejection, *self._miss(sender, f"{self._strikes} illegal moves")]
        return [rejection, self._call(note=f"your last move was refused: {reason}")]

    def receive(self, sender: str, move: Move) -> list[ChairEvent]:
        if self._ended is not None:
            return [Rejection(to=sender, reason="the session has ended", move=move.model_dump())]
        missed = self._missed
        if sender != self.participants[self._turn]:
            if sender not in missed:
                return [Rejection(to=sender, reason=f"{sender!r} is not a participant")]
            return self._illegal(sender, move, f"out of turn: it is {self.current}'s turn")
        offer = move.offer
        # `agenda.problem_with`'s own first test, inlined: a complete outcome of the agenda.
        if len(offer) != self._issue_count or not self._items.issuperset(offer.items()):
            problem = self.agenda.problem_with(offer)
            if problem:
                return self._illegal(sender, move, problem)
        if isinstance(move, Propose):
            missed[sender] = 0
            self.standing_offer = dict(offer)
            self.offered_by = sender
            self._accepted = []
            return self._advance()
        if isinstance(move, Accept):
            if self.standing_offer is None:
                return self._illegal(sender, move, "there is no standing offer to accept")
            if offer != self.standing_offer:
                return self._illegal(sender, move, "accepts an offer that is not the standing one")
            if sender == self.offered_by:
                return self._illegal(sender, move, "a delegate cannot accept its own offer")
        missed[sender] = 0
        self._accepted.append(sender)
        if len(self._accepted) == len(self.participants) - 1:
            return self._end(dict(self.standing_offer), "all delegates accepted")  # type: ignore[arg-type]
        return self._advance()

    def timeout(self, delegate: str) -> list[ChairEvent]:
        if self.done or delegate != self.current:
            return []
        return self._miss(delegate, "no answer before the turn's deadline")

    def _miss(self, delegate: str, why: str) -> list[ChairEvent]:
        """A missed turn is a refusal of the standing offer: acceptances so far lapse."""
        self._missed[delegate] += 1
        self._accepted = []
        if self._missed[delegate] >= self.params.absence_limit:
            absence = Absence(
                delegate=delegate,
                round=self.round,
                consequence="absent: unanimity is impossible, the session ends",
            )
            return [absence, *self._end(None, f"{delegate} is absent")]
        absence = Absence(
            delegate=delegate, round=self.round, consequence=f"turn skipped ({why})"
        )
        return [absence, *self._advance()]
