"""Habermas consensus: draft group statements, rank them, critique the winner, revise, rank.

Source: M. H. Tessler, M. A. Bakker, D. Jarrett, H. Sheahan, M. J. Chadwick, R. Koster,
G. Evans, L. Campbell-Gillingham, T. Collins, D. C. Parkes, M. Botvinick and
C. Summerfield, "AI can help humans find common ground in democratic deliberation",
Science 386, eadq2852 (2024): the Habermas Machine. There a language model drafts
candidate group statements from participants' written opinions, participants rank them,
the Schulze method picks a winner, participants critique it, the model drafts revisions
from the critiques, and a final ranking picks the statement. Here a statement is a
complete outcome of the agenda with a plain-language text; the drafter is pluggable
(`protocols/drafting.py`: `OfflineDrafter` by default, a language-model drafter later);
and the delegates' own ballots replace the paper's reward model that predicted rankings.

Rules, as implemented (steps are the calls' `round`; there are 2 + 2 x `rounds` steps):

1. **Positions** (step 1). Every delegate is called at once with `allowed=["propose"]`,
   `phase="positions"`: each proposes the complete outcome it prefers (a Propose move).
2. **Drafting.** The drafter turns the positions (in session order) into up to
   `params.candidates` statements (default 4), with `random.Random(f"{seed}:habermas:
   drafting")`. The protocol keeps those that are complete outcomes, drops repeats, and
   numbers them s1, s2, ... across the session.
3. **Ranking** (step 2). Every delegate is called with `allowed=["rank"]`,
   `phase="ranking"`, `candidates`: a ballot ranks every statement exactly once.
4. **Winner.** Weighted Schulze (`protocols/social_choice.py`; ballot weights as in
   `voting`: `params.weights`, 1 if unlisted); ties go to the first-listed statement.
5. **Critique** (step 3, 5, ...). Every delegate is called with `allowed=["critique"]`,
   `phase="critique"`, `candidates=[winner]`: a Critique names the winner, says what it
   would change and may suggest a complete amended outcome.
6. **Revision.** The drafter revises the winner from the critiques (in session order)
   into up to `params.candidates` statements; the previous winner always stays among
   them, listed first and under its old id, so it can win again (and wins ties). If no
   new statement results, the winner stands and the session ends.
7. **Final ranking** (step 4, 6, ...) as in 3-4. Steps 5-7 repeat `params.rounds` times
   (default 1); the last ranking's winner is the outcome: `chosen` = its id,
   `agreement` = its outcome, and the reason gives the rule, the margins and the winner
   of each ranking.
8. **Absence and refusals.** Every phase calls every delegate, and the phase closes when
   each has answered or lapsed. A delegate that misses a call (timeout, or `strikes`
   refused moves) is recorded absent for that phase only: no position, ballot or
   critique from it. No position at all, or no ballot in the first ranking, ends the
   session without agreement; no ballot in a later ranking keeps the previous winner.
   Refused, changing nothing: moves after the end, from non-participants, a second
   answer in a phase (duplicate) or one after the call lapsed, a move of a kind the
   phase does not allow, an offer or suggestion that is not a complete outcome, a ballot
   that does not rank every current statement exactly once, a critique of any statement
   but the current winner. A delegate that still owes an answer is called again with the
   reason in `note`.

The protocol never sees mandates: a delegate's ballot puts forbidden statements last,
but `agreement` is the selected statement, not an outcome every delegate accepted.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import Field, field_validator

from constituencies.ids import Id
from protocols.agenda import Agenda
from protocols.base import Protocol, ProtocolParams
from protocols.drafting import Drafter, drafters
from protocols.drafting import drafter as make_drafter
from protocols.events import Call, Candidate, ChairEvent, Ended, Rejection
from protocols.moves import Critique, Move, Propose, Rank
from protocols.social_choice import Ballot, Tally, ballot_problem, tally
from protocols.voting import Poll, Weight, check_weights, refuse_early


class HabermasParams(ProtocolParams):
    candidates: int = Field(
        default=4, ge=2, le=64, description="Statements drafted for each ranking."
    )
    rounds: int = Field(
        default=1, ge=0, le=20, description="Critique-and-revision rounds after the first ranking."
    )
    drafter: str = Field(
        default="offline",
        description="Who drafts the statements: a name from protocols.drafting "
        "(entry-point group accord.drafters).",
    )
    weights: dict[Id, Weight] = Field(
        default_factory=dict,
        description="Ballot weight per delegate (1 if unlisted). The session runner fills "
        "it from constituency sizes unless the session file sets it.",
    )
    strikes: int = Field(
        default=3, ge=1, description="Refused moves from one delegate in a phase before it lapses."
    )

    @field_validator("drafter")
    @classmethod
    def _known_drafter(cls, name: str) -> str:
        known = drafters()
        if name not in known:
            raise ValueError(f"unknown drafter {name!r}; installed: {', '.join(sorted(known))}")
        return name


_WHAT = {"positions": "position", "ranking": "ballot", "critique": "critique"}
_ALLOWED = {"positions": "propose", "ranking": "rank", "critique": "critique"}
_MOVE = {"positions": Propose, "ranking": Rank, "critique": Critique}


class HabermasConsensus(Protocol):
    name = "habermas"
    description = "Drafted group statements, ranked (Schulze), critiqued and revised, ranked again."
    citation = (
        "Tessler et al., AI can help humans find common ground in democratic deliberation, "
        "Science 386, eadq2852 (2024)"
    )
    Params = HabermasParams
    moves = (Propose, Rank, Critique)

    def __init__(
        self,
        participants: Sequence[str],
        agenda: Agenda,
        params: HabermasParams,
        seed: int,
        *,
        drafter: Drafter | None = None,
    ) -> None:
        super().__init__(participants, agenda, params, seed)
        self.params: HabermasParams = params
        check_weights(params.weights, self.participants)
        self.drafter = drafter if drafter is not None else make_drafter(params.drafter)
        self._rng = random.Random(f"{seed}:habermas:drafting")
        self.step = 0
        self.deadline = 2 + 2 * params.rounds
        self.phase = ""
        self.slate: list[Candidate] = []
        self.winner: Candidate | None = None
        self.revisions = 0
        self.history: list[str] = []
        self._won: list[tuple[int, str]] = []  # (step, winner id) of each ranking
        self._absent: list[str] = []  # delegates absent from some phase
        self._numbered = 0
        self._poll: Poll | None = None

    @property
    def pending(self) -> list[Call]:
        if self.done or self._poll is None:
            return []
        return self._poll.pending

    # -- phases ------------------------------------------------------------------------

    def start(self) -> list[ChairEvent]:
        return self._open("positions", note="Propose the outcome you prefer.")

    def _open(self, phase: str, note: str = "") -> list[ChairEvent]:
        self.phase = phase
        self.step += 1
        candidates = None
        if phase == "ranking":
            candidates = self.slate
        elif phase == "critique":
            assert self.winner is not None
            candidates = [self.winner]
        calls = [
            Call(
                to=d,
                round=self.step,
                deadline_round=self.deadline,
                allowed=[_ALLOWED[phase]],
                phase=phase,
                candidates=candidates,
                note=note,
            )
            for d in self.participants
        ]
        self._poll = Poll(calls, self.params.strikes)
        return list(calls)

    def _end(self, winner: Candidate | None, reason: str) -> list[ChairEvent]:
        self._ended = Ended(
            agreement=dict(winner.outcome) if winner else None,
            reason=reason,
            round=max(self.step, 1),
            chosen=winner.id if winner else None,
        )
        return [self._ended]

    def _adopt(self, drafted: list[Candidate], incumbent: Candidate | None) -> tuple[list[Candidate], str]:
        """Number the drafter's statements; keep the incumbent first; drop bad ones and repeats."""
        slate: list[Candidate] = [incumbent] if incumbent else []
        dropped: list[str] = []
        limit = self.params.candidates
        for c in drafted:
            if len(slate) >= limit:
                break
            problem = self.agenda.problem_with(c.outcome)
            if problem:
                dropped.append(problem)
                continue
            if incumbent and c.outcome == incumbent.outcome and c.text == incumbent.text:
                continue
            if any(c.outcome == s.outcome and c.text == s.text for s in slate):
                continue
            self._numbered += 1
            slate.append(Candidate(id=f"s{self._numbered}", outcome=dict(c.outcome), text=c.text))
        note = ""
        if dropped:
            note = f" The drafter's {len(dropped)} incomplete statement(s) were left out: {'; '.join(dropped)}."
        return slate, note

    def _story(self) -> str:
        won = ", ".join(f"{cid} (step {step})" for step, cid in self._won)
        absent = f"; absent from some phase: {', '.join(self._absent)}" if self._absent else ""
        return f"rankings won by {won}{absent}"

    def _ranked(self, result: Tally) -> str:
        return f"step {self.step}: {result.describe()}"

    def _close_if_complete(self) -> list[ChairEvent]:
        poll = self._poll
        assert poll is not None
        if not poll.complete:
            return []
        answers = poll.in_order()
        absent = f" (absent: {', '.join(poll.lapsed)})" if poll.lapsed else ""
        self._absent += [d for d in poll.lapsed if d not in self._absent]
        if self.phase == "positions":
            if not answers:
                return self._end(None, "no delegate stated a position")
            drafted = self.drafter.draft(self.agenda, answers, self.params.candidates, self._rng)
            self.slate, note = self._adopt(drafted, None)
            if not self.slate:
                return self._end(None, f"the drafter produced no usable statement.{note}")
            self.history.append(f"{len(answers)} positions{absent}, {len(self.slate)} statements drafted")
            return self._open("ranking", note=f"Rank all {len(self.slate)} statements, best first.{note}")
        if self.phase == "ranking":
            if not answers:
                if self.winner is None:
                    return self._end(None, "no ballot was cast in the first ranking")
                return self._end(
                    self.winner,
                    f"no ballot was cast in the final ranking; the previous winner {self.winner.id} "
                    f"stands; {self._story()}",
                )
            result = tally(
                "schulze",
                [c.id for c in self.slate],
                [Ballot(m.ranking, self.params.weights.get(d, 1.0)) for d, m in answers.items()],
            )
            self.winner = next(c for c in self.slate if c.id == result.winner)
            self.history.append(self._ranked(result) + absent)
            self._won.append((self.step, self.winner.id))
            if self.revisions >= self.params.rounds:
                final = "final ranking" if self.revisions else "ranking"
                return self._end(
                    self.winner,
                    f"{final}: {result.describe()}; after {self.revisions} revision round(s); "
                    f"{self._story()}",
                )
            return self._open("critique", note=f"Critique statement {self.winner.id}: what would you change?")
        # critique
        assert self.winner is not None
        drafted = self.drafter.revise(self.agenda, self.winner, answers, self.params.candidates, self._rng)
        slate, note = self._adopt(drafted, self.winner)
        self.revisions += 1
        asked = sum(1 for c in answers.values() if c.suggestion is not None)
        self.history.append(f"{len(answers)} critiques{absent}, {asked} with a suggestion")
        if len(slate) < 2:
            return self._end(
                self.winner,
                f"no revision came out of the critiques, so {self.winner.id} stands; "
                f"{self._story()}.{note}",
            )
        self.slate = slate
        return self._open(
            "ranking",
            note=f"Rank all {len(slate)} statements, best first; {self.winner.id} is the previous winner.{note}",
        )

    # -- moves and timeouts ------------------------------------------------------------

    def receive(self, sender: str, move: Move) -> list[ChairEvent]:
        early = refuse_early(self, sender, move)
        if early is not None:
            return early
        poll = self._poll
        if poll is None:
            return [Rejection(to=sender, reason="the session has not started", move=move.model_dump(mode="json"))]
        what = _WHAT[self.phase]
        if not poll.owes(sender):
            return [Rejection(to=sender, reason=poll.why_not_owed(sender, what), move=move.model_dump(mode="json"))]
        problem = self._problem(move)
        if problem:
            return poll.refuse(sender, move, problem, self._consequence()) + self._close_if_complete()
        poll.answer(sender, move)
        return self._close_if_complete()

    def _problem(self, move: Move) -> str | None:
        expected = _MOVE[self.phase]
        if not isinstance(move, expected):
            return f"the {self.phase} phase accepts only {_ALLOWED[self.phase]}, not {move.kind}"
        if isinstance(move, Propose):
            return self.agenda.problem_with(move.offer)
        if isinstance(move, Rank):
            return ballot_problem(move.ranking, [c.id for c in self.slate])
        if isinstance(move, Critique):
            assert self.winner is not None
            if move.candidate != self.winner.id:
                return (
                    f"critiques {move.candidate!r}, but the statement under critique is "
                    f"{self.winner.id!r}"
                )
            if move.suggestion is not None:
                problem = self.agenda.problem_with(move.suggestion)
                if problem:
                    return f"suggestion: {problem}"
        return None

    def _consequence(self) -> str:
        return f"absent from the {self.phase} phase: no {_WHAT[self.phase]} from it"

    def timeout(self, delegate: str) -> list[ChairEvent]:
        if self.done or self._poll is None:
            return []
        return self._poll.lapse(delegate, self._consequence()) + self._close_if_complete()
