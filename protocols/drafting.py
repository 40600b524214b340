"""Drafters: who writes the candidate group statements a deliberation protocol puts to a vote.

After the Habermas Machine (Tessler et al., "AI can help humans find common ground in
democratic deliberation", Science 386, eadq2852, 2024), where a language model drafts
candidate group statements from the participants' opinions and revises the winning one
from their critiques. Here a statement is a `Candidate`: a complete outcome of the agenda
with a plain-language `text`.

A drafter has two methods (`Drafter.draft`, `Drafter.revise`); the protocol gives it a
seeded `random.Random` and checks what it returns (complete outcomes, no duplicates), so
a drafter cannot break a session. `OfflineDrafter` composes statements from the agenda's
options with fixed rules and no model; a language-model drafter subclasses `Drafter` and
registers under the entry-point group `accord.drafters` (or is passed to the protocol).
Candidate ids a drafter returns are provisional: the protocol numbers statements itself.
"""

from __future__ import annotations

import itertools
import random
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import ClassVar

from protocols.agenda import Agenda, Outcome
from protocols.events import Candidate
from protocols.moves import Critique, Propose

DRAFTER_GROUP = "accord.drafters"


class Drafter(ABC):
    """Writes candidate statements; pure given its inputs and the rng it is handed."""

    name: ClassVar[str]

    @abstractmethod
    def draft(
        self, agenda: Agenda, positions: Mapping[str, Propose], n: int, rng: random.Random
    ) -> list[Candidate]:
        """Up to `n` candidate statements from the delegates' opening positions.

        `positions` maps delegate id -> its opening proposal (offer, cited cards and
        rationale), in session order; delegates that stated none are absent.
        """

    @abstractmethod
    def revise(
        self,
        agenda: Agenda,
        winner: Candidate,
        critiques: Mapping[str, Critique],
        n: int,
        rng: random.Random,
    ) -> list[Candidate]:
        """Up to `n` statements revising `winner` in the light of `critiques`
        (delegate id -> critique, in session order). Return `winner` itself among them to
        keep it in the running; the protocol keeps it in any case."""


def describe(agenda: Agenda, outcome: Mapping[str, str]) -> str:
    """An outcome in words: 'What the lot becomes: A community garden; Opening hours: ...'.

    With one issue (statements imported as the options of one issue), the option's own
    description is the statement.
    """
    parts = []
    for issue in agenda.issues:
        option = issue.option(outcome[issue.id])
        said = option.description or option.id
        if len(agenda.issues) == 1 and option.description:
            return said
        parts.append(f"{issue.description or issue.id}: {said}")
    return "; ".join(parts)


def statement(agenda: Agenda, outcome: Mapping[str, str]) -> str:
    """A group statement for an outcome: 'We agree on ...'."""
    if len(agenda.issues) == 1:
        return f"We agree that: {describe(agenda, outcome)}."
    return f"We agree on the following. {describe(agenda, outcome)}."


class OfflineDrafter(Drafter):
    """Statements composed from the options the delegates themselves put forward.

    draft: (1) per issue the option most proposed (ties: the one proposed first, in
    session order); (2) that outcome with one issue switched to its runner-up option,
    strongest runner-up first; (3) each delegate's own position; (4) seeded combinations
    of proposed options; (5) seeded outcomes from the whole agenda, until `n` distinct.

    revise: (1) the winner unchanged; (2) the winner with each suggested single-issue
    change, most requested first (ties: first suggested, in session order); (3) the winner
    with, per issue, the change most requested (if critiques touch two issues or more);
    (4) each critique's whole suggestion; (5) pairs of changes on different issues; the
    first `n` distinct. A change is an (issue, option) where a suggestion differs from the
    winner.
    """

    name = "offline"

    def draft(
        self, agenda: Agenda, positions: Mapping[str, Propose], n: int, rng: random.Random
    ) -> list[Candidate]:
        offers = [dict(p.offer) for p in positions.values()]
        ranked: dict[str, list[str]] = {}
        counts: dict[str, Counter[str]] = {}
        for issue in agenda.issues:
            count = Counter(o[issue.id] for o in offers if issue.id in o)
            first = {}
            for k, o in enumerate(offers):
                first.setdefault(o.get(issue.id), k)
            counts[issue.id] = count
            ranked[issue.id] = sorted(count, key=lambda opt: (-count[opt], first[opt]))
        out: list[Outcome] = []
        notes: dict[int, str] = {}

        def add(outcome: Outcome, note: str = "") -> None:
            if len(out) < n and outcome not in out and agenda.problem_with(outcome) is None:
                if note:
                    notes[len(out)] = note
                out.append(outcome)

        if all(ranked[i.id] for i in agenda.issues):
            base = {i.id: ranked[i.id][0] for i in agenda.issues}
            add(base, f"on every issue the option most proposed, in {len(offers)} positions")
            swaps = sorted(
                (
                    (-counts[i.id][opt], k, r, i.id, opt)
                    for k, i in enumerate(agenda.issues)
                    for r, opt in enumerate(ranked[i.id][1:])
                ),
            )
            for neg, _, _, issue_id, opt in swaps:
                add(
                    {**base, issue_id: opt},
                    f"as most proposed, but {issue_id} as {opt}, which {-neg} of "
                    f"{len(offers)} positions proposed",
                )
        for who, p in positions.items():
            add(dict(p.offer), f"the position of {who}")
        for _ in range(20 * n):
            if len(out) >= n or not all(ranked[i.id] for i in agenda.issues):
                break
            add({i.id: rng.choice(ranked[i.id]) for i in agenda.issues}, "a mix of proposed options")
        for _ in range(20 * n):
            if len(out) >= n or len(out) >= agenda.size:
                break
            add({i.id: rng.choice(i.options).id for i in agenda.issues})
        return [
            Candidate(id=f"d{k + 1}", outcome=o, text=_with_note(statement(agenda, o), notes.get(k)))
            for k, o in enumerate(out)
        ]

    def revise(
        self,
        agenda: Agenda,
        winner: Candidate,
        critiques: Mapping[str, Critique],
        n: int,
        rng: random.Random,
    ) -> list[Candidate]:
        current = dict(winner.outcome)
        changes: Counter[tuple[str, str]] = Counter()
        order: dict[tuple[str, str], int] = {}
        suggestions: list[Outcome] = []
        for critique in critiques.values():
            s = critique.suggestion
            if s is None or agenda.problem_with(s) is not None:
                continue
            suggestions.append(dict(s))
            for issue in agenda.issues:
                if s[issue.id] != current[issue.id]:
                    key = (issue.id, s[issue.id])
                    changes[key] += 1
                    order.setdefault(key, len(order))
        ranked = sorted(changes, key=lambda c: (-changes[c], order[c]))
        out: list[tuple[Outcome, str]] = [(current, "")]

        def add(outcome: Outcome, why: str) -> None:
            if len(out) < n and all(outcome != o for o, _ in out):
                out.append((outcome, why))

        def why(applied: Sequence[tuple[str, str]]) -> str:
            said = "; ".join(
                f"{issue} to {option}, as {changes[(issue, option)]} of {len(critiques)} critiques asked"
                for issue, option in applied
            )
            return f"revised after critique: {said}"

        for c in ranked:
            add({**current, c[0]: c[1]}, why([c]))
        per_issue: dict[str, tuple[str, str]] = {}
        for c in ranked:
            per_issue.setdefault(c[0], c)
        if len(per_issue) >= 2:
            add({**current, **dict(per_issue.values())}, why(list(per_issue.values())))
        for s in suggestions:
            applied = [(i, s[i]) for i in s if s[i] != current[i]]
            add(s, why(applied))
        for a, b in itertools.combinations(ranked, 2):
            if a[0] != b[0]:
                add({**current, a[0]: a[1], b[0]: b[1]}, why([a, b]))
        result = [winner]
        for k, (o, note) in enumerate(out[1:], start=1):
            result.append(
                Candidate(id=f"r{k}", outcome=o, text=_with_note(statement(agenda, o), note))
            )
        return result


def _with_note(text: str, note: str | None) -> str:
    return f"{text} ({note[0].upper()}{note[1:]}.)" if note else text


_BUILTIN: dict[str, type[Drafter]] = {OfflineDrafter.name: OfflineDrafter}


def drafters() -> dict[str, type[Drafter]]:
    """Built-in drafters and those registered under the entry-point group `accord.drafters`."""
    found = dict(_BUILTIN)
    for ep in entry_points(group=DRAFTER_GROUP):
        if ep.name not in found:
            obj = ep.load()
            if not (isinstance(obj, type) and issubclass(obj, Drafter)):
                raise LookupError(f"drafter plug-in {ep.name!r} ({ep.value}) is not a Drafter")
            found[ep.name] = obj
    return found


def drafter(name: str) -> Drafter:
    """A new drafter by name."""
    known = drafters()
    if name not in known:
        raise LookupError(f"unknown drafter {name!r}; installed: {', '.join(sorted(known))}")
    return known[name]()
