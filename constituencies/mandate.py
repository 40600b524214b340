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
