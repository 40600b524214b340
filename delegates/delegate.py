"""A delegate: value model + mandate + strategy, with the mandate enforced around it.

The strategy proposes; this wrapper disposes. A move that would help an outcome across a
red line or below the reservation level is refused here, whoever wrote it (a rule, a
model, a bug), and replaced by the nearest move the mandate allows: a forbidden offer or
acceptance becomes our best admissible offer (or a rejection where only voting is
allowed), a ballot puts forbidden candidates last, forbidden votes are withdrawn. The
refusals are returned so that the runtime logs them beside the move actually sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from delegates.base import DelegateView, Strategy
from delegates.justification import justify, value_summary
from protocols.events import Call
from protocols.moves import Accept, Critique, Move, Propose, Rank, Reject, Votes


class Refusal(BaseModel):
    """A move the strategy wanted and the mandate forbade."""

    model_config = ConfigDict(frozen=True)

    move: dict[str, Any]
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
        enforced, reason = self._enforce(move, call)
        if reason is None:
            return Decision(move)
        return Decision(enforced, [Refusal(move=move.model_dump(mode="json"), reason=reason)])

    def _why_not(self, offer: dict[str, str]) -> str | None:
        return self.view.mandate.violation(offer, self.view.model.utility(offer))

    def _enforce(self, move: Move, call: Call) -> tuple[Move, str | None]:
        describe = self.view.agenda.describe
        if isinstance(move, (Propose, Accept)):
            why = self._why_not(move.offer)
            if why is None:
                return move, None
            return self._fallback(move, call), f"mandate forbids: {move.kind} {describe(move.offer)}: {why}"
        if isinstance(move, Rank):
            by_id = {c.id: c.outcome for c in call.candidates or []}
            banned = [cid for cid in move.ranking if cid in by_id and self._why_not(by_id[cid])]
            allowed = [cid for cid in move.ranking if cid not in banned]
            if not banned or move.ranking == allowed + banned:
                return move, None
            fixed = move.model_copy(update={"ranking": allowed + banned})
            return fixed, f"mandate forbids ranking {', '.join(banned)} above admissible candidates"
        if isinstance(move, Votes):
            banned_votes = [v for v in move.votes if self._why_not(v.offer)]
            if not banned_votes:
                return move, None
            kept = [v for v in move.votes if v not in banned_votes]
            listed = "; ".join(describe(v.offer) for v in banned_votes)
            return move.model_copy(update={"votes": kept}), f"mandate forbids voting for {listed}"
        if isinstance(move, Critique) and move.suggestion is not None:
            why = self._why_not(move.suggestion)
            if why is not None:
                return move.model_copy(update={"suggestion": None}), f"mandate forbids suggesting it: {why}"
        return move, None

    def _fallback(self, move: Propose | Accept, call: Call) -> Move:
        """The nearest legal move: our best admissible outcome, or a plain rejection."""
        model = self.view.model
        if "propose" in call.allowed:
            if not self.view.space.admissible:
                raise MandateExhausted(
                    f"delegate {self.id!r}: no outcome satisfies its mandate; "
                    "loosen a red line or the reservation level"
                )
            utility, offer = self.view.space.admissible[0]
            rationale = (
                "Refused a move the mandate forbids; proposing instead our best admissible "
                f"outcome (utility {utility:.2f}): {value_summary(model, offer)}."
            )
            return Propose(offer=offer, justification=justify(model, offer, rationale))
        if "reject" in call.allowed:
            rationale = "Refused to accept: the mandate forbids this outcome."
            return Reject(offer=move.offer, justification=justify(model, move.offer, rationale))
        raise MandateExhausted(
            f"delegate {self.id!r}: the mandate forbids its move and the protocol allows no "
            f"alternative among {call.allowed}"
        )
