"""Voting: one ranked, weighted ballot per delegate over candidate outcomes; a rule picks one.

Sources: the social-choice rules in `protocols/social_choice.py`; the default is Schulze's
beatpath method (M. Schulze, Social Choice and Welfare 36 (2011) 267-303), as used by the
Habermas Machine (Tessler et al., Science 386, 2024) to aggregate rankings of statements.

Rules, as implemented:

1. **Candidates.** `params.candidates` (complete outcomes of the agenda, at least two,
   distinct) if given; else, for a one-issue agenda (e.g. statements imported as the
   options of one issue), every option; else every outcome if the outcome space has at
   most `params.max_candidates` outcomes (default 64); else `max_candidates` outcomes
   sampled without replacement by `random.Random(f"{seed}:voting:candidates")`, kept in
   agenda order. Candidate ids are c1, c2, ... zero-padded to one width (c01 ... c64), so
   id order is list order; each has a plain-language `text`.
2. **The call.** Every delegate is called at once: `allowed=["rank"]`, `phase="vote"`,
   `candidates`, round 1 of 1.
3. **Ballots.** A Rank move ranking every candidate exactly once, best first. Anything
   else is refused with the reason: a move of another kind, an unknown candidate, a
   candidate ranked twice or left out, a second ballot (duplicate), a ballot after the
   delegate's call lapsed, a move from a non-participant or after the end. A refused
   move changes nothing; the sender, if it still owes a ballot, is called again with the
   reason in `note`; its `strikes`-th refused ballot counts as a missed vote.
4. **Weights.** A ballot weighs `params.weights[delegate]` (1 for a delegate not listed;
   a listed id that is not a participant is an error). The protocol sees only delegate
   ids, so the session runner fills `weights` from the constituencies' constituent
   weights (`ballot_weights`) unless the session file sets it.
5. **Absence.** A delegate that does not vote in time is absent: an Absence is recorded
   and the vote proceeds among the ballots cast.
6. **The count.** When every delegate has voted or is absent, `params.rule` (default
   `schulze`; also borda, copeland, plurality, instant-runoff, ranked-pairs, minimax)
   counts the ballots; ties go to the first-listed candidate (the lowest id). The session
   ends with `chosen` = the winner's id, `agreement` = its outcome and a reason naming the
   rule, the ballots, the winner's margins (Schulze beatpath margin; head-to-head margin
   over its closest rival) and any tie. With no ballot at all it ends without agreement.

The protocol does not see mandates: a delegate's ballot puts what its mandate forbids
last (the runtime enforces that), but the winner may still cross someone's red line;
`agreement` is the winner, not an outcome every delegate accepted.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, model_validator

from constituencies.ids import Id
from protocols.agenda import Agenda, Outcome
from protocols.base import Protocol, ProtocolParams
from protocols.drafting import describe
from protocols.events import Absence, Call, Candidate, ChairEvent, Ended, Rejection
from protocols.moves import Move, Rank
from protocols.social_choice import Ballot, Rule, ballot_problem, rule_problem, tally

if TYPE_CHECKING:
    from constituencies import Constituency

Weight = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class VotingParams(ProtocolParams):
    rule: Rule = Field(
        default="schulze",
        description="The social-choice rule; all but schulze need the pref_voting package.",
    )
    candidates: list[dict[Id, Id]] | None = Field(
        default=None,
        min_length=2,
        description="The outcomes to vote on (complete, distinct); by default drawn from the agenda.",
    )
    max_candidates: int = Field(
        default=64,
        ge=2,
        le=10_000,
        description="Above this many outcomes the agenda's outcomes are sampled (seeded); "
        "a one-issue agenda always offers every option.",
    )
    weights: dict[Id, Weight] = Field(
        default_factory=dict,
        description="Ballot weight per delegate (1 if unlisted). The session runner fills "
        "it from constituency sizes unless the session file sets it.",
    )
    strikes: int = Field(
        default=3, ge=1, description="Refused ballots from one delegate before it counts as absent."
    )

    @model_validator(mode="after")
    def _rule_available(self) -> VotingParams:
        problem = rule_problem(self.rule)
        if problem:
            raise ValueError(problem)
        return self


def ballot_weights(constituencies: Iterable[Constituency]) -> dict[str, float]:
    """Ballot weight per constituency: the summed weight of its constituents (each 1 by
    default, so the head count), or 1 for a constituency that lists no constituents."""
    return {
        c.id: (sum(p.weight for p in c.constituents) if c.constituents else 1.0)
        for c in constituencies
    }


def check_weights(weights: dict[str, float], participants: Sequence[str]) -> None:
    unknown = sorted(set(weights) - set(participants))
    if unknown:
        raise ValueError(f"protocol.weights: not a participant: {', '.join(unknown)}")


class Poll:
    """One question put to several delegates at once: the bookkeeping of simultaneous calls.

    Tracks who still owes an answer, the answers, refused attempts and who lapsed; the
    protocol does its own checks and asks the poll for the events of each case.
    """

    def __init__(self, calls: Sequence[Call], strikes: int) -> None:
        self.order = [c.to for c in calls]
        self.calls = {c.to: c for c in calls}
        self.answers: dict[str, Any] = {}
        self.lapsed: list[str] = []
        self._strikes = dict.fromkeys(self.order, 0)
        self._max_strikes = strikes

    @property
    def pending(self) -> list[Call]:
        return [self.calls[d] for d in self.order if self.owes(d)]

    @property
    def complete(self) -> bool:
        return not any(self.owes(d) for d in self.order)

    def owes(self, delegate: str) -> bool:
        return delegate in self.calls and delegate not in self.answers and delegate not in self.lapsed

    def why_not_owed(self, delegate: str, what: str) -> str:
        if delegate in self.answers:
            return f"duplicate: {delegate} has already given its {what} in this phase"
        if delegate in self.lapsed:
            return f"too late: {delegate}'s call in this phase lapsed"
        return f"{delegate} is not called in this phase"

    def answer(self, delegate: str, answer: Any) -> None:
        self.answers[delegate] = answer

    def in_order(self) -> dict[str, Any]:
        """Answers keyed by delegate, in the order the calls went out (session order)."""
        return {d: self.answers[d] for d in self.order if d in self.answers}

    def refuse(self, sender: str, move: Move, reason: str, consequence: str) -> list[ChairEvent]:
        """A Rejection; the sender is called again, or lapses after too many refusals."""
        rejection = Rejection(to=sender, reason=reason, move=move.model_dump(mode="json"))
        if not self.owes(sender):
            return [rejection]
        self._strikes[sender] += 1
        if self._strikes[sender] >= self._max_strikes:
            return [rejection, *self.lapse(sender, f"{self._strikes[sender]} refused moves; {consequence}")]
        again = self.calls[sender].model_copy(update={"note": f"your last move was refused: {reason}"})
        self.calls[sender] = again
        return [rejection, again]

    def lapse(self, delegate: str, consequence: str) -> list[ChairEvent]:
        """`delegate` missed this call (timeout or strikes): an Absence, if it owed an answer."""
        if not self.owes(delegate):
            return []
        self.lapsed.append(delegate)
        call = self.calls[delegate]
        return [Absence(delegate=delegate, round=call.round, consequence=consequence)]


def refuse_early(protocol: Protocol, sender: str, move: Move) -> list[ChairEvent] | None:
    """The refusals every protocol makes before looking at the move: after the end, or a
    sender who is not a participant."""
    if protocol.done:
        return [Rejection(to=sender, reason="the session has ended", move=move.model_dump(mode="json"))]
    if sender not in protocol.participants:
        return [
            Rejection(
                to=sender, reason=f"{sender!r} is not a participant", move=move.model_dump(mode="json")
            )
        ]
    return None


def outcome_at(agenda: Agenda, index: int) -> Outcome:
    """The `index`-th outcome of `agenda.outcomes()`, without enumerating the others."""
    chosen: dict[str, str] = {}
    for issue in reversed(agenda.issues):
        index, k = divmod(index, len(issue.options))
        chosen[issue.id] = issue.options[k].id
    return {i.id: chosen[i.id] for i in agenda.issues}


def default_candidates(agenda: Agenda, max_candidates: int, seed: int) -> list[Outcome]:
    """Every option of a one-issue agenda; every outcome of a small space; else a sample."""
    if len(agenda.issues) == 1:
        issue = agenda.issues[0]
        return [{issue.id: o.id} for o in issue.options]
    if agenda.size <= max_candidates:
        return list(agenda.outcomes())
    rng = random.Random(f"{seed}:voting:candidates")
    return [outcome_at(agenda, i) for i in sorted(rng.sample(range(agenda.size), max_candidates))]


def numbered(agenda: Agenda, outcomes: Sequence[Outcome]) -> list[Candidate]:
    width = len(str(len(outcomes)))
    return [
        Candidate(id=f"c{k:0{width}d}", outcome=dict(o), text=describe(agenda, o))
        for k, o in enumerate(outcomes, start=1)
    ]


class Voting(Protocol):
    name = "voting"
    description = "One weighted ranked ballot each over candidate outcomes; Schulze (or another rule) picks one."
    citation = (
        "Schulze, A new monotonic, clone-independent, reversal symmetric, and Condorcet-consistent "
        "single-winner election method, Social Choice and Welfare 36 (2011) 267-303"
    )
    Params = VotingParams
    moves = (Rank,)

    def __init__(
        self, participants: Sequence[str], agenda: Agenda, params: VotingParams, seed: int
    ) -> None:
        super().__init__(participants, agenda, params, seed)
        self.params: VotingParams = params
        check_weights(params.weights, self.participants)
        if params.candidates is not None:
            outcomes: list[Outcome] = []
            for n, outcome in enumerate(params.candidates):
                problem = agenda.problem_with(outcome)
                if problem:
                    raise ValueError(f"protocol.candidates[{n}]: {problem}")
                if outcome in outcomes:
                    raise ValueError(
                        f"protocol.candidates[{n}]: repeats candidate {outcomes.index(outcome)}"
                    )
                outcomes.append(dict(outcome))
        else:
            outcomes = default_candidates(agenda, params.max_candidates, seed)
        self.candidates = numbered(agenda, outcomes)
        self._ids = [c.id for c in self.candidates]
        self._poll: Poll | None = None

    @property
    def pending(self) -> list[Call]:
        if self.done or self._poll is None:
            return []
        return self._poll.pending

    def weight(self, delegate: str) -> float:
        return self.params.weights.get(delegate, 1.0)

    def start(self) -> list[ChairEvent]:
        calls = [
            Call(
                to=d,
                round=1,
                deadline_round=1,
                allowed=["rank"],
                phase="vote",
                candidates=self.candidates,
                note=f"Rank all {len(self.candidates)} candidates, best first; "
                f"rule: {self.params.rule}.",
            )
            for d in self.participants
        ]
        self._poll = Poll(calls, self.params.strikes)
        return list(calls)

    def receive(self, sender: str, move: Move) -> list[ChairEvent]:
        early = refuse_early(self, sender, move)
        if early is not None:
            return early
        poll = self._poll
        if poll is None:
            return [Rejection(to=sender, reason="the vote has not started", move=move.model_dump(mode="json"))]
        if not poll.owes(sender):
            return [Rejection(to=sender, reason=poll.why_not_owed(sender, "ballot"), move=move.model_dump(mode="json"))]
        if not isinstance(move, Rank):
            reason = f"the vote accepts only a ranking (rank), not {move.kind}"
            return poll.refuse(sender, move, reason, self._absent) + self._close_if_complete()
        problem = ballot_problem(move.ranking, self._ids)
        if problem:
            return poll.refuse(sender, move, problem, self._absent) + self._close_if_complete()
        poll.answer(sender, move)
        return self._close_if_complete()

    _absent = "absent: the vote proceeds without its ballot"

    def timeout(self, delegate: str) -> list[ChairEvent]:
        if self.done or self._poll is None:
            return []
        return self._poll.lapse(delegate, self._absent) + self._close_if_complete()

    def _close_if_complete(self) -> list[ChairEvent]:
        assert self._poll is not None
        if not self._poll.complete:
            return []
        ballots = self._poll.in_order()
        if not ballots:
            self._ended = Ended(agreement=None, reason="no ballot was cast", round=1)
            return [self._ended]
        result = tally(
            self.params.rule,
            self._ids,
            [Ballot(m.ranking, self.weight(d)) for d, m in ballots.items()],
        )
        winner = self.candidates[self._ids.index(result.winner)]
        absent = f"; absent: {', '.join(self._poll.lapsed)}" if self._poll.lapsed else ""
        self._ended = Ended(
            agreement=dict(winner.outcome),
            reason=f"{result.describe()}{absent}",
            round=1,
            chosen=winner.id,
        )
        return [self._ended]
