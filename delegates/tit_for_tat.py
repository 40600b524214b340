"""Relative tit-for-tat: concede as much as the others have conceded to us, no more.

Faratin, Sierra and Jennings, "Negotiation decision functions for autonomous agents",
Robotics and Autonomous Systems 24 (1998), imitative tactics: a negotiator reproduces the
behaviour of its opponent. Baarslag, Hindriks and Jonker, "A tit for tat negotiation
strategy for real-time bilateral negotiations", in Complex Automated Negotiations, Studies
in Computational Intelligence 435, Springer 2013 ("Nice Tit for Tat"): measure the
opponent's concession in one's own utility, reciprocate it, and fall back on a
Boulware-like time pressure so that the negotiation still ends in agreement.

The strategy keeps every offer it sees from the other delegates (the standing offer of a
call, with who made it, and the offers on a MOPAC table). Delegate j's concession, in our
own utility, is how much better for us its most generous offer is than its first:

    c_j = max(0, max_t u(offer_j,t) - u(offer_j,1))

and we give back `factor` times the others' concession (their mean, min or max, by the
`reciprocity` option), in one of Faratin et al.'s two imitative modes:

* ``relative`` (the default): j closed the share c_j / (best - u(offer_j,1)) of the gap
  between its opening and our ideal; we concede the same share of the span between our
  best and our floor. Scales need not match: a delegate whose opening was already close
  to what we want is not mistaken for a stingy one.
* ``absolute``: we concede c_j itself, in our utility.

The aspiration is our best utility less that concession, never below the floor (the
mandate's reservation level, or the worst admissible utility if higher). With
`time_floor` on (the default) a Boulware schedule with exponent `e` bounds how long we
hold out when nobody concedes: the aspiration is the lower of the two. Offers are chosen
as the base strategy does (above the aspiration, closest to what the others asked for),
and an offer the mandate forbids is never accepted, however good it looks.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from delegates.base import DelegateView
from delegates.time_dependent import TimeDependent, TimeDependentOptions
from protocols.agenda import Outcome
from protocols.events import Call
from protocols.moves import Move


class OfferHistory:
    """The offers a delegate has seen from each other delegate, in the order it saw them.

    Shared by the strategies that learn from what the others ask. A call shows the
    standing offer (with who made it) and, in MOPAC, the table; an offer seen again
    unchanged (the same standing offer at a later turn, a call re-issued after a
    rejection) is not counted twice.
    """

    def __init__(self, me: str) -> None:
        self.me = me
        self.by: dict[str, list[Outcome]] = {}

    def observe(self, call: Call) -> list[tuple[str, Outcome]]:
        """Record the call's offers by others; returns the ones that are new."""
        seen: list[tuple[str, Outcome]] = []
        if call.standing_offer is not None and call.offered_by is not None:
            seen.append((call.offered_by, dict(call.standing_offer)))
        for entry in call.table or []:
            seen.append((entry.by, dict(entry.offer)))
        new = []
        for sender, offer in seen:
            if sender == self.me:
                continue
            offers = self.by.setdefault(sender, [])
            if offers and offers[-1] == offer:
                continue
            offers.append(offer)
            new.append((sender, offer))
        return new

    def latest(self) -> dict[str, Outcome]:
        return {sender: offers[-1] for sender, offers in self.by.items() if offers}

    def __len__(self) -> int:
        return sum(len(v) for v in self.by.values())


def without_forbidden_accept(view: DelegateView, call: Call) -> Call:
    """The call, minus the option to accept a standing offer the mandate forbids.

    The delegate wrapper would refuse such an acceptance anyway and fall back on our best
    offer; a strategy that knows better proposes its own next offer instead.
    """
    standing = call.standing_offer
    if standing is None or "propose" not in call.allowed or view.admissible(standing):
        return call
    return call.model_copy(update={"allowed": [a for a in call.allowed if a != "accept"]})


class TitForTatOptions(TimeDependentOptions):
    mode: Literal["relative", "absolute"] = Field(
        default="relative",
        description="Mirror the share of the gap the others closed (relative) or the utility "
        "they gave us (absolute).",
    )
    factor: float = Field(
        default=1.0, gt=0, le=2, description="How much of the others' concession we give back."
    )
    reciprocity: Literal["mean", "min", "max"] = Field(
        default="mean",
        description="How the concessions of several delegates combine into the one we return.",
    )
    time_floor: bool = Field(
        default=True,
        description="Also concede on a Boulware schedule (exponent e) so a deadlock still ends; "
        "off for pure tit-for-tat.",
    )


class TitForTat(TimeDependent):
    """Relative tit-for-tat (Faratin et al. 1998; Baarslag et al. 2013): mirror concessions."""

    name: ClassVar[str] = "tit-for-tat"
    description: ClassVar[str] = (
        "Gives back the concessions the others make (measured in our own utility); "
        "Boulware time pressure as a floor."
    )
    Options = TitForTatOptions
    default_e: ClassVar[float] = 0.2

    def __init__(self, view: DelegateView, options: TitForTatOptions | None = None) -> None:
        super().__init__(view, options)
        self.options: TitForTatOptions
        self.history = OfferHistory(view.delegate_id)
        # Per other delegate: our utility of its first offer and of its most generous one.
        self.opening: dict[str, float] = {}
        self.most_generous: dict[str, float] = {}

    # -- what the others conceded ------------------------------------------------------

    def _note(self, sender: str, offer: Outcome) -> None:
        u = self.view.utility(offer)
        self.opening.setdefault(sender, u)
        self.most_generous[sender] = max(u, self.most_generous.get(sender, u))

    def concessions(self) -> dict[str, float]:
        """Each other delegate's concession so far, in our utility (never negative)."""
        return {j: max(0.0, self.most_generous[j] - self.opening[j]) for j in self.opening}

    def shares(self) -> dict[str, float]:
        """Each other delegate's concession as a share of the gap from its opening to our best."""
        found = {}
        for j, c in self.concessions().items():
            gap = self.best - self.opening[j]
            found[j] = min(1.0, c / gap) if gap > 1e-12 else 0.0
        return found

    def returned(self) -> float:
        """The concession we give back, in our utility."""
        per_delegate = self.shares() if self.options.mode == "relative" else self.concessions()
        found = list(per_delegate.values())
        if not found:
            return 0.0
        how = self.options.reciprocity
        combined = (
            min(found) if how == "min" else max(found) if how == "max" else sum(found) / len(found)
        )
        if self.options.mode == "relative":
            combined *= self.best - self.floor
        return self.options.factor * combined

    def aspiration(self, call: Call) -> float:
        mirrored = self.best - self.returned()
        if self.options.time_floor:
            mirrored = min(mirrored, self.target(call.round / call.deadline_round))
        return max(self.floor, mirrored)

    # -- moves -------------------------------------------------------------------------

    def respond(self, call: Call) -> Move:
        for sender, offer in self.history.observe(call):
            self._note(sender, offer)
        return super().respond(call)

    def bid(self, call: Call) -> Move:
        return super().bid(without_forbidden_accept(self.view, call))

    def _why(self, verb: str, outcome: Outcome, call: Call, extra: str = "") -> str:
        given = self.returned()
        if given > 0:
            extra += (
                f"; giving back {given:.2f} for the {self._combined_word()} concession the others "
                f"have made to us ({self.options.mode})"
            )
        elif self.opening:
            extra += "; the others have not conceded to us yet"
        return super()._why(verb, outcome, call, extra)

    def _combined_word(self) -> str:
        return {"mean": "average", "min": "smallest", "max": "largest"}[self.options.reciprocity]
