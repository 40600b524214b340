"""A delegate: value model + mandate + strategy, with the mandate enforced around it.

The strategy proposes; this wrapper disposes. A move that crosses a red line or falls
below the reservation level is refused here, whoever wrote it (a rule, a model, a bug),
and replaced by the best move the mandate allows. Refusals are returned so that the
runtime logs them next to the move actually sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from delegates.base import DelegateView, Strategy
from delegates.justification import justify, value_summary
from protocols.events import Call
from protocols.moves import Accept, Move, Propose


class Refusal(BaseModel):
    """A move the strategy wanted and the mandate forbade."""

    model_config = ConfigDict(frozen=True)

    move: dict
    reason: str


@dataclass
class Decision:
    move: Move
    refusals: list[Refusal] = field(default_factory=list)


class MandateExhausted(RuntimeError):
    """Nothing on the agenda is admissible under the mandate; the delegate cannot propose."""


class Delegate:
    def __init__(self, view: DelegateView, strategy: Strategy) -> None:
        self.view = view
        self.strategy = strategy

    @property
    def id(self) -> str:
        return self.view.delegate_id

    def decide(self, call: Call) -> Decision:
        move = self.strategy.respond(call)
        reason = self._violation(move)
        if reason is None:
            return Decision(move)
        refusal = Refusal(move=move.model_dump(mode="json"), reason=reason)
        return Decision(self._fallback(call), [refusal])

    def _violation(self, move: Move) -> str | None:
        utility = self.view.model.utility(move.offer)
        why = self.view.mandate.violation(move.offer, utility)
        if why is None:
            return None
        verb = "accept" if isinstance(move, Accept) else "propose"
        return f"mandate forbids: {verb} {self.view.agenda.describe(move.offer)}: {why}"

    def _fallback(self, call: Call) -> Move:
        """The safest legal move: our best admissible outcome, as a counter-offer."""
        if not self.view.space.admissible:
            raise MandateExhausted(
                f"delegate {self.id!r}: no outcome satisfies its mandate; "
                "loosen a red line or the reservation level"
            )
        if "propose" not in call.allowed and "accept" in call.allowed:
            raise MandateExhausted(f"delegate {self.id!r}: the protocol allows only acceptance")
        utility, offer = self.view.space.admissible[0]
        rationale = (
            f"Refused a move the mandate forbids; proposing instead our best admissible outcome "
            f"(utility {utility:.2f}): {value_summary(self.view.model, offer)}."
        )
        return Propose(offer=offer, justification=justify(self.view.model, offer, rationale))
