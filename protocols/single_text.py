"""Single negotiating text, run by a mediator (the chair).

Sources: H. Raiffa, *The Art and Science of Negotiation*, Harvard University Press 1982
(the single negotiating text, as used at Camp David: a mediator drafts one text and the
parties criticise and amend it, rather than trading offers); run as a mediated
hill-climb over complete contracts as in M. Klein, P. Faratin, H. Sayama and
Y. Bar-Yam, "Negotiating complex contracts", Group Decision and Negotiation 12 (2003):
the mediator proposes a small change to the current contract, every party votes to
accept or reject it, and the change is adopted or dropped.

Rules, as implemented:

1. **The text.** The chair holds the current text, a complete outcome of the agenda:
   `params.start` if given, else one option per issue drawn by the seeded generator
   `random.Random(f"{seed}:single-text:start")`.
2. **Amendment rounds** 1 .. `deadline_rounds`. In each round the chair drafts one
   amendment: the current text with exactly `mutations` issues set to another option,
   drawn by `random.Random(f"{seed}:single-text:amendments")` from the amendments of
   the current text not yet voted on (an amendment is the pair (text, amended text));
   only when every amendment of the current text has been voted on may one be put
   again. It calls every present delegate at once with `allowed=["accept", "reject"]`,
   `phase="amendment"`, `standing_offer` = the amended text and `compare_to` = the
   current text. A vote is an Accept or Reject naming the amended text in full.
3. **Adoption**, once every called delegate has voted or missed the vote:
   - `variant: veto` (default): the amendment replaces the text only if every delegate
     accepts it;
   - `variant: hill-climbing`: it replaces the text if the accepting delegates hold a
     share of the present delegates' weight strictly greater than `majority`
     (default 0.5; weights from `weights`, 1 for anyone unlisted).
   A delegate that misses the vote (timeout, or `strikes` illegal moves) counts as
   rejecting it.
4. **Ratification.** After the vote of round `deadline_rounds` the chair calls every
   present delegate with `phase="ratification"`, `standing_offer` = the final text and
   no `compare_to`. The text is the agreement if every called delegate accepts it;
   otherwise the session ends without agreement (a legitimate outcome). A missed
   ratification vote counts as a rejection.
5. **Absence.** Each missed vote emits an Absence. After `absence_limit` consecutive
   misses a delegate is absent: under `veto` unanimity is impossible and the session
   ends at once without agreement; under `hill-climbing` the session goes on without
   it (majorities are then taken over the present delegates, ratification is by the
   present delegates, and the Ended reason names the absent), unless fewer than two
   delegates remain, which ends the session without agreement.
6. **Illegal moves** are refused with a Rejection and change nothing: a move before
   the start or after the end, from a non-participant or an absent delegate, a second
   vote in one round (duplicate) or one after the delegate's vote was counted as
   missed, a move of a kind other than accept/reject (only the chair drafts text), an
   offer that is not a complete outcome of the agenda, and a vote on any text but the
   one currently put ("votes on a stale text"). A delegate whose call is still open is
   called again with the reason in `note`; its `strikes`-th illegal move in one round
   counts as a missed vote.

Moves carry no round number, so a vote is matched to the open call by the text it
names. The protocol never sees utilities: whether an amendment is an improvement, and
whether the final text is good enough to ratify, is each delegate's own judgement
(`Strategy.judge`), checked against its mandate by the runtime.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from typing import Annotated, Literal

from pydantic import Field

from constituencies.ids import Id
from protocols.agenda import Agenda, Outcome
from protocols.base import Protocol, ProtocolParams
from protocols.events import Absence, Call, ChairEvent, Ended, Rejection
from protocols.moves import Accept, Move, Reject

Variant = Literal["veto", "hill-climbing"]

_ENUMERATE_UP_TO = 4096  # amendments listed outright below this many; sampled above
_SAMPLE_TRIES = 64


class SingleTextParams(ProtocolParams):
    deadline_rounds: int = Field(
        default=30, ge=1, le=100_000, description="Amendment votes before the final ratification."
    )
    variant: Variant = Field(
        default="veto",
        description="veto: an amendment needs every delegate's acceptance; hill-climbing: "
        "a (weighted) majority of the present delegates.",
    )
    majority: float = Field(
        default=0.5,
        ge=0.0,
        lt=1.0,
        description="hill-climbing: an amendment passes when the accepting share of the "
        "present delegates' weight is strictly greater than this.",
    )
    weights: dict[Id, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description="hill-climbing: each delegate's vote weight (1 for anyone unlisted).",
    )
    mutations: int = Field(
        default=1, ge=1, description="How many issues each amendment changes."
    )
    start: dict[Id, Id] | None = Field(
        default=None,
        description="The opening text, a complete outcome; a seeded random outcome if unset.",
    )
    absence_limit: int = Field(
        default=3,
        ge=1,
        description="Consecutive missed votes after which a delegate counts as absent.",
    )
    strikes: int = Field(
        default=3, ge=1, description="Illegal moves in one round before the vote counts as missed."
    )


def _key(outcome: Outcome, agenda: Agenda) -> tuple[str, ...]:
    return tuple(outcome[i.id] for i in agenda.issues)


class SingleNegotiationText(Protocol):
    name = "single-text"
    description = (
        "A mediator amends one text issue by issue; amendments pass by veto or majority; "
        "the final text is ratified by all."
    )
    citation = (
        "Raiffa, The Art and Science of Negotiation, 1982; Klein, Faratin, Sayama and "
        "Bar-Yam, Negotiating complex contracts, Group Decision and Negotiation 12, 2003"
    )
    Params = SingleTextParams
    moves = (Accept, Reject)

    def __init__(
        self, participants: Sequence[str], agenda: Agenda, params: SingleTextParams, seed: int
    ) -> None:
        super().__init__(participants, agenda, params, seed)
        self.params: SingleTextParams = params
        if params.mutations > len(agenda.issues):
            raise ValueError(
                f"protocol.mutations: {params.mutations} exceeds the {len(agenda.issues)} "
                "issue(s) on the agenda"
            )
        unknown = sorted(set(params.weights) - set(self.participants))
        if unknown:
            raise ValueError(f"protocol.weights: not a participant: {', '.join(unknown)}")
        if params.start is not None:
            problem = agenda.problem_with(params.start)
            if problem:
                raise ValueError(f"protocol.start: {problem}")
            self.text: Outcome = {i.id: params.start[i.id] for i in agenda.issues}
        else:
            pick = random.Random(f"{seed}:single-text:start")
            self.text = {i.id: pick.choice(i.options).id for i in agenda.issues}
        self._rng = random.Random(f"{seed}:single-text:amendments")
        self.round = 1
        self.phase: Literal["idle", "amendment", "ratification"] = "idle"
        self.amended: Outcome | None = None
        self.adopted_rounds: list[int] = []
        self.absent: list[str] = []
        self._calls: dict[str, Call] = {}
        self._votes: dict[str, Literal["accept", "reject", "missed"]] = {}
        self._strikes: dict[str, int] = {}
        self._missed: dict[str, int] = dict.fromkeys(self.participants, 0)
        self._voted: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()

    # -- views -------------------------------------------------------------------------

    @property
    def present(self) -> list[str]:
        return [p for p in self.participants if p not in self.absent]

    @property
    def pending(self) -> list[Call]:
        return [self._calls[p] for p in self.participants if p in self._calls]

    def awaits(self, delegate: str) -> bool:
        return delegate in self._calls

    def weight(self, delegate: str) -> float:
        if self.params.variant == "veto":
            return 1.0
        return self.params.weights.get(delegate, 1.0)

    # -- drafting ----------------------------------------------------------------------

    def _amendments(self, text: Outcome) -> Iterator[Outcome]:
        """Every amendment of `text`, in a fixed order (issues and options as listed)."""
        issues = self.agenda.issues
        for combo in itertools.combinations(range(len(issues)), self.params.mutations):
            alternatives = [
                [o.id for o in issues[i].options if o.id != text[issues[i].id]] for i in combo
            ]
            for choice in itertools.product(*alternatives):
                amended = dict(text)
                for i, option in zip(combo, choice, strict=True):
                    amended[issues[i].id] = option
                yield amended

    def _amendment_count(self) -> int:
        """How many amendments a text has: the k-th elementary symmetric polynomial."""
        k = self.params.mutations
        counts = [1] + [0] * k
        for issue in self.agenda.issues:
            alternatives = len(issue.options) - 1
            for j in range(k, 0, -1):
                counts[j] += counts[j - 1] * alternatives
        return counts[k]

    def _random_amendment(self, text: Outcome) -> Outcome:
        issues = self.agenda.issues
        amended = dict(text)
        for i in sorted(self._rng.sample(range(len(issues)), self.params.mutations)):
            issue = issues[i]
            amended[issue.id] = self._rng.choice([o.id for o in issue.options if o.id != text[issue.id]])
        return amended

    def _fresh(self, text: Outcome, amended: Outcome) -> bool:
        return (_key(text, self.agenda), _key(amended, self.agenda)) not in self._voted

    def _draft(self) -> Outcome:
        """The next amendment: one of the current text's not yet voted on, seeded."""
        text = self.text
        if self._amendment_count() <= _ENUMERATE_UP_TO:
            every = list(self._amendments(text))
            fresh = [a for a in every if self._fresh(text, a)]
            return self._rng.choice(fresh or every)
        for _ in range(_SAMPLE_TRIES):
            amended = self._random_amendment(text)
            if self._fresh(text, amended):
                return amended
        for amended in self._amendments(text):
            if self._fresh(text, amended):
                return amended
        return self._random_amendment(text)

    # -- calls -------------------------------------------------------------------------

    def start(self) -> list[ChairEvent]:
        if self.phase != "idle" or self.done:
            return []
        return self._open_amendment()

    def _open_amendment(self) -> list[ChairEvent]:
        self.phase = "amendment"
        self.amended = self._draft()
        changed = [i.id for i in self.agenda.issues if self.amended[i.id] != self.text[i.id]]
        what = "; ".join(f"{i}: {self.text[i]} -> {self.amended[i]}" for i in changed)
        rule = (
            "it passes only if every delegate accepts"
            if self.params.variant == "veto"
            else f"it passes if more than {self.params.majority:g} of the present weight accepts"
        )
        return self._call_all(f"amendment {self.round} of {self.params.deadline_rounds} ({what}); {rule}")

    def _open_ratification(self) -> list[ChairEvent]:
        self.phase = "ratification"
        self.amended = None
        return self._call_all(
            "final ratification: accept the text as the agreement, or reject it and end "
            "without agreement"
        )

    def _call_all(self, note: str) -> list[ChairEvent]:
        self._votes = {}
        self._strikes = {}
        self._calls = {}
        for delegate in self.present:
            self._calls[delegate] = self._call(delegate, note)
        return list(self.pending)

    def _call(self, delegate: str, note: str) -> Call:
        amendment = self.phase == "amendment"
        return Call(
            to=delegate,
            round=self.round,
            deadline_round=self.params.deadline_rounds,
            allowed=["accept", "reject"],
            phase=self.phase,
            standing_offer=dict(self.amended if amendment and self.amended else self.text),
            compare_to=dict(self.text) if amendment else None,
            note=note,
        )

    @property
    def _put(self) -> Outcome:
        """The text the open vote is about."""
        return self.amended if self.phase == "amendment" and self.amended is not None else self.text

    # -- moves -------------------------------------------------------------------------

    def receive(self, sender: str, move: Move) -> list[ChairEvent]:
        dumped = move.model_dump(mode="json")
        if self.done:
            return [Rejection(to=sender, reason="the session has ended", move=dumped)]
        if sender not in self._missed:
            return [Rejection(to=sender, reason=f"{sender!r} is not a participant", move=dumped)]
        if self.phase == "idle":
            return [Rejection(to=sender, reason="the session has not started", move=dumped)]
        if sender in self.absent:
            return [
                Rejection(
                    to=sender,
                    reason=f"{sender} is absent (missed {self.params.absence_limit} votes in a row) "
                    "and no longer votes",
                    move=dumped,
                )
            ]
        call = self._calls.get(sender)
        if call is None:
            if self._votes.get(sender) == "missed":
                why = (
                    f"too late: your vote in round {self.round} was already counted as a "
                    "rejection (missed)"
                )
            else:
                why = f"duplicate vote: you already voted in round {self.round} ({self.phase})"
            return [Rejection(to=sender, reason=why, move=dumped)]
        if not isinstance(move, (Accept, Reject)):
            return self._illegal(
                sender,
                move,
                f"a {move.kind} is not allowed in the {self.phase} vote (allowed: accept, reject); "
                "only the chair drafts the text",
            )
        problem = self.agenda.problem_with(move.offer)
        if problem:
            return self._illegal(sender, move, problem)
        if dict(move.offer) != self._put:
            return self._illegal(
                sender,
                move,
                f"votes on a stale text: the text put to the {self.phase} vote in round "
                f"{self.round} is {self.agenda.describe(self._put)}",
            )
        del self._calls[sender]
        self._missed[sender] = 0
        self._votes[sender] = "accept" if isinstance(move, Accept) else "reject"
        return self._maybe_resolve()

    def _illegal(self, sender: str, move: Move, reason: str) -> list[ChairEvent]:
        rejection = Rejection(to=sender, reason=reason, move=move.model_dump(mode="json"))
        self._strikes[sender] = self._strikes.get(sender, 0) + 1
        if self._strikes[sender] >= self.params.strikes:
            return [rejection, *self._miss(sender, f"{self._strikes[sender]} illegal moves")]
        call = self._calls[sender].model_copy(
            update={"note": f"your last move was refused: {reason}"}
        )
        self._calls[sender] = call
        return [rejection, call]

    def timeout(self, delegate: str) -> list[ChairEvent]:
        if self.done or delegate not in self._calls:
            return []
        return self._miss(delegate, "no answer before the deadline")

    def _miss(self, delegate: str, why: str) -> list[ChairEvent]:
        self._calls.pop(delegate, None)
        self._votes[delegate] = "missed"
        self._missed[delegate] += 1
        if self._missed[delegate] < self.params.absence_limit:
            absence = Absence(
                delegate=delegate,
                round=self.round,
                consequence=f"{self.phase} vote counted as a rejection ({why})",
            )
            return [absence, *self._maybe_resolve()]
        limit = f"{self.params.absence_limit} missed votes in a row"
        if self.params.variant == "veto":
            absence = Absence(
                delegate=delegate,
                round=self.round,
                consequence=f"absent ({limit}): under the veto rule nothing can pass, the session ends",
            )
            return [absence, *self._end(None, f"{delegate} is absent")]
        self.absent.append(delegate)
        if len(self.present) < 2:
            absence = Absence(
                delegate=delegate,
                round=self.round,
                consequence=f"absent ({limit}): fewer than two delegates remain, the session ends",
            )
            return [absence, *self._end(None, f"absent: {', '.join(self.absent)}; fewer than two delegates remain")]
        if self.phase == "amendment":
            # Majorities are over the present: the absent delegate's missed vote drops out.
            del self._votes[delegate]
            consequence = f"absent ({limit}): the session goes on without it"
        else:
            consequence = f"absent ({limit}): its ratification vote counts as a rejection"
        absence = Absence(delegate=delegate, round=self.round, consequence=consequence)
        return [absence, *self._maybe_resolve()]

    # -- resolution --------------------------------------------------------------------

    def _maybe_resolve(self) -> list[ChairEvent]:
        if self._calls:
            return []
        if self.phase == "amendment":
            return self._resolve_amendment()
        return self._resolve_ratification()

    def _resolve_amendment(self) -> list[ChairEvent]:
        assert self.amended is not None
        accepting = [d for d, v in self._votes.items() if v == "accept"]
        if self.params.variant == "veto":
            passed = len(accepting) == len(self._votes)
        else:
            total = sum(self.weight(d) for d in self._votes)
            passed = total > 0 and sum(self.weight(d) for d in accepting) / total > self.params.majority
        self._voted.add((_key(self.text, self.agenda), _key(self.amended, self.agenda)))
        if passed:
            self.text = dict(self.amended)
            self.adopted_rounds.append(self.round)
        if self.round >= self.params.deadline_rounds:
            return self._open_ratification()
        self.round += 1
        return self._open_amendment()

    def _resolve_ratification(self) -> list[ChairEvent]:
        voters = [p for p in self.participants if p in self._votes]
        accepting = [d for d in voters if self._votes[d] == "accept"]
        absent = f"; absent: {', '.join(self.absent)}" if self.absent else ""
        if len(accepting) == len(voters):
            who = "every present delegate" if self.absent else "every delegate"
            return self._end(dict(self.text), f"the final text was ratified by {who}{absent}", accepting)
        refused = [
            d + (" (missed)" if self._votes[d] == "missed" else "") for d in voters if d not in accepting
        ]
        return self._end(None, f"the final text was not ratified: rejected by {', '.join(refused)}{absent}")

    def _end(
        self, agreement: Outcome | None, reason: str, accepted_by: list[str] | None = None
    ) -> list[ChairEvent]:
        self._calls = {}
        self._ended = Ended(
            agreement=agreement, reason=reason, round=self.round, accepted_by=accepted_by or []
        )
        return [self._ended]
