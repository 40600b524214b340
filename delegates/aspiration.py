"""Time-dependent aspiration with a frequency model of each other delegate.

The bidding follows Genius's HardHeaded agent (van Krimpen, Looije and Hajizadeh, winner
of ANAC 2011) and the "frequency model" surveyed by Baarslag, Hendrikx, Hindriks and
Jonker, "Learning about the opponent in automated bilateral negotiation: a comprehensive
survey of opponent modeling techniques", Autonomous Agents and Multi-Agent Systems 30(5),
2016. Its aspiration falls on a time-dependent schedule (Faratin et al. 1998):

    target(t) = best - (best - floor) * t ** (1 / e)

From each other delegate's offers it learns, per issue, how often each option was asked
for (an option's estimated value is its count over the issue's highest count) and how
much each issue matters (an issue whose option a delegate keeps unchanged between two of
its offers gains `learning_rate` of weight, then weights are normalised). The estimated
utility of an outcome to that delegate is the weighted sum of its options' values.

Among our admissible outcomes whose utility lies in a band just above the aspiration
(from the lowest one at or above it, `band` of our utility span wide), it offers the one
the others' models value most: the highest minimum (or product) of their estimated
utilities, then the highest utility to us, then a seeded choice. Before it has seen an
offer it bids like a time-dependent tactic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

from pydantic import Field

from delegates.base import DelegateView
from delegates.time_dependent import TimeDependent, TimeDependentOptions
from delegates.tit_for_tat import OfferHistory, without_forbidden_accept
from protocols.agenda import Agenda, Outcome
from protocols.events import Call
from protocols.moves import Move


def band(above: Sequence[tuple[float, Outcome]], width: float) -> list[tuple[float, Outcome]]:
    """The tail of a best-first ranking within `width` of its lowest utility, lowest first."""
    if not above:
        return []
    ceiling = above[-1][0] + width + 1e-12
    found = []
    for u, o in reversed(above):
        if u > ceiling:
            break
        found.append((u, o))
    return found


class FrequencyModel:
    """What one other delegate seems to want, learnt from the offers it made."""

    def __init__(self, agenda: Agenda, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        n = len(agenda.issues)
        self.weights: dict[str, float] = {i.id: 1.0 / n for i in agenda.issues}
        self.counts: dict[str, dict[str, int]] = {
            i.id: {o.id: 0 for o in i.options} for i in agenda.issues
        }
        self.last: Outcome | None = None
        self.offers = 0

    def update(self, offer: Mapping[str, str]) -> None:
        if self.last is not None:
            unchanged = [i for i in self.weights if self.last.get(i) == offer.get(i)]
            if unchanged and len(unchanged) < len(self.weights):
                for i in unchanged:
                    self.weights[i] += self.learning_rate
                total = sum(self.weights.values())
                self.weights = {i: w / total for i, w in self.weights.items()}
        for issue, option in offer.items():
            if issue in self.counts and option in self.counts[issue]:
                self.counts[issue][option] += 1
        self.last = dict(offer)
        self.offers += 1

    def value(self, issue: str, option: str) -> float:
        counts = self.counts[issue]
        top = max(counts.values())
        return counts[option] / top if top else 0.0

    def utility(self, outcome: Mapping[str, str]) -> float:
        """Estimated utility in [0, 1]."""
        return sum(w * self.value(i, outcome[i]) for i, w in self.weights.items())


class AspirationOptions(TimeDependentOptions):
    band: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Width of the band above the aspiration searched for the others' favourite, "
        "as a share of our utility span (best - floor).",
    )
    aggregate: Literal["min", "product"] = Field(
        default="min",
        description="How the others' estimated utilities combine: fairest or Nash-like.",
    )
    learning_rate: float = Field(
        default=0.2, gt=0.0, description="Weight an issue gains when a delegate keeps its option."
    )


class AspirationWithOpponentModel(TimeDependent):
    """HardHeaded-style bidding: time-dependent aspiration, frequency opponent models."""

    name: ClassVar[str] = "aspiration"
    description: ClassVar[str] = (
        "Time-dependent aspiration; near it, offers what a frequency model of the others "
        "values most."
    )
    Options = AspirationOptions
    default_e: ClassVar[float] = 0.5

    def __init__(self, view: DelegateView, options: AspirationOptions | None = None) -> None:
        super().__init__(view, options)
        self.options: AspirationOptions
        self.history = OfferHistory(view.delegate_id)
        self.models: dict[str, FrequencyModel] = {}

    def respond(self, call: Call) -> Move:
        for sender, offer in self.history.observe(call):
            model = self.models.get(sender)
            if model is None:
                model = self.models[sender] = FrequencyModel(
                    self.view.agenda, self.options.learning_rate
                )
            model.update(offer)
        return super().respond(call)

    def estimated(self, outcome: Mapping[str, str]) -> float:
        """The others' estimated utilities for `outcome`, combined (min or product)."""
        values = [m.utility(outcome) for m in self.models.values()]
        if not values:
            return 0.0
        return min(values) if self.options.aggregate == "min" else math.prod(values)

    def candidates(self, call: Call) -> list[tuple[float, Outcome]]:
        """Admissible outcomes in the band just above the aspiration, lowest utility first."""
        above = self.view.space.at_least(self.aspiration(call))
        if not above:
            return list(self.view.space.admissible[:1])
        return band(above, self.options.band * max(0.0, self.best - self.floor))

    def choose_offer(self, call: Call) -> Outcome:
        if not self.models:
            return super().choose_offer(call)
        scored = [(round(self.estimated(o), 12), round(u, 12), o) for u, o in self.candidates(call)]
        top = max((s, u) for s, u, _ in scored)
        return self.view.rng.choice([o for s, u, o in scored if (s, u) == top])

    def bid(self, call: Call) -> Move:
        return super().bid(without_forbidden_accept(self.view, call))

    def _why(self, verb: str, outcome: Outcome, call: Call, extra: str = "") -> str:
        if self.models and verb == "Proposing":
            who = ", ".join(sorted(self.models))
            extra += (
                f"; of the outcomes near our aspiration, the one our model of {who} rates "
                f"highest ({self.options.aggregate} {self.estimated(outcome):.2f})"
            )
        return super()._why(verb, outcome, call, extra)
