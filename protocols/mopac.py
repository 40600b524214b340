"""MOPAC: Multiple Offers Partial Consensus, after GeniusWeb.

Source: W. Pasman, R. Aydoğan, C. M. Jonker et al., GeniusWeb (TU Delft), the MOPAC
session protocol (documentation: https://tracinsy.ewi.tudelft.nl/pubtrac/GeniusWeb, "MOPAC";
code: geniusweb.protocol.session.mopac, geniusweb.voting.CollectedVotes and the
LargestAgreement / LargestAgreementsLoop evaluators). Parties put offers on a table, vote
on them conditionally on the size of the coalition, and coalitions that agree leave with
a partial agreement while the others continue.

Rules, as implemented. Each round has these phases; every remaining delegate is called at
once in each (`Call.round` = the round, `deadline_round` = `params.deadline_rounds`):

1. **Offer phase** (`phase="offer"`, `allowed=["propose"]`): each delegate puts a complete
   outcome on the table. The table lists each distinct offer once, in session order of
   the delegate who offered it (`TableOffer.by` is the first of them); that order is what
   "earliest on the table" means below (arrival order is never used, so that the outcome
   does not depend on timing).
2. **Voting phase** (`phase="voting"`, `allowed=["votes"]`, `table`): each delegate
   sends one Votes move: conditional votes (offer, min_power, max_power) on offers on the
   table, possibly none. A vote means: count me in on this offer if the coalition that
   accepts it has between min_power and max_power members, me included (every delegate
   has power 1 here, where GeniusWeb allows integer powers).
3. **Opt-in phase** (if `params.opt_in`, default on; `phase="opt-in"`): every delegate
   sees the table and, in `note`, who voted for what, and sends Votes again; these must
   keep every vote it cast in the voting phase, each with bounds at least as wide
   (min_power no higher, max_power no lower), and may add votes: opt-in can only extend.
   Simplification: GeniusWeb sends the others' votes as a structured OptIn message;
   Accord's Call has no field for them, so they are summarised in `note`. A delegate that
   misses the opt-in call keeps its voting-phase votes.
4. **Coalitions.** For each offer on the table, its largest consistent coalition is the
   largest set S of its voters, |S| >= 2, with min_power <= |S| <= max_power for every
   member (exact search over sizes from large to small; among voters that fit, those first
   in session order). `evaluator: largest-agreement` (default, GeniusWeb's
   LargestAgreement): the largest coalition over all offers, ties to the offer earliest
   on the table, reaches a partial agreement. `largest-agreements-loop`: repeat among the
   voters not yet in a coalition (GeniusWeb's LargestAgreementsLoop). Members of a
   coalition leave the negotiation with its offer as their agreement.
5. **Next round** while at least two delegates remain and the round is below
   `deadline_rounds`; otherwise the session ends. `partial` lists the partial agreements
   in the order they formed; `agreement` is the outcome only if one coalition holds every
   delegate, else None.
6. **Absence and refusals.** A delegate that misses a call (timeout, or `strikes` refused
   moves) has no offer or no votes that phase; after `absence_limit` consecutive missed
   calls it leaves without agreement (GeniusWeb removes a party that fails to act). Refused,
   changing nothing: moves after the end, from non-participants or delegates that have
   left, a second move in a phase (duplicate) or one after the call lapsed, a move of the
   wrong kind for the phase, an offer that is not a complete outcome, votes on an offer
   not on the table, two votes on one offer, min_power above max_power, and opt-in votes
   that drop or narrow an earlier vote. A delegate that still owes a move is called again
   with the reason in `note`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field

from protocols.agenda import Agenda
from protocols.base import Protocol, ProtocolParams
from protocols.events import Call, ChairEvent, Ended, PartialAgreement, Rejection, TableOffer
from protocols.moves import Move, Propose, Vote, Votes
from protocols.voting import Poll, refuse_early


class MopacParams(ProtocolParams):
    deadline_rounds: int = Field(default=10, ge=1, le=100_000, description="Rounds before the session ends.")
    opt_in: bool = Field(
        default=True, description="Hold the opt-in phase, in which delegates may extend their votes."
    )
    evaluator: Literal["largest-agreement", "largest-agreements-loop"] = Field(
        default="largest-agreement",
        description="One partial agreement per round (the largest coalition), or repeat "
        "among the voters left (GeniusWeb's LargestAgreementsLoop).",
    )
    absence_limit: int = Field(
        default=3, ge=1, description="Consecutive missed calls after which a delegate leaves."
    )
    strikes: int = Field(
        default=3, ge=1, description="Refused moves from one delegate in a phase before it lapses."
    )


def largest_coalition(voters: Sequence[tuple[str, Vote]]) -> list[str]:
    """The largest set of `voters` (at least 2) whose conditions its size satisfies.

    `voters` are (delegate, vote) for one offer, in session order; among equally large
    sets the one of the first-listed voters is returned. Empty if there is none.
    """
    for size in range(len(voters), 1, -1):
        fits = [who for who, v in voters if v.min_power <= size <= v.max_power]
        if len(fits) >= size:
            return fits[:size]
    return []


def form_coalitions(
    table: Sequence[TableOffer],
    votes: Mapping[str, Sequence[Vote]],
    order: Sequence[str],
    loop: bool = False,
) -> list[PartialAgreement]:
    """Partial agreements from one round's votes: the largest coalition over the offers
    (ties: earliest on the table); with `loop`, again among the voters left."""
    remaining = [d for d in order if d in votes]
    found: list[PartialAgreement] = []
    while True:
        best: tuple[TableOffer, list[str]] | None = None
        for entry in table:
            voters = [
                (d, v) for d in remaining for v in votes[d] if v.offer == entry.offer
            ]
            coalition = largest_coalition(voters)
            if coalition and (best is None or len(coalition) > len(best[1])):
                best = (entry, coalition)
        if best is None:
            return found
        found.append(PartialAgreement(parties=best[1], outcome=dict(best[0].offer)))
        remaining = [d for d in remaining if d not in best[1]]
        if not loop:
            return found


class Mopac(Protocol):
    name = "mopac"
    description = "Offers on a table, conditional votes, opt-in; the largest coalitions agree and leave."
    citation = (
        "GeniusWeb (TU Delft), MOPAC: Multiple Offers Partial Consensus protocol, "
        "https://tracinsy.ewi.tudelft.nl/pubtrac/GeniusWeb"
    )
    Params = MopacParams
    moves = (Propose, Votes)

    def __init__(
        self, participants: Sequence[str], agenda: Agenda, params: MopacParams, seed: int
    ) -> None:
        super().__init__(participants, agenda, params, seed)
        self.params: MopacParams = params
        self.round = 0
        self.phase = ""
        self.active = list(self.participants)
        self.left: list[str] = []  # gone for absence, without agreement
        self.table: list[TableOffer] = []
        self.votes: dict[str, list[Vote]] = {}
        self.partial: list[PartialAgreement] = []
        self._missed = dict.fromkeys(self.participants, 0)
        self._poll: Poll | None = None

    @property
    def pending(self) -> list[Call]:
        if self.done or self._poll is None:
            return []
        return self._poll.pending

    # -- phases ------------------------------------------------------------------------

    def start(self) -> list[ChairEvent]:
        return self._begin_round()

    def _begin_round(self) -> list[ChairEvent]:
        self.round += 1
        self.table = []
        self.votes = {}
        return self._open("offer", "Put your offer on the table.")

    def _open(self, phase: str, note: str) -> list[ChairEvent]:
        self.phase = phase
        calls = [
            Call(
                to=d,
                round=self.round,
                deadline_round=self.params.deadline_rounds,
                allowed=["propose"] if phase == "offer" else ["votes"],
                phase=phase,
                table=None if phase == "offer" else list(self.table),
                note=note,
            )
            for d in self.active
        ]
        self._poll = Poll(calls, self.params.strikes)
        return list(calls)

    def _vote_summary(self) -> str:
        lines = []
        for k, entry in enumerate(self.table, start=1):
            voters = [
                f"{d}[{v.min_power}..{v.max_power}]" if v.max_power < 1_000_000 else f"{d}[{v.min_power}+]"
                for d in self.active
                for v in self.votes.get(d, [])
                if v.offer == entry.offer
            ]
            lines.append(f"#{k} {self.agenda.describe(entry.offer)}: {', '.join(voters) or 'no votes'}")
        return "Votes so far (you may add votes or widen their bounds): " + " | ".join(lines)

    def _close_if_complete(self) -> list[ChairEvent]:
        poll = self._poll
        assert poll is not None
        if not poll.complete:
            return []
        for d in poll.order:
            self._missed[d] = self._missed[d] + 1 if d in poll.lapsed else 0
        gone = [d for d in poll.order if self._missed[d] >= self.params.absence_limit]
        if gone:
            self.left.extend(gone)
            self.active = [d for d in self.active if d not in gone]
        answers = poll.in_order()
        if self.phase == "offer":
            for d in self.active:
                if d in answers and all(t.offer != answers[d].offer for t in self.table):
                    self.table.append(TableOffer(by=d, offer=dict(answers[d].offer)))
            if not self.table or len(self.active) < 2:
                return self._end_round([])
            return self._open("voting", f"Vote on the {len(self.table)} offer(s) on the table.")
        if self.phase == "voting":
            self.votes = {d: list(answers[d].votes) if d in answers else [] for d in self.active}
            if self.params.opt_in and len(self.active) >= 2:
                return self._open("opt-in", self._vote_summary())
        else:  # opt-in: answers replace the voting-phase votes; the others' votes stand
            for d in self.active:
                if d in answers:
                    self.votes[d] = list(answers[d].votes)
        self.votes = {d: v for d, v in self.votes.items() if d in self.active}
        found = form_coalitions(
            self.table, self.votes, self.active, loop=self.params.evaluator == "largest-agreements-loop"
        )
        return self._end_round(found)

    def _end_round(self, found: list[PartialAgreement]) -> list[ChairEvent]:
        self.partial.extend(found)
        members = {d for a in found for d in a.parties}
        self.active = [d for d in self.active if d not in members]
        if len(self.active) >= 2 and self.round < self.params.deadline_rounds:
            return self._begin_round()
        why = "fewer than two delegates remain" if len(self.active) < 2 else "deadline reached"
        return self._end(why)

    def _end(self, why: str) -> list[ChairEvent]:
        self._poll = None
        everyone = set(self.participants)
        full = next((a for a in self.partial if set(a.parties) == everyone), None)
        if full is not None:
            reason = f"all {len(everyone)} delegates agreed on {self.agenda.describe(full.outcome)}"
        elif self.partial:
            said = "; ".join(
                f"{', '.join(a.parties)} on {self.agenda.describe(a.outcome)}" for a in self.partial
            )
            agreed = {d for a in self.partial for d in a.parties}
            rest = [d for d in self.participants if d not in agreed]
            reason = f"{len(self.partial)} partial agreement(s): {said}"
            if rest:
                reason += f"; without agreement: {', '.join(rest)}"
        else:
            reason = "no coalition formed"
        if self.left:
            reason += f"; left for absence: {', '.join(self.left)}"
        self._ended = Ended(
            agreement=dict(full.outcome) if full else None,
            reason=f"{reason} ({why}, round {self.round})",
            round=self.round,
            accepted_by=list(full.parties) if full else [],
            partial=list(self.partial),
        )
        return [self._ended]

    # -- moves and timeouts ------------------------------------------------------------

    def receive(self, sender: str, move: Move) -> list[ChairEvent]:
        early = refuse_early(self, sender, move)
        if early is not None:
            return early
        poll = self._poll
        if poll is None:
            return [Rejection(to=sender, reason="the session has not started", move=move.model_dump(mode="json"))]
        if sender not in self.active:
            agreed = any(sender in a.parties for a in self.partial)
            why = "has reached a partial agreement" if agreed else "has left the negotiation"
            return [Rejection(to=sender, reason=f"{sender} {why}", move=move.model_dump(mode="json"))]
        what = "offer" if self.phase == "offer" else "votes"
        if not poll.owes(sender):
            return [Rejection(to=sender, reason=poll.why_not_owed(sender, what), move=move.model_dump(mode="json"))]
        problem = self._problem(sender, move)
        if problem:
            return poll.refuse(sender, move, problem, self._consequence(sender)) + self._close_if_complete()
        poll.answer(sender, move)
        return self._close_if_complete()

    def _problem(self, sender: str, move: Move) -> str | None:
        if self.phase == "offer":
            if not isinstance(move, Propose):
                return f"the offer phase accepts only propose, not {move.kind}"
            return self.agenda.problem_with(move.offer)
        if not isinstance(move, Votes):
            return f"the {self.phase} phase accepts only votes, not {move.kind}"
        seen: list[dict[str, str]] = []
        for vote in move.votes:
            said = self.agenda.describe(vote.offer) if self.agenda.problem_with(vote.offer) is None else str(vote.offer)
            if all(t.offer != vote.offer for t in self.table):
                return f"votes on an offer not on the table: {said}"
            if vote.offer in seen:
                return f"votes twice on the same offer: {said}"
            seen.append(vote.offer)
            if vote.min_power > vote.max_power:
                return f"min_power {vote.min_power} is above max_power {vote.max_power} for {said}"
        if self.phase == "opt-in":
            for old in self.votes.get(sender, []):
                new = next((v for v in move.votes if v.offer == old.offer), None)
                if new is None or new.min_power > old.min_power or new.max_power < old.max_power:
                    return (
                        f"drops or narrows its vote on {self.agenda.describe(old.offer)} "
                        "(opt-in may only add votes or widen their bounds)"
                    )
        return None

    def _consequence(self, delegate: str) -> str:
        if self._missed[delegate] + 1 >= self.params.absence_limit:
            return f"missed {self._missed[delegate] + 1} calls in a row: leaves the negotiation without agreement"
        return {
            "offer": "no offer from it this round",
            "voting": "no votes from it this round",
            "opt-in": "its voting-phase votes stand",
        }[self.phase]

    def timeout(self, delegate: str) -> list[ChairEvent]:
        if self.done or self._poll is None:
            return []
        return self._poll.lapse(delegate, self._consequence(delegate)) + self._close_if_complete()
