"""The rules: agendas, moves, protocol state machines, outcome metrics. Pure, sans-I/O."""

from protocols.agenda import Agenda, Issue, Option, Outcome
from protocols.base import Protocol, ProtocolParams
from protocols.events import Absence, Call, ChairEvent, Ended, Rejection
from protocols.moves import Accept, CardCitation, Justification, Move, Propose

__all__ = [
    "Absence",
    "Accept",
    "Agenda",
    "Call",
    "CardCitation",
    "ChairEvent",
    "Ended",
    "Issue",
    "Justification",
    "Move",
    "Option",
    "Outcome",
    "Propose",
    "Protocol",
    "ProtocolParams",
    "Rejection",
]
