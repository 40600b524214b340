"""Outcome metrics for any finished session, computed from the delegates' value models.

Pure (no I/O) and protocol-independent: everything is computed from the agenda, each
delegate's value model (anything with ``utility(outcome) -> float``; a
:class:`constituencies.ValueModel` also gives per-card and per-constituent figures), the
``Ended`` event and the message and round counts. The measures are the ones of the
automated-negotiation literature (Genius: Lin et al., "Genius: an integrated environment
for supporting the design of generic automated negotiators", Computational Intelligence
30(1), 2014; NegMAS: Mohammad et al., 2021; Baarslag et al., "Evaluating practical
negotiating agents", Artificial Intelligence 198, 2013):

* **Agreement**, rounds, messages, and each party's utility. A party that agreed to
  nothing gets its *disagreement utility* ``d_i``; the standard is the reservation value,
  so by default ``d_i`` is the mandate's reservation level (``Mandate.reservation``, itself
  -1.0, the bottom of the scale, when the organizer set none).
* **Agreement space.** Outcomes that cross a party's red line can never be agreed under
  the mandates, so the frontier and every optimum below are taken over the outcomes that
  cross no red line (all outcomes when no red lines are given).
* **Pareto optimality**: the result's utility vector is not Pareto-dominated by any
  outcome of the agreement space; its *distance to the frontier* is the Euclidean distance
  in utility space to the nearest frontier point (0 exactly when the agreement is on the
  frontier). The frontier is found by sorting for two parties (O(n log n)) and by a
  sort-filter skyline for more.
* **Nash** bargaining solution: maximise prod_i (u_i - d_i) over the individually
  rational outcomes (u_i >= d_i for all i); **Kalai** (egalitarian gains): maximise
  min_i (u_i - d_i); **Kalai-Smorodinsky**: maximise min_i (u_i - d_i) / (best_i - d_i),
  best_i being party i's ideal (its best individually rational utility; a party whose
  ideal equals d_i counts as fully served). Each is reported with the result's Euclidean
  distance to it. Ties go to the lexicographically larger utility vector, then to the
  first outcome in agenda order, so each solution is always on the Pareto frontier.
* **Welfare**: utilitarian (sum of utilities) and egalitarian (minimum utility) of the
  result, each with its optimum over the agreement space.
* **Fairness**: Gini coefficients across constituencies (the parties' utilities) and
  across constituents (``ValueModel.constituent_utility`` for every constituent of every
  constituency whose delegate agreed to something). Utilities live in [-1, 1], and Gini
  needs non-negative values, so every utility is **shifted by +1** (to [0, 2]) first.
  People are counted once each, unweighted.
* **Per-card preservation**: for each card of each delegate, where the card's
  contribution to the outcome sits between that card's worst and best contribution over
  the whole outcome space: ``(c - min) / (max - min)`` (1.0 for a card no outcome can
  move). A ValueModel's utility is additive over issues, so a card's extremes are the sum
  of its per-issue extremes: exact, and cheap on any outcome space.
* **Partial agreements** (MOPAC): each party gets the utility of its coalition's outcome
  (the first coalition listing it), the others their disagreement utility.

Scenario statistics (every outcome's utilities, the frontier, the Nash, Kalai and KS
points, the welfare optima, card extremes) depend only on the scenario, so they are
computed once by :class:`ScenarioStats` and cached by :func:`scenario_stats`. Utilities
are rounded to 12 decimal places so that sums that are equal on paper compare equal.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from protocols.agenda import Agenda, Outcome
from protocols.events import Ended, PartialAgreement

DIGITS = 12
"""Utilities are rounded to this many decimal places before they are compared."""

GINI_SHIFT = 1.0
"""Added to every utility (on the [-1, 1] scale) before a Gini coefficient is taken."""

Point = tuple[float, ...]


class UtilityModel(Protocol):
    """What metrics need of a delegate's value model."""

    def utility(self, outcome: Mapping[str, str]) -> float: ...


# -- pure helpers -------------------------------------------------------------------------


def gini(values: Sequence[float]) -> float:
    """Gini coefficient of non-negative values, in [0, 1 - 1/n]; 0 when all are zero."""
    if not values:
        raise ValueError("the Gini coefficient of no values is undefined")
    if min(values) < -1e-12:
        raise ValueError("the Gini coefficient needs non-negative values (shift them first)")
    xs = sorted(max(0.0, v) for v in values)
    n = len(xs)
    total = sum(xs)
    if total <= 0.0:
        return 0.0
    weighted = sum((i + 1) * x for i, x in enumerate(xs))
    g = 2.0 * weighted / (n * total) - (n + 1.0) / n
    return min(1.0, max(0.0, g))


def shifted_gini(utilities: Sequence[float]) -> float:
    """Gini of utilities on the [-1, 1] scale, shifted by :data:`GINI_SHIFT` first."""
    return gini([u + GINI_SHIFT for u in utilities])


def dominates(a: Point, b: Point) -> bool:
    """a Pareto-dominates b: at least as good for everyone, better for someone."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and a != b


def distance(a: Point, b: Point) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


def _weakly_above(k: int) -> Callable[[Point, Point], bool]:
    """q >= p in every coordinate; unrolled for the common sizes (the skyline's hot loop)."""
    if k == 2:
        return lambda q, p: q[0] >= p[0] and q[1] >= p[1]
    if k == 3:
        return lambda q, p: q[0] >= p[0] and q[1] >= p[1] and q[2] >= p[2]
    if k == 4:
        return lambda q, p: q[0] >= p[0] and q[1] >= p[1] and q[2] >= p[2] and q[3] >= p[3]
    return lambda q, p: all(x >= y for x, y in zip(q, p, strict=True))


def pareto_front(points: Sequence[Point]) -> list[int]:
    """Indices of the points no other point dominates, in ascending order.

    Equal points do not dominate each other, so duplicates on the frontier are all kept.
    Two coordinates: one sort and a sweep, O(n log n). More: the distinct points sorted by
    decreasing sum (a dominating point always sorts first), each kept unless a point
    already kept dominates it (sort-filter skyline: Chomicki et al., ICDE 2003).
    """
    if not points:
        return []
    k = len(points[0])
    groups: dict[Point, list[int]] = {}
    for i, p in enumerate(points):
        groups.setdefault(p, []).append(i)
    distinct = list(groups)
    if k == 1:
        top = max(distinct)
        kept = [top]
    elif k == 2:
        distinct.sort(key=lambda p: (-p[0], -p[1]))
        kept = []
        best_second = -math.inf
        for p in distinct:
            # Sorted by first coordinate descending, then second descending: p is
            # dominated iff an earlier point reached at least its second coordinate.
            if p[1] > best_second:
                kept.append(p)
                best_second = p[1]
    else:
        above = _weakly_above(k)
        distinct.sort(key=lambda p: (sum(p), p), reverse=True)
        kept = []
        for p in distinct:
            for n, q in enumerate(kept):
                if above(q, p):
                    # Move-to-front: a point that dominates one often dominates the next.
                    if n > 0:
                        kept[n], kept[n - 1] = kept[n - 1], kept[n]
                    break
            else:
                kept.append(p)
    return sorted(i for p in kept for i in groups[p])


# -- the scenario ---------------------------------------------------------------------------


class ScenarioStats:
    """Everything about a scenario that does not depend on how a session went.

    Built in one pass over the outcome space (one tuple of utilities per outcome, in
    agenda order). ``disagreement`` defaults to each model's mandate reservation
    (``model.constituency.mandate.reservation``, -1.0 when the model has none);
    ``red_lines`` (party -> partial outcomes it must never accept) default to the model's
    mandate's red lines. Pass ``red_lines={}`` to take the whole outcome space.
    """

    def __init__(
        self,
        agenda: Agenda,
        models: Mapping[str, UtilityModel],
        disagreement: Mapping[str, float] | None = None,
        red_lines: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
    ) -> None:
        if not models:
            raise ValueError("metrics need at least one delegate's value model")
        self.agenda = agenda
        self.models: dict[str, UtilityModel] = dict(models)
        self.parties: tuple[str, ...] = tuple(self.models)
        self._issue_ids = [i.id for i in agenda.issues]
        self._option_ids = [[o.id for o in i.options] for i in agenda.issues]
        self._option_pos = [{o: n for n, o in enumerate(opts)} for opts in self._option_ids]
        self.size = agenda.size

        given = dict(disagreement or {})
        self.disagreement: Point = tuple(
            _round(given[p] if p in given else default_disagreement(self.models[p]))
            for p in self.parties
        )
        lines = default_red_lines(self.models) if red_lines is None else red_lines
        self.red_lines: dict[str, list[dict[str, str]]] = {
            p: [dict(line) for line in lines.get(p, [])] for p in self.parties
        }

        # One pass: every outcome's utilities, in agenda order.
        columns = [self._column(self.models[p]) for p in self.parties]
        self.utilities: list[Point] = list(zip(*columns, strict=True))
        self._extremes = [(min(c), max(c)) for c in columns]
        self.feasible: list[bool] = self._feasible_mask()
        self.agreement_space: list[int] = [i for i, ok in enumerate(self.feasible) if ok]
        utilities, d, above = self.utilities, self.disagreement, _weakly_above(len(self.parties))
        self.individually_rational: list[int] = [
            i for i in self.agreement_space if above(utilities[i], d)
        ]

        space_points = [self.utilities[i] for i in self.agreement_space]
        self.frontier: list[int] = [self.agreement_space[j] for j in pareto_front(space_points)]
        self.frontier_points: list[Point] = sorted({self.utilities[i] for i in self.frontier})

        # Every optimum below lies on the frontier (ties go to the lexicographically larger
        # utility vector, which no point can dominate without beating it), so it suffices to
        # search the frontier: a few hundred points instead of the whole space.
        frontier_ir = [i for i in self.frontier if self._rational(self.utilities[i])]
        self.ideal: Point | None = (
            tuple(max(self.utilities[i][k] for i in frontier_ir) for k in range(len(self.parties)))
            if frontier_ir
            else None
        )
        self.nash: int | None = self._argmax(frontier_ir, self.nash_product)
        self.kalai: int | None = self._argmax(frontier_ir, self.kalai_value)
        self.kalai_smorodinsky: int | None = self._argmax(frontier_ir, self.ks_value)
        self.utilitarian: int | None = self._argmax(self.frontier, lambda p: _round(sum(p)))
        self.egalitarian: int | None = self._argmax(self.frontier, min)
        self.card_ranges: dict[str, dict[str, tuple[float, float]]] = {
            p: _card_ranges(agenda, self.models[p]) for p in self.parties
        }

    # -- one pass over the outcome space ---------------------------------------------

    def _column(self, model: UtilityModel) -> list[float]:
        """One party's utility for every outcome, in agenda order."""
        tables = _additive_tables(self.agenda, model)
        if tables is not None:
            base, per_issue = tables
            sums = [base]
            for table in per_issue:
                sums = [s + t for s in sums for t in table]
            return [round(s, DIGITS) + 0.0 for s in sums]
        return [_round(model.utility(o)) for o in self.agenda.outcomes()]

    def _feasible_mask(self) -> list[bool]:
        lines = [
            [
                (self._issue_ids.index(i), self._option_pos[self._issue_ids.index(i)][o])
                for i, o in line.items()
            ]
            for party_lines in self.red_lines.values()
            for line in party_lines
            if all(
                i in self._issue_ids and o in self._option_pos[self._issue_ids.index(i)]
                for i, o in line.items()
            )
        ]
        if not lines:
            return [True] * self.size
        ranges = [range(len(opts)) for opts in self._option_ids]
        return [
            not any(all(combo[i] == o for i, o in line) for line in lines)
            for combo in itertools.product(*ranges)
        ]

    # -- solution concepts ---------------------------------------------------------------

    def _rational(self, p: Point) -> bool:
        """Individually rational: every party gets at least its disagreement utility."""
        return all(u >= d for u, d in zip(p, self.disagreement, strict=True))

    def nash_product(self, p: Point) -> float:
        return math.prod(u - d for u, d in zip(p, self.disagreement, strict=True))

    def kalai_value(self, p: Point) -> float:
        return min(u - d for u, d in zip(p, self.disagreement, strict=True))

    def ks_value(self, p: Point) -> float:
        assert self.ideal is not None
        ratios = []
        for u, d, best in zip(p, self.disagreement, self.ideal, strict=True):
            span = best - d
            ratios.append(1.0 if span <= 0 else (u - d) / span)
        return min(ratios)

    def _argmax(self, indices: Sequence[int], objective: Callable[[Point], float]) -> int | None:
        if not indices:
            return None
        utilities = self.utilities
        return max(indices, key=lambda i: (objective(utilities[i]), utilities[i], -i))

    # -- lookups -------------------------------------------------------------------------

    def index_of(self, outcome: Mapping[str, str]) -> int:
        problem = self.agenda.problem_with(outcome)
        if problem:
            raise ValueError(f"not an outcome of the agenda: {problem}")
        index = 0
        for issue, options, pos in zip(
            self._issue_ids, self._option_ids, self._option_pos, strict=True
        ):
            index = index * len(options) + pos[outcome[issue]]
        return index

    def outcome(self, index: int) -> Outcome:
        if not 0 <= index < self.size:
            raise IndexError(index)
        chosen: list[str] = []
        for options in reversed(self._option_ids):
            index, pos = divmod(index, len(options))
            chosen.append(options[pos])
        return dict(zip(self._issue_ids, reversed(chosen), strict=True))

    def point_of(self, outcome: Mapping[str, str]) -> Point:
        return self.utilities[self.index_of(outcome)]

    def on_frontier(self, index: int) -> bool:
        return self.feasible[index] and not self.dominated(self.utilities[index])

    def dominated(self, point: Point) -> bool:
        """Some outcome of the agreement space Pareto-dominates `point`."""
        return any(dominates(q, point) for q in self.frontier_points)

    def frontier_distance(self, point: Point) -> float | None:
        """Euclidean distance in utility space from `point` to the nearest frontier point."""
        if not self.frontier_points:
            return None
        return min(distance(q, point) for q in self.frontier_points)

    def best(self, party: str) -> float:
        """The party's highest utility over the whole outcome space."""
        return self._extremes[self.parties.index(party)][1]

    def worst(self, party: str) -> float:
        """The party's lowest utility over the whole outcome space."""
        return self._extremes[self.parties.index(party)][0]


def default_disagreement(model: Any) -> float:
    """The reservation value of the model's mandate: the standard disagreement utility."""
    mandate = getattr(getattr(model, "constituency", None), "mandate", None)
    return float(mandate.reservation) if mandate is not None else -1.0


def default_red_lines(models: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for party, model in models.items():
        mandate = getattr(getattr(model, "constituency", None), "mandate", None)
        if mandate is not None:
            found[party] = [dict(line.root) for line in mandate.red_lines]
    return found


def _round(x: float) -> float:
    return round(x, DIGITS) + 0.0  # + 0.0 turns -0.0 into 0.0


def _is_additive(model: Any) -> bool:
    # Imported here: protocols/ may read constituencies/ (a lower layer), but only metrics
    # need it. ValueModel's utility is a sum of per-issue terms (see its docstring).
    from constituencies.value_model import ValueModel

    return isinstance(model, ValueModel)


def _additive_tables(agenda: Agenda, model: Any) -> tuple[float, list[list[float]]] | None:
    """For an additive model: u(o) = u(b) + sum_i (u(b with issue i set to o_i) - u(b))."""
    if not _is_additive(model):
        return None
    base = {i.id: i.options[0].id for i in agenda.issues}
    u0 = model.utility(base)
    tables = [
        [model.utility({**base, issue.id: option.id}) - u0 for option in issue.options]
        for issue in agenda.issues
    ]
    return u0, tables


def _card_ranges(agenda: Agenda, model: Any) -> dict[str, tuple[float, float]]:
    """Each card's lowest and highest contribution over the outcome space (additive models)."""
    if not _is_additive(model):
        return {}
    base = {i.id: i.options[0].id for i in agenda.issues}
    at_base = {c.card: c.contribution for c in model.breakdown(base).contributions}
    low = dict(at_base)
    high = dict(at_base)
    for issue in agenda.issues:
        deltas: dict[str, list[float]] = {c: [] for c in at_base}
        for option in issue.options:
            changed = model.breakdown({**base, issue.id: option.id})
            for c in changed.contributions:
                deltas[c.card].append(c.contribution - at_base[c.card])
        for card, ds in deltas.items():
            low[card] += min(ds)
            high[card] += max(ds)
    return {card: (_round(low[card]), _round(high[card])) for card in at_base}


# -- caching ----------------------------------------------------------------------------------

_CACHE: OrderedDict[tuple[Any, ...], ScenarioStats] = OrderedDict()
_CACHE_SIZE = 16


def _model_key(model: Any) -> Any:
    # A ValueModel's content hash covers its constituency (mandate included),
    # assessments and contexts; any other model is keyed by identity (the cache keeps
    # it alive, so the id cannot be reused while the entry exists).
    return getattr(model, "hash", None) or ("id", id(model))


def scenario_stats(
    agenda: Agenda,
    models: Mapping[str, UtilityModel],
    disagreement: Mapping[str, float] | None = None,
    red_lines: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
) -> ScenarioStats:
    """:class:`ScenarioStats` for the scenario, computed once and then served from a cache."""
    key = (
        agenda.model_dump_json(),
        tuple((p, _model_key(m)) for p, m in models.items()),
        tuple(sorted((disagreement or {}).items())),
        None
        if red_lines is None
        else tuple(
            sorted(
                (p, tuple(tuple(sorted(line.items())) for line in ls))
                for p, ls in red_lines.items()
            )
        ),
    )
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    stats = ScenarioStats(agenda, models, disagreement, red_lines)
    _CACHE[key] = stats
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return stats


def clear_cache() -> None:
    _CACHE.clear()


# -- the report --------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CardPreservation(_Frozen):
    """How much of what one card could get from the agenda the outcome kept."""

    card: str
    title: str
    contribution: float = Field(description="The card's contribution to the party's utility.")
    min: float = Field(description="Its lowest contribution over the outcome space.")
    max: float = Field(description="Its highest contribution over the outcome space.")
    preservation: float = Field(
        description="(contribution - min) / (max - min); 1.0 when no outcome can move the card."
    )


class PartyMetrics(_Frozen):
    id: str
    outcome: dict[str, str] | None = Field(description="What this party agreed to, if anything.")
    utility: float
    disagreement: float = Field(
        description="Its utility without agreement (the reservation value)."
    )
    gain: float = Field(description="utility - disagreement")
    best: float
    worst: float
    satisfaction: float = Field(
        description="(utility - worst) / (best - worst) over the outcome space."
    )
    cards: list[CardPreservation] = Field(default_factory=list)
    constituents: dict[str, float] = Field(
        default_factory=dict, description="Each constituent's utility from their own cards."
    )


class ParetoMetrics(_Frozen):
    optimal: bool = Field(
        description="No outcome of the agreement space Pareto-dominates the result."
    )
    distance: float | None = Field(
        description="Euclidean distance to the nearest frontier point; None when every outcome "
        "crosses some red line (there is no frontier)."
    )
    frontier_outcomes: int
    frontier_points: int


class SolutionPoint(_Frozen):
    """A bargaining solution of the scenario and how far the result is from it."""

    outcome: dict[str, str]
    utilities: dict[str, float]
    value: float = Field(
        description="The objective it maximises (Nash product, min gain, min ratio)."
    )
    distance: float = Field(description="Euclidean distance from the result in utility space.")
    reached: bool = Field(description="The result has exactly this solution's utilities.")


class WelfareMetrics(_Frozen):
    utilitarian: float = Field(description="Sum of the parties' utilities.")
    utilitarian_optimum: float | None
    utilitarian_outcome: dict[str, str] | None
    egalitarian: float = Field(description="The lowest party utility.")
    egalitarian_optimum: float | None
    egalitarian_outcome: dict[str, str] | None


class FairnessMetrics(_Frozen):
    shift: float = Field(default=GINI_SHIFT, description="Added to utilities before Gini.")
    gini_constituencies: float
    gini_constituents: float | None = Field(
        description="Over the constituents of every party that agreed to something; "
        "None if none did."
    )


class ScenarioSummary(_Frozen):
    parties: list[str]
    outcomes: int
    agreement_space: int = Field(description="Outcomes that cross no red line.")
    individually_rational: int = Field(
        description="...of which every party gets at least its disagreement utility."
    )
    disagreement: dict[str, float]
    ideal: dict[str, float] | None


class SessionMetrics(_Frozen):
    """How a finished session went, by the standard measures; serialises to JSON."""

    session_id: str | None = None
    agreement: bool = Field(description="Every delegate agreed to one outcome.")
    partial: bool = Field(description="Only coalitions agreed (MOPAC-style).")
    outcome: dict[str, str] | None
    coalitions: list[PartialAgreement] = Field(default_factory=list)
    chosen: str | None = None
    reason: str
    rounds: int
    messages: int
    parties: list[PartyMetrics]
    pareto: ParetoMetrics
    nash: SolutionPoint | None
    kalai: SolutionPoint | None
    kalai_smorodinsky: SolutionPoint | None
    welfare: WelfareMetrics
    fairness: FairnessMetrics
    scenario: ScenarioSummary

    def party(self, party_id: str) -> PartyMetrics:
        for p in self.parties:
            if p.id == party_id:
                return p
        raise KeyError(party_id)


def party_outcomes(ended: Ended, parties: Iterable[str]) -> dict[str, dict[str, str] | None]:
    """What each party agreed to: the agreement, else its (first) coalition's outcome, else None."""
    result: dict[str, dict[str, str] | None] = {}
    for party in parties:
        if ended.agreement is not None:
            result[party] = dict(ended.agreement)
            continue
        result[party] = next(
            (dict(pa.outcome) for pa in ended.partial if party in pa.parties), None
        )
    return result


def session_metrics(
    stats: ScenarioStats,
    ended: Ended,
    *,
    messages: int,
    rounds: int | None = None,
    session_id: str | None = None,
) -> SessionMetrics:
    """The metrics of one finished session, given its scenario's (cached) statistics."""
    outcomes = party_outcomes(ended, stats.parties)
    utilities: list[float] = []
    parties: list[PartyMetrics] = []
    for k, party in enumerate(stats.parties):
        outcome = outcomes[party]
        d = stats.disagreement[k]
        u = stats.point_of(outcome)[k] if outcome is not None else d
        utilities.append(u)
        model = stats.models[party]
        best, worst = stats.best(party), stats.worst(party)
        parties.append(
            PartyMetrics(
                id=party,
                outcome=outcome,
                utility=u,
                disagreement=d,
                gain=_round(u - d),
                best=best,
                worst=worst,
                satisfaction=1.0 if best <= worst else (u - worst) / (best - worst),
                cards=_preservation(model, stats.card_ranges[party], outcome),
                constituents=_constituents(model, outcome),
            )
        )
    point: Point = tuple(utilities)
    people = [u for p in parties for u in p.constituents.values()]
    return SessionMetrics(
        session_id=session_id,
        agreement=ended.agreement is not None,
        partial=ended.agreement is None and bool(ended.partial),
        outcome=dict(ended.agreement) if ended.agreement is not None else None,
        coalitions=list(ended.partial),
        chosen=ended.chosen,
        reason=ended.reason,
        rounds=ended.round if rounds is None else rounds,
        messages=messages,
        parties=parties,
        pareto=ParetoMetrics(
            optimal=not stats.dominated(point),
            distance=stats.frontier_distance(point),
            frontier_outcomes=len(stats.frontier),
            frontier_points=len(stats.frontier_points),
        ),
        nash=_solution(stats, stats.nash, stats.nash_product, point),
        kalai=_solution(stats, stats.kalai, stats.kalai_value, point),
        kalai_smorodinsky=_solution(stats, stats.kalai_smorodinsky, stats.ks_value, point),
        welfare=WelfareMetrics(
            utilitarian=_round(sum(point)),
            utilitarian_optimum=_round(sum(stats.utilities[stats.utilitarian]))
            if stats.utilitarian is not None
            else None,
            utilitarian_outcome=stats.outcome(stats.utilitarian)
            if stats.utilitarian is not None
            else None,
            egalitarian=min(point),
            egalitarian_optimum=min(stats.utilities[stats.egalitarian])
            if stats.egalitarian is not None
            else None,
            egalitarian_outcome=stats.outcome(stats.egalitarian)
            if stats.egalitarian is not None
            else None,
        ),
        fairness=FairnessMetrics(
            gini_constituencies=shifted_gini(point),
            gini_constituents=shifted_gini(people) if people else None,
        ),
        scenario=ScenarioSummary(
            parties=list(stats.parties),
            outcomes=stats.size,
            agreement_space=len(stats.agreement_space),
            individually_rational=len(stats.individually_rational),
            disagreement=dict(zip(stats.parties, stats.disagreement, strict=True)),
            ideal=dict(zip(stats.parties, stats.ideal, strict=True))
            if stats.ideal is not None
            else None,
        ),
    )


def compute_metrics(
    agenda: Agenda,
    models: Mapping[str, UtilityModel],
    ended: Ended,
    *,
    messages: int,
    rounds: int | None = None,
    disagreement: Mapping[str, float] | None = None,
    red_lines: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
    session_id: str | None = None,
) -> SessionMetrics:
    """Metrics of a finished session straight from the agenda and the value models."""
    stats = scenario_stats(agenda, models, disagreement, red_lines)
    return session_metrics(stats, ended, messages=messages, rounds=rounds, session_id=session_id)


def _solution(
    stats: ScenarioStats, index: int | None, objective: Callable[[Point], float], point: Point
) -> SolutionPoint | None:
    if index is None:
        return None
    target = stats.utilities[index]
    return SolutionPoint(
        outcome=stats.outcome(index),
        utilities=dict(zip(stats.parties, target, strict=True)),
        value=_round(objective(target)),
        distance=distance(point, target),
        reached=point == target,
    )


def _preservation(
    model: Any, ranges: Mapping[str, tuple[float, float]], outcome: Mapping[str, str] | None
) -> list[CardPreservation]:
    if outcome is None or not ranges or not hasattr(model, "breakdown"):
        return []
    cards = []
    for c in model.breakdown(outcome).contributions:
        low, high = ranges[c.card]
        value = _round(c.contribution)
        share = 1.0 if high - low <= 0 else min(1.0, max(0.0, (value - low) / (high - low)))
        cards.append(
            CardPreservation(
                card=c.card,
                title=c.title,
                contribution=value,
                min=low,
                max=high,
                preservation=share,
            )
        )
    return cards


def _constituents(model: Any, outcome: Mapping[str, str] | None) -> dict[str, float]:
    constituency = getattr(model, "constituency", None)
    if outcome is None or constituency is None or not hasattr(model, "constituent_utility"):
        return {}
    return {
        p.id: _round(model.constituent_utility(p.id, outcome)) for p in constituency.constituents
    }
