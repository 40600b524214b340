"""Assessments: how far an option honours or violates a values card.

Preferences are derived from these, never primary. Every score keeps its rationale and
who produced it, and a model's assessment is labelled as such.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from constituencies.ids import Id

AssessorKind = Literal["constituents", "organizer", "model"]

OptionRef = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$"),
]


class Assessment(BaseModel):
    """Score in [-1, 1] of option `issue/option` against one card, with its rationale."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    option: OptionRef = Field(description="'<issue id>/<option id>'")
    card: Id
    score: float = Field(ge=-1.0, le=1.0)
    rationale: str = ""
    by: AssessorKind = "organizer"
    model: str | None = Field(
        default=None, description="The model that wrote it, when by == 'model'."
    )

    @model_validator(mode="after")
    def _model_named_when_model_written(self) -> Assessment:
        if self.by == "model" and not self.model:
            raise ValueError("an assessment by a model must name the model")
        return self

    @property
    def issue(self) -> str:
        return self.option.split("/", 1)[0]

    @property
    def option_id(self) -> str:
        return self.option.split("/", 1)[1]


# Human judgement outranks a model's: a model never overrides what people said.
_PRECEDENCE: Mapping[AssessorKind, int] = {"constituents": 2, "organizer": 1, "model": 0}


class AssessmentTable:
    """Lookup of scores by (issue, option, card), resolving duplicates by precedence."""

    def __init__(self, assessments: Iterable[Assessment]) -> None:
        self._by_key: dict[tuple[str, str, str], Assessment] = {}
        self._issues_by_card: dict[str, set[str]] = {}
        for a in assessments:
            key = (a.issue, a.option_id, a.card)
            held = self._by_key.get(key)
            if held is None or _PRECEDENCE[a.by] > _PRECEDENCE[held.by]:
                self._by_key[key] = a
            self._issues_by_card.setdefault(a.card, set()).add(a.issue)

    def get(self, issue: str, option: str, card: str) -> Assessment | None:
        return self._by_key.get((issue, option, card))

    def score(self, issue: str, option: str, card: str) -> float:
        found = self._by_key.get((issue, option, card))
        return found.score if found is not None else 0.0

    def items(self):  # type: ignore[no-untyped-def]
        """((issue, option, card), assessment) pairs, after precedence."""
        return self._by_key.items()

    def issues_for(self, card: str) -> set[str]:
        return self._issues_by_card.get(card, set())

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)
