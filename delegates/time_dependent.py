"""Time-dependent concession tactics: Boulware, linear and conceder.

Faratin, Sierra and Jennings, "Negotiation decision functions for autonomous agents",
Robotics and Autonomous Systems 24 (1998); as in Genius's TimeDependentAgent. The
aspiration falls from the best utility to the floor as time t goes from 0 to 1:

    target(t) = best - (best - floor) * t ** (1 / e)

e < 1 holds out until late (Boulware), e = 1 concedes at a steady rate, e > 1 concedes
early (conceder). The floor is the mandate's reservation level, or the worst
admissible utility if that is higher.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from delegates.base import DelegateView, Strategy, StrategyOptions
from protocols.events import Call


class TimeDependentOptions(StrategyOptions):
    e: float | None = Field(
        default=None, gt=0, description="Concession exponent; the strategy's default if unset."
    )


class TimeDependent(Strategy):
    name: ClassVar[str] = "time-dependent"
    description: ClassVar[str] = "Concede from the best outcome to the reservation level over time."
    Options = TimeDependentOptions
    default_e: ClassVar[float] = 1.0

    def __init__(self, view: DelegateView, options: TimeDependentOptions | None = None) -> None:
        super().__init__(view, options)
        self.e = self.options.e if self.options.e is not None else self.default_e  # type: ignore[attr-defined]
        space = view.space
        self.best = space.admissible[0][0] if space.admissible else space.best
        worst_admissible = space.admissible[-1][0] if space.admissible else space.worst
        self.floor = max(view.mandate.reservation, worst_admissible)
        self._last_target: tuple[float, float] = (float("nan"), 0.0)
        self._last_call: Call | None = None

    def target(self, t: float) -> float:
        """The aspiration at time t: a function of t alone (a subclass may redefine it,
        keeping that so, as the aspiration of a time is computed once a turn)."""
        if t < 0.0:  # `min(max(t, 0.0), 1.0)`, without two calls
            t = 0.0
        elif t > 1.0:
            t = 1.0
        return self.best - (self.best - self.floor) * t ** (1.0 / self.e)

    def aspiration(self, call: Call) -> float:
        # Asked three times a turn (the offer, the acceptance threshold, the rationale),
        # of the same call: a call is frozen, so its answer is kept with it.
        if call is self._last_call:
            return self._last_target[1]
        self._last_call = call
        # Aim at where we will be after this turn, so the last round still concedes fully.
        t = call.round / call.deadline_round
        last = self._last_target  # and the same time comes back in a retried turn
        if t != last[0]:
            last = self._last_target = (t, self.target(t))
        return last[1]


class Boulware(TimeDependent):
    name = "boulware"
    description = "Holds near its best outcome and concedes late (e = 0.2)."
    default_e = 0.2


class Linear(TimeDependent):
    name = "linear"
    description = "Concedes at a steady rate from best to reservation (e = 1)."
    default_e = 1.0


class Conceder(TimeDependent):
    name = "conceder"
    description = "Concedes early, then holds (e = 2)."
    default_e = 2.0
