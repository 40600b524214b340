"""A mandate: what a delegate may not do on its constituency's behalf."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, RootModel

from constituencies.ids import Id


class RedLine(RootModel[dict[Id, Id]]):
    """A partial outcome, issue -> option, that the delegate must never accept.

    An outcome crosses the red line when it matches every pair in it, so
    `{housing: a20}` forbids any outcome with 20 percent affordable homes, and
    `{housing: a20, height: tall}` forbids only that combination.
    """

    model_config = ConfigDict(frozen=True)

    def crossed_by(self, outcome: Mapping[str, str]) -> bool:
        return all(outcome.get(issue) == option for issue, option in self.root.items())

    def describe(self) -> str:
        return " and ".join(f"{i}={o}" for i, o in self.root.items())


class RatificationRule(BaseModel):
    """Outcomes the delegate may agree to only after its constituents approve.

    An outcome needs ratification if it matches any of `outcomes` (partial outcomes, as
    red lines are written) or if its utility is below `below`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcomes: list[RedLine] = Field(default_factory=list)
    below: float | None = Field(default=None, ge=-1.0, le=1.0)
    reason: str = ""

    def applies_to(self, outcome: Mapping[str, str], utility: float) -> bool:
        if any(line.crossed_by(outcome) for line in self.outcomes):
            return True
        return self.below is not None and utility < self.below - 1e-12

    def describe(self) -> str:
        parts = [line.describe() for line in self.outcomes]
        if self.below is not None:
            parts.append(f"utility below {self.below:+.2f}")
        text = " or ".join(parts) or "nothing"
        return f"{text}{f' ({self.reason})' if self.reason else ''}"


class Mandate(BaseModel):
    """Red lines, a reservation level and what needs ratification by constituents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    red_lines: list[RedLine] = Field(default_factory=list)
    reservation: float = Field(
        default=-1.0,
        ge=-1.0,
        le=1.0,
        description="The lowest utility the delegate may accept (no deal is better below it).",
    )
    ratification: list[RatificationRule] = Field(
        default_factory=list,
        description="Outcomes that need the constituents' approval before the delegate may "
        "propose or accept them.",
    )

    def needs_ratification(self, outcome: Mapping[str, str], utility: float) -> RatificationRule | None:
        for rule in self.ratification:
            if rule.applies_to(outcome, utility):
                return rule
        return None

    def violation(self, outcome: Mapping[str, str], utility: float | None = None) -> str | None:
        """Why accepting `outcome` would break the mandate, or None if it would not."""
        for line in self.red_lines:
            if line.crossed_by(outcome):
                return f"crosses red line {line.describe()}"
        if utility is not None and utility < self.reservation - 1e-12:
            return f"utility {utility:.3f} is below the reservation level {self.reservation:.3f}"
        return None

    def crosses_red_line(self, outcome: Mapping[str, str]) -> RedLine | None:
        for line in self.red_lines:
            if line.crossed_by(outcome):
                return line
        return None
