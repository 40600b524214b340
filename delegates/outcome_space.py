"""A delegate's ranking of the outcome space, computed once per session."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter

from constituencies import Mandate, ValueModel
from protocols.agenda import Agenda, Outcome


_UNKNOWN = object()
#: Gives, from a list indexed by item code, the entries of one outcome's item codes.
CountGetter = Callable[[Sequence[int]], Sequence[int]]
_MEMO_SIZE = 1 << 16


class OutcomeSpace:
    """Every outcome with its utility for one value model, best first.

    Outcomes that cross a red line are kept apart: a strategy may look at them, but the
    ranking it searches (`admissible`) holds only what the mandate allows.
    """

    def __init__(
        self,
        agenda: Agenda,
        model: ValueModel,
        mandate: Mandate,
        outcomes: Sequence[Outcome] | None = None,
    ) -> None:
        """`outcomes`, if given, is `list(agenda.outcomes())` shared by every delegate."""
        if outcomes is None:
            outcomes = list(agenda.outcomes())
        # Utilities by products of per-issue sums, in the agenda's enumeration order.
        per_issue = [
            [model.option_values.get(i.id, {}).get(o.id, 0.0) for o in i.options]
            for i in agenda.issues
        ]
        utilities = [sum(combo) for combo in itertools.product(*per_issue)]
        order = sorted(range(len(outcomes)), key=lambda n: (-utilities[n], n))
        self.all: list[tuple[float, Outcome]] = [(utilities[n], outcomes[n]) for n in order]
        if mandate.red_lines:
            self.admissible: list[tuple[float, Outcome]] = [
                (u, o) for u, o in self.all if mandate.violation(o, u) is None
            ]
        else:
            floor = mandate.reservation - 1e-12
            self.admissible = [(u, o) for u, o in self.all if u >= floor]
        # Ascending utilities for bisect; admissible is sorted descending.
        self._ascending = [u for u, _ in reversed(self.admissible)]
        #: The agenda's number for each (issue, option), and the numbers of the options
        #: of admissible outcome k (`code(k)`, filled in as strategies ask).
        self.item_codes = agenda.item_codes
        self.codes: list[tuple[int, ...] | None] = [None] * len(self.admissible)
        #: The same as bit masks (`mask(k)`; 0 until asked: a mask always has a bit set).
        self.masks: list[int] = [0] * len(self.admissible)
        #: The same as getters of a list indexed by item code (`counter(k)`).
        self.counters: list[CountGetter | None] = [None] * len(self.admissible)
        #: Best minus worst admissible utility: the range a strategy concedes over.
        self.span = self.admissible[0][0] - self.admissible[-1][0] if self.admissible else 0.0
        self.model = model
        self.mandate = mandate
        issues = [i.id for i in agenda.issues]
        self._key = itemgetter(*issues)
        self._issue_count = len(issues)
        self._violations: dict[object, str | None] = {}
        # (width, limit) -> {admissible outcomes below the target: neighbourhood}
        self._neighbourhoods: dict[tuple[float, int], dict[int, range]] = {}

    def violation(self, outcome: Mapping[str, str]) -> str | None:
        """`mandate.violation(outcome, model.utility(outcome))`: why the mandate forbids
        `outcome`, or None. Remembered per outcome of the agenda: a delegate checks every
        move it makes, and makes the same few offers again and again."""
        key = None
        if len(outcome) == self._issue_count:
            try:
                key = self._key(outcome)  # every issue of the agenda, and nothing else
                found = self._violations.get(key, _UNKNOWN)
            except (KeyError, TypeError):
                key, found = None, _UNKNOWN
            if found is not _UNKNOWN:
                return found  # type: ignore[return-value]
        found = self.mandate.violation(outcome, self.model.utility(outcome))
        if key is not None:
            if len(self._violations) >= _MEMO_SIZE:
                self._violations.clear()
            self._violations[key] = found
        return found

    def code(self, k: int) -> tuple[int, ...]:
        """The item codes (`Agenda.item_codes`) of the options of `admissible[k]`."""
        found = self.codes[k]
        if found is None:
            found = self.codes[k] = tuple(map(self.item_codes.__getitem__, self.admissible[k][1].items()))
        return found

    def mask(self, k: int) -> int:
        """`code(k)` as a bit mask: bit c set for each item code c (one per issue, so
        distinct). `(mask(k) & m).bit_count()` is how many options `admissible[k]` shares
        with an outcome of mask `m`, in two operations in C."""
        found = self.masks[k]
        if not found:
            found = 0
            for c in self.code(k):
                found |= 1 << c
            self.masks[k] = found
        return found

    def counter(self, k: int) -> CountGetter:
        """A getter of the entries of `admissible[k]`'s item codes in a list indexed by
        item code: `sum(counter(k)(counts))` is its options' counts summed, with one call
        in C where `sum(map(counts.__getitem__, code(k)))` makes one per issue."""
        found = self.counters[k]
        if found is None:
            codes = self.code(k)
            # One issue: a slice, since `itemgetter(c)` would give a number, not a sequence.
            first = codes[0]
            found = itemgetter(*codes) if len(codes) > 1 else itemgetter(slice(first, first + 1))
            self.counters[k] = found
        return found

    @property
    def best(self) -> float:
        return self.all[0][0]

    @property
    def worst(self) -> float:
        return self.all[-1][0]

    def count_at_least(self, target: float) -> int:
        """How many admissible outcomes have utility >= target (they lead `admissible`)."""
        return len(self.admissible) - bisect.bisect_left(self._ascending, target - 1e-12)

    def at_least(self, target: float) -> Sequence[tuple[float, Outcome]]:
        """Admissible outcomes with utility >= target, best first."""
        return self.admissible[: self.count_at_least(target)]

    def neighbourhood(self, target: float, width: float, limit: int) -> range:
        """Indices into `admissible` of the outcomes just above the aspiration `target`.

        From the lowest admissible utility at or above `target` (or the best admissible
        outcome, if none reaches it) up to `width` higher, at most `limit` outcomes, the
        lowest ones kept. Two bisections, so a bid costs the same on 30 outcomes as on
        200,000: this is the presorted inverse of the utility function.
        """
        size = len(self.admissible)
        n = size - bisect.bisect_left(self._ascending, target - 1e-12) or min(1, size)
        if n == 0:
            return range(0)
        ceiling = self.admissible[n - 1][0] + width + 1e-12
        above_ceiling = size - bisect.bisect_right(self._ascending, ceiling)
        return range(max(n - limit, above_ceiling, 0), n)

    def neighbourhoods(self, width: float, limit: int) -> Callable[[float], range]:
        """`lambda target: self.neighbourhood(target, width, limit)`, remembered.

        A neighbourhood depends on the target only through how many admissible outcomes
        reach it (one bisection), and a delegate's aspiration stays between the same two
        utilities for several turns, so each is computed once per space, width and limit
        (a space outlives its strategies: every negotiation of a plan shares it)."""
        memo = self._neighbourhoods.get((width, limit))
        if memo is None:
            memo = self._neighbourhoods[width, limit] = {}
        ascending = self._ascending
        neighbourhood = self.neighbourhood
        bisect_left = bisect.bisect_left

        def near(target: float) -> range:
            reached = bisect_left(ascending, target - 1e-12)
            found = memo.get(reached)
            if found is None:
                found = memo[reached] = neighbourhood(target, width, limit)
            return found

        return near

    def closest_above(self, target: float) -> list[tuple[float, Outcome]]:
        """The admissible outcomes whose utility is the lowest one still >= target.

        Returns all outcomes tied at that utility so that a strategy can break the tie
        with its seeded generator. Empty when nothing admissible reaches the target.
        """
        candidates = self.at_least(target)
        if not candidates:
            return []
        floor = candidates[-1][0]
        return [(u, o) for u, o in candidates if abs(u - floor) <= 1e-12]
