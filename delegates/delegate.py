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

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from constituencies.mandate import RatificationRule

from delegates.base import DelegateView, Strategy
from delegates.justification import justify, value_summary
from protocols.events import Call
from protocols.moves import Accept, Critique, Move, Propose, Rank, Reject, Votes


class Refusal(BaseModel):
    """A move the strategy wanted and the mandate forbade."""

    model_config = ConfigDict(frozen=True)

    move: dict[str, Any]
    reason: str


class Ratification(BaseModel):
    """The constituents' answer on an outcome their mandate reserves for them."""

    model_config = ConfigDict(frozen=True)

    outcome: dict[str, str]
    approved: bool
    rule: str
    source: str = Field(description="'session-file', 'prompt', or 'none' (nobody to ask).")
    by: list[str] = Field(default_factory=list, description="Constituents who decided, if known.")
    note: str = ""


class Ratifier(Protocol):
    """Asks (or looks up) the constituents' approval; supplied by the runtime."""

    def __call__(
        self, delegate: str, outcome: dict[str, str], rule: RatificationRule, utility: float
    ) -> Ratification: ...


@dataclass(slots=True)  # one made per move: no per-instance dict
class Decision:
    move: Move
    refusals: list[Refusal] = field(default_factory=list)
    ratifications: list[Ratification] = field(default_factory=list)


class MandateExhausted(RuntimeError):
    """Nothing on the agenda is admissible under the mandate; the delegate cannot propose."""


def _key(outcome: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(outcome.items()))


class Delegate:
    def __init__(self, view: DelegateView, strategy: Strategy, ratifier: Ratifier | None = None) -> None:
        self.view = view
        self.strategy = strategy
        self.ratifier = ratifier
        self.ratified: dict[tuple[tuple[str, str], ...], bool] = {}
        self._asked: list[Ratification] = []
        # The mandate's verdict on an outcome (before ratification): the space remembers
        # it per outcome, when the space is of this very model and mandate.
        space = view.space
        if getattr(space, "model", None) is view.model and getattr(space, "mandate", None) is view.mandate:
            self._violation = space.violation
        else:
            self._violation = lambda offer: view.mandate.violation(offer, view.model.utility(offer))
        # Whether the mandate reserves any outcome for ratification (a frozen model).
        self._ratifies = bool(view.mandate.ratification)

    @property
    def id(self) -> str:
        return self.view.delegate_id

    def remember(self, ratification: Ratification) -> None:
        """A recorded answer (on resume): it is not asked again."""
        self.ratified[_key(ratification.outcome)] = ratification.approved

    def decide(self, call: Call) -> Decision:
        move = self.strategy.respond(call)
        # `_dispose`'s usual case, inlined: an offer or acceptance the mandate allows,
        # with nothing to ratify (so nothing asked: `_asked` is not read).
        if (
            not self._ratifies
            and isinstance(move, (Propose, Accept))
            and self._violation(move.offer) is None
        ):
            return Decision(move, [], [])
        self._asked = []
        return self._dispose(move, call)

    async def decide_async(self, call: Call) -> Decision:
        """As `decide`, awaiting the strategy when it answers asynchronously (a language
        model does: `respond_async`), so the event loop is never blocked by it."""
        self._asked = []
        respond_async = getattr(self.strategy, "respond_async", None)
        move = await respond_async(call) if respond_async is not None else self.strategy.respond(call)
        return self._dispose(move, call)

    def _dispose(self, move: Move, call: Call) -> Decision:
        if isinstance(move, (Propose, Accept)):
            # The usual move, checked first without building the refusal's wording.
            offer = move.offer
            if self._violation(offer) is None and (
                not self.view.mandate.ratification or self._ratified(offer, ask=True) is not False
            ):
                asked, self._asked = self._asked, []
                return Decision(move, [], asked)
        enforced, reason = self._enforce(move, call)
        asked, self._asked = self._asked, []
        if reason is None:
            return Decision(move, ratifications=asked)
        refusal = Refusal(move=move.model_dump(mode="json"), reason=reason)
        told = getattr(self.strategy, "observe_refusal", None)
        if told is not None:
            told(reason)
        return Decision(enforced, [refusal], asked)

    def _ratified(self, offer: dict[str, str], ask: bool) -> bool | None:
        """True/False once the constituents have answered; None if not needed."""
        if not self.view.mandate.ratification:
            return None  # the usual case, checked on every move: skip the utility
        utility = self.view.model.utility(offer)
        rule = self.view.mandate.needs_ratification(offer, utility)
        if rule is None:
            return None
        key = _key(offer)
        if key not in self.ratified:
            if not ask:
                return False
            if self.ratifier is None:
                answer = Ratification(
                    outcome=offer, approved=False, rule=rule.describe(), source="none",
                    note="no decision recorded and nobody to ask",
                )
            else:
                answer = self.ratifier(self.id, offer, rule, utility)
            self._asked.append(answer)
            self.ratified[key] = answer.approved
        return self.ratified[key]

    def _why_not(self, offer: dict[str, str], ask: bool = False) -> str | None:
        why = self._violation(offer)
        if why is None and self._ratified(offer, ask) is False:
            return "its constituents have not ratified it"
        return why

    def _enforce(self, move: Move, call: Call) -> tuple[Move, str | None]:
        describe = self.view.agenda.describe
        if isinstance(move, (Propose, Accept)):
            why = self._why_not(move.offer, ask=True)
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
            usable = (
                (u, o) for u, o in self.view.space.admissible if self._ratified(o, ask=False) is not False
            )
            best = next(usable, None)
            if best is None:
                raise MandateExhausted(
                    f"delegate {self.id!r}: no outcome satisfies its mandate; "
                    "loosen a red line or the reservation level"
                )
            utility, offer = best
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
