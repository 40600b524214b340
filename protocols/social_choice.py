"""Social choice over weighted ranked ballots: Schulze's beatpath method, exact, and others.

Source: M. Schulze, "A new monotonic, clone-independent, reversal symmetric, and
Condorcet-consistent single-winner election method", Social Choice and Welfare 36 (2011)
267-303 (the worked 45-voter example is also the one in Wikipedia's "Schulze method").

Ballots. A ballot ranks every candidate exactly once, best first, and carries a weight > 0
(in Accord, the size of the delegate's constituency). A ballot of weight 3 counts exactly
as three identical ballots of weight 1.

Schulze, as implemented here:

1. d[X][Y] = total weight of the ballots that rank X above Y.
2. The link X -> Y has strength d[X][Y] when d[X][Y] > d[Y][X], else 0 ("winning votes").
   Ballots are complete, so d[X][Y] + d[Y][X] is the same total W for every pair and the
   margin d[X][Y] - d[Y][X] = 2 d[X][Y] - W orders links exactly as winning votes do: the
   margins variant gives the same result.
3. p[X][Y] = the strength of the strongest path from X to Y, a path's strength being its
   weakest link (widest paths, Floyd-Warshall, O(n^3) in the number of candidates).
4. X beats Y iff p[X][Y] > p[Y][X]. This relation is a strict partial order (Schulze
   2011, section 4.1), so some candidate is beaten by nobody: the Schulze winners.
5. Tie rule: among tied winners, the candidate listed first wins. The full ranking is
   built the same way: repeatedly take, among the candidates not yet ranked, the
   first-listed one that no unranked candidate beats (a linear extension of the Schulze
   order). Callers list candidates in id order (voting: c01, c02, ...), so ties go to the
   lowest id.

Exactness: each weight is read as the shortest decimal that prints it (0.1 is one tenth,
so 0.1 + 0.2 ties 0.3) and all weights are scaled to integers over a common denominator,
so sums and comparisons are exact and ties are real ties.

Other rules (`borda`, `copeland`, `plurality`, `instant-runoff`, `ranked-pairs`,
`minimax`) are computed by the `pref_voting` library (Holliday and Pacuit) on the same
weighted profile, imported only when such a rule is asked for. Its winner sets are broken
by the same tie rule (first listed); `instant-runoff` eliminates one candidate at a time,
the last-listed among those tied for fewest first preferences; `ranked-pairs` locks
equally strong pairs in list order (pref_voting's `ranked_pairs_tb`), which keeps it
polynomial where the tie-enumerating variant is exponential.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, NamedTuple, get_args

Rule = Literal[
    "schulze", "borda", "copeland", "plurality", "instant-runoff", "ranked-pairs", "minimax"
]
RULES: tuple[str, ...] = get_args(Rule)

# pref_voting function behind each non-default rule.
_PREF_VOTING = {
    "borda": "borda",
    "copeland": "copeland",
    "plurality": "plurality",
    "instant-runoff": "instant_runoff",
    "ranked-pairs": "ranked_pairs_tb",
    "minimax": "minimax",
}


class Ballot(NamedTuple):
    """A complete ranking, best first, with its weight."""

    ranking: Sequence[str]
    weight: float = 1.0


def ballot_problem(ranking: Sequence[str], candidates: Sequence[str]) -> str | None:
    """Why `ranking` is not a complete ballot over `candidates` (each exactly once), or None."""
    known = set(candidates)
    unknown = [c for c in dict.fromkeys(ranking) if c not in known]
    if unknown:
        return f"ranks unknown candidate(s): {', '.join(unknown)}"
    seen: set[str] = set()
    dupes: list[str] = []
    for c in ranking:
        if c in seen and c not in dupes:
            dupes.append(c)
        seen.add(c)
    if dupes:
        return f"ranks {', '.join(dupes)} more than once"
    missing = [c for c in candidates if c not in seen]
    if missing:
        return (
            f"leaves out {', '.join(missing)} (a ballot must rank every candidate exactly once)"
        )
    return None


def rule_problem(rule: str) -> str | None:
    """Why `rule` cannot be used here, or None."""
    if rule not in RULES:
        return f"unknown rule {rule!r}; known: {', '.join(RULES)}"
    if rule != "schulze" and importlib.util.find_spec("pref_voting") is None:
        return f"rule {rule!r} needs the pref_voting package (pip install pref_voting)"
    return None


class _Profile:
    """Candidates, ballots as index lists, integer weights, and the pairwise matrix."""

    def __init__(self, candidates: Sequence[str], ballots: Sequence[Ballot]) -> None:
        if not candidates:
            raise ValueError("no candidates")
        if len(set(candidates)) != len(candidates):
            raise ValueError("candidate ids must be distinct")
        if not ballots:
            raise ValueError("no ballots")
        self.candidates = list(candidates)
        index = {c: i for i, c in enumerate(self.candidates)}
        fractions = []
        for n, ballot in enumerate(ballots):
            problem = ballot_problem(ballot.ranking, self.candidates)
            if problem:
                raise ValueError(f"ballot {n}: {problem}")
            if not (math.isfinite(ballot.weight) and ballot.weight > 0):
                raise ValueError(f"ballot {n}: weight must be a positive finite number")
            w = ballot.weight
            fractions.append(Fraction(w) if isinstance(w, int) else Fraction(repr(float(w))))
        self.denominator = math.lcm(*(f.denominator for f in fractions))
        self.weights = [int(f * self.denominator) for f in fractions]
        self.rankings = [[index[c] for c in b.ranking] for b in ballots]
        n = len(self.candidates)
        d = [[0] * n for _ in range(n)]
        for ranking, w in zip(self.rankings, self.weights, strict=True):
            for pos, x in enumerate(ranking):
                row = d[x]
                for y in ranking[pos + 1 :]:
                    row[y] += w
        self.d = d
        self.total = sum(self.weights)

    def real(self, value: int) -> float:
        return value / self.denominator


@dataclass(frozen=True)
class Schulze:
    """Schulze's method on a profile: pairwise counts, strongest paths, winner and ranking.

    `d[x][y]` and `p[x][y]` are in ballot-weight units, keyed by candidate id.
    """

    candidates: list[str]
    d: dict[str, dict[str, float]]
    p: dict[str, dict[str, float]]
    winners: list[str]
    ranking: list[str]

    @property
    def winner(self) -> str:
        return self.ranking[0]

    def beats(self, x: str, y: str) -> bool:
        return self.p[x][y] > self.p[y][x]


def _strongest_paths(d: list[list[int]]) -> list[list[int]]:
    n = len(d)
    p = [[d[i][j] if i != j and d[i][j] > d[j][i] else 0 for j in range(n)] for i in range(n)]
    for i in range(n):
        row_i = p[i]
        for j in range(n):
            if j == i:
                continue
            p_ji = p[j][i]
            if p_ji == 0:
                continue
            row_j = p[j]
            for k in range(n):
                if k != i and k != j:
                    via = p_ji if p_ji < row_i[k] else row_i[k]
                    if via > row_j[k]:
                        row_j[k] = via
    return p


def _schulze(profile: _Profile) -> tuple[list[list[int]], list[int], list[int]]:
    """(strongest paths, winners, ranking) as candidate indices."""
    p = _strongest_paths(profile.d)
    n = len(p)
    winners = [x for x in range(n) if all(p[x][y] >= p[y][x] for y in range(n) if y != x)]
    ranking: list[int] = []
    left = list(range(n))
    while left:
        top = next(x for x in left if not any(p[y][x] > p[x][y] for y in left if y != x))
        ranking.append(top)
        left.remove(top)
    return p, winners, ranking


def schulze(candidates: Sequence[str], ballots: Sequence[Ballot]) -> Schulze:
    """Weighted Schulze: winner, tied winners and full ranking, with the tie rule above."""
    profile = _Profile(candidates, ballots)
    p, winners, ranking = _schulze(profile)
    names = profile.candidates

    def matrix(m: list[list[int]]) -> dict[str, dict[str, float]]:
        return {
            names[i]: {names[j]: profile.real(m[i][j]) for j in range(len(names)) if j != i}
            for i in range(len(names))
        }

    return Schulze(
        candidates=names,
        d=matrix(profile.d),
        p=matrix(p),
        winners=[names[i] for i in winners],
        ranking=[names[i] for i in ranking],
    )


@dataclass(frozen=True)
class Tally:
    """The result of a vote under one rule, with what the reason line needs."""

    rule: str
    candidates: list[str]
    winner: str
    tied: list[str]
    """Every winner under the rule before the tie rule (the winner first)."""
    ballots: int
    total_weight: float
    head_to_head: float | None
    """The winner's smallest pairwise margin over any rival (negative: it loses to one)."""
    head_to_head_rival: str | None
    beatpath: float | None = None
    """Schulze only: the smallest p[winner][Y] - p[Y][winner] over rivals Y (0: a tie)."""
    beatpath_rival: str | None = None
    ranking: list[str] | None = None
    """Schulze only: the full ranking."""

    def describe(self) -> str:
        w = _num(self.total_weight)
        parts = [
            f"{self.rule} winner {self.winner} of {len(self.candidates)} candidates, "
            f"{self.ballots} ballot(s) of total weight {w}"
        ]
        if len(self.tied) > 1:
            parts.append(
                f"tied with {', '.join(self.tied[1:])}; the tie went to the first listed"
            )
        if self.beatpath is not None and self.beatpath_rival is not None:
            parts.append(
                f"beatpath margin {_num(self.beatpath)} over {self.beatpath_rival}"
            )
        if self.head_to_head is not None and self.head_to_head_rival is not None:
            m = self.head_to_head
            if m > 0:
                parts.append(
                    f"it beats every rival head to head, by at least {_num(m)} "
                    f"(over {self.head_to_head_rival})"
                )
            elif m == 0:
                parts.append(f"head to head it ties with {self.head_to_head_rival}")
            else:
                parts.append(
                    f"head to head it loses to {self.head_to_head_rival} by {_num(-m)}"
                )
        return "; ".join(parts)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.4g}"


def tally(rule: str, candidates: Sequence[str], ballots: Sequence[Ballot]) -> Tally:
    """Count `ballots` over `candidates` under `rule`; ties go to the first-listed candidate."""
    problem = rule_problem(rule)
    if problem:
        raise ValueError(problem)
    profile = _Profile(candidates, ballots)
    n = len(profile.candidates)
    names = profile.candidates
    beatpath = beatpath_rival = ranking = None
    if rule == "schulze":
        p, winners, order = _schulze(profile)
        win = order[0]
        ranking = [names[i] for i in order]
        if n > 1:
            rival = min((y for y in range(n) if y != win), key=lambda y: p[win][y] - p[y][win])
            beatpath = profile.real(p[win][rival] - p[rival][win])
            beatpath_rival = names[rival]
    else:
        winners = _pref_voting_winners(rule, profile) if n > 1 else [0]
        win = winners[0]
    h2h = h2h_rival = None
    if n > 1:
        d = profile.d
        rival = min((y for y in range(n) if y != win), key=lambda y: d[win][y] - d[y][win])
        h2h = profile.real(d[win][rival] - d[rival][win])
        h2h_rival = names[rival]
    tied = [win] + [i for i in winners if i != win]
    return Tally(
        rule=rule,
        candidates=names,
        winner=names[win],
        tied=[names[i] for i in tied],
        ballots=len(profile.rankings),
        total_weight=profile.real(profile.total),
        head_to_head=h2h,
        head_to_head_rival=h2h_rival,
        beatpath=beatpath,
        beatpath_rival=beatpath_rival,
        ranking=ranking,
    )


def _pref_voting_winners(rule: str, profile: _Profile) -> list[int]:
    """Winner indices by pref_voting, sorted (so the first is the first listed)."""
    from pref_voting import voting_methods
    from pref_voting.profiles import Profile

    # Exact integer weights where numpy's int64 holds them; the float weights otherwise.
    if profile.total < 2**53:
        counts: list[int] | list[float] = profile.weights
    else:
        counts = [profile.real(w) for w in profile.weights]
    pv = Profile(profile.rankings, rcounts=counts)
    order = list(range(len(profile.candidates)))
    method = getattr(voting_methods, _PREF_VOTING[rule])
    if rule == "instant-runoff":
        # tie_breaker[0] is eliminated first: the last-listed goes first.
        winners = method(pv, tie_breaker=order[::-1])
    elif rule == "ranked-pairs":
        winners = method(pv, tie_breaker=order)
    else:
        winners = method(pv)
    return sorted(int(w) for w in winners)
