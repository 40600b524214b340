"""Agendas: the issues to decide and the space of outcomes they span."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, model_validator

from constituencies.ids import Id

Outcome = dict[str, str]
"""A complete outcome: issue id -> chosen option id."""


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    description: str = ""


class Issue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    description: str = ""
    context: str | None = Field(
        default=None,
        description="The kind of choice this issue is, used to pick which values apply.",
    )
    options: list[Option] = Field(min_length=2)

    @model_validator(mode="after")
    def _distinct_options(self) -> Issue:
        ids = [o.id for o in self.options]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate option ids: {', '.join(dupes)}")
        return self

    def option(self, option_id: str) -> Option:
        for option in self.options:
            if option.id == option_id:
                return option
        raise KeyError(option_id)


class Agenda(BaseModel):
    """Issues, each with its options; the outcome space is their product."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issues: list[Issue] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_issues(self) -> Agenda:
        ids = [i.id for i in self.issues]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate issue ids: {', '.join(dupes)}")
        return self

    def issue(self, issue_id: str) -> Issue:
        for issue in self.issues:
            if issue.id == issue_id:
                return issue
        raise KeyError(issue_id)

    @property
    def issue_contexts(self) -> dict[str, str | None]:
        return {i.id: i.context for i in self.issues}

    @property
    def size(self) -> int:
        return math.prod(len(i.options) for i in self.issues)

    def outcomes(self) -> Iterator[Outcome]:
        """Every complete outcome, in a fixed order (issues as listed, options as listed)."""
        ids = [i.id for i in self.issues]
        for combo in itertools.product(*([o.id for o in i.options] for i in self.issues)):
            yield dict(zip(ids, combo, strict=True))

    @cached_property
    def option_ids_by_issue(self) -> dict[str, frozenset[str]]:
        """Each issue's option ids. Checked on every move: built once per (frozen) agenda."""
        return {i.id: frozenset(o.id for o in i.options) for i in self.issues}

    @cached_property
    def item_codes(self) -> dict[tuple[str, str], int]:
        """A number for each (issue, option), issues and options as listed: what lets a
        strategy score an outcome with list lookups instead of dict lookups."""
        return {
            (i.id, o.id): n
            for n, (i, o) in enumerate((i, o) for i in self.issues for o in i.options)
        }

    @cached_property
    def item_set(self) -> frozenset[tuple[str, str]]:
        """Every (issue, option) of the agenda."""
        return frozenset(self.item_codes)

    def problem_with(self, outcome: Mapping[str, str]) -> str | None:
        """Why `outcome` is not a complete outcome of this agenda, or None."""
        # One option per issue (a dict has each key once), each a known (issue, option):
        # one set operation in C, on every move a protocol receives.
        if len(outcome) == len(self.issues) and self.item_set.issuperset(outcome.items()):
            return None
        known = self.option_ids_by_issue
        extra = sorted(set(outcome) - set(known))
        if extra:
            return f"unknown issue(s): {', '.join(extra)}"
        missing = [i for i in known if i not in outcome]
        if missing:
            return f"no option chosen for issue(s): {', '.join(missing)}"
        for issue, option in outcome.items():
            if option not in known[issue]:
                return f"unknown option {option!r} for issue {issue!r}"
        return None

    def describe(self, outcome: Mapping[str, str]) -> str:
        return ", ".join(f"{issue}={outcome[issue]}" for issue in (i.id for i in self.issues))
