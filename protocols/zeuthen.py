"""The monotonic concession protocol (multilateral), in which Zeuthen's strategy is played.

Sources: F. Zeuthen, *Problems of Monopoly and Economic Warfare*, Routledge 1930 (the
concession rule: the party less willing to risk conflict concedes); J. S. Rosenschein
and G. Zlotkin, *Rules of Encounter*, MIT Press 1994 (the monotonic concession
protocol: simultaneous proposals, agreement when one proposal is at least as good for
the other as its own, otherwise each party stands still or concedes, and conflict when
nobody concedes); U. Endriss, "Monotonic concession protocols for multilateral
negotiation", AAMAS 2006 (the multilateral form: agreement when some delegate's
proposal is at least as good, for every other delegate, as that delegate's own).

Rules, as implemented. Each round r = 1 .. `deadline_rounds` has two phases.

1. **Proposals.** Every delegate is called at once (`allowed=["propose"]`,
   `phase="propose"`, `table` = every delegate's offer as it stood at the end of round
   r-1; no table in round 1). Each answers with a Propose of a complete outcome; offers
   are sealed until all are in (the calls carry only the previous round's table).
2. **Stand-still.** From round 2, a delegate whose offer repeats its previous one
   (or who missed the proposal, so that its previous offer stands) stands still. If
   every delegate stands still in `standstill_rounds` consecutive rounds (default 1,
   the rule of Rosenschein and Zlotkin) the session ends in conflict, without
   agreement. A round in which everyone stands still but the limit is not reached
   skips the judgements (the table is unchanged) and goes to the next round.
3. **Judgements.** Each delegate j is then asked, one offer at a time, about every
   distinct offer of the others that differs from its own, in the order of the
   participants who made them: `allowed=["accept", "reject"]`, `phase="judge"`,
   `standing_offer` = the offer asked about, `offered_by` = who made it,
   `compare_to` = j's own current offer (the rule: accept what is at least as good
   for you as your own proposal), `candidates` = every other delegate's offer this
   round. Delegates are asked in parallel; each has at most one open question. A
   delegate's own offer counts as accepted by it without asking. Every question is
   put even when someone has already refused that offer, so what is recorded does not
   depend on the order in which answers arrive.
4. **Agreement.** When every question is answered or missed, an offer is agreed if
   every delegate proposed or accepted it. If several distinct offers are agreed, the
   seeded generator `random.Random(f"{seed}:zeuthen")` picks one (the coin flip of
   Rosenschein and Zlotkin). Otherwise, at round `deadline_rounds` the session ends
   without agreement, and before it the next round begins.
5. **Absence.** A missed proposal (timeout, or `strikes` illegal moves in one call)
   leaves the delegate's previous offer standing (in round 1 it has no offer); a
   missed question counts as a rejection, and so do that delegate's remaining
   questions in the round. Each miss emits an Absence; after `absence_limit`
   consecutive misses the delegate is absent, unanimity is impossible, and the session
   ends without agreement (as in stacked alternating offers).
6. **Illegal moves** are refused with a Rejection and change nothing: a move before
   the start or after the end, from a non-participant, a move of a kind the open call
   does not allow (out of phase), a second proposal or a second answer about the same
   offer in one round (duplicate), a move from a delegate with no open call (out of
   turn or too late), an offer that is not a complete outcome of the agenda, and an
   accept or reject of an offer other than the one asked about (stale). A delegate
   whose call is open is called again with the reason in `note`.

What the protocol enforces and what it trusts. It cannot see utilities, so it enforces
only the observable part of monotonic concession: sealed simultaneous offers, conflict
when no offer changes, and agreement only on an offer that every other delegate has
explicitly accepted. It trusts, and the signed log lets anyone audit against the
value models, that a changed offer is a concession (at least as good for every other
delegate as the one it replaces; Endriss discusses weaker multilateral criteria) rather
than a lateral or backward move; that an accept means "at least as good for us as our
own offer"; and Zeuthen's risk comparison (the delegate with least to lose from
conflict holds, the others concede), which is the delegates' strategy: it needs their
private utilities and their conflict (reservation) utilities, neither of which the
chair has.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from protocols.agenda import Agenda, Outcome
from protocols.base import Protocol, ProtocolParams
from protocols.events import Absence, Call, Candidate, ChairEvent, Ended, Rejection, TableOffer
from protocols.moves import Accept, Move, Propose, Reject


class ZeuthenParams(ProtocolParams):
    deadline_rounds: int = Field(default=30, ge=1, le=100_000, description="Rounds before the session ends.")
    standstill_rounds: int = Field(
        default=1,
        ge=1,
        description="Consecutive rounds in which no delegate changes its offer before the "
        "session ends in conflict (1: the monotonic concession protocol's own rule).",
    )
    absence_limit: int = Field(
        default=3,
        ge=1,
        description="Consecutive missed calls after which a delegate counts as absent; "
        "unanimity is then impossible and the session ends without agreement.",
    )
    strikes: int = Field(
        default=3, ge=1, description="Illegal moves in one call before the call counts as missed."
    )


def _key(outcome: Outcome, agenda: Agenda) -> tuple[str, ...]:
    return tuple(outcome[i.id] for i in agenda.issues)


class MonotonicConcession(Protocol):
    name = "zeuthen"
    description = (
        "Monotonic concession: simultaneous offers each round; agreed when one is accepted "
        "by all others; conflict when nobody concedes."
    )
    citation = (
        "Zeuthen, Problems of Monopoly and Economic Warfare, 1930; Rosenschein and Zlotkin, "
        "Rules of Encounter, 1994; Endriss, Monotonic concession protocols for multilateral "
        "negotiation, AAMAS 2006"
    )
    Params = ZeuthenParams
    moves = (Propose, Accept, Reject)

    def __init__(
        self, participants: Sequence[str], agenda: Agenda, params: ZeuthenParams, seed: int
    ) -> None:
        super().__init__(participants, agenda, params, seed)
        self.params: ZeuthenParams = params
        self._rng = random.Random(f"{seed}:zeuthen")
        self.round = 1
        self.phase: Literal["idle", "propose", "judge"] = "idle"
        self.offers: dict[str, Outcome] = {}
        self.previous: dict[str, Outcome] = {}
        self.standstill = 0
        self._calls: dict[str, Call] = {}
        self._proposed: dict[str, bool] = {}  # this round: True proposed, False missed
        self._questions: dict[str, list[tuple[str, Outcome]]] = {}  # remaining, after the open one
        self._verdicts: dict[tuple[str, tuple[str, ...]], Literal["accept", "reject", "missed"]] = {}
        self._strikes: dict[str, int] = {}
        self._missed: dict[str, int] = dict.fromkeys(self.participants, 0)

    @property
    def pending(self) -> list[Call]:
        return [self._calls[p] for p in self.participants if p in self._calls]

    def verdict(self, delegate: str, offer: Outcome) -> str | None:
        """How `delegate` answered about `offer` this round (accept, reject, missed)."""
        return self._verdicts.get((delegate, _key(offer, self.agenda)))

    # -- proposals ---------------------------------------------------------------------

    def start(self) -> list[ChairEvent]:
        if self.phase != "idle" or self.done:
            return []
        return self._open_proposals()

    def _open_proposals(self) -> list[ChairEvent]:
        self.phase = "propose"
        self._proposed = {}
        self._verdicts = {}
        self._strikes = {}
        table = (
            [TableOffer(by=p, offer=dict(self.previous[p])) for p in self.participants if p in self.previous]
            if self.round > 1
            else None
        )
        note = (
            f"round {self.round} of {self.params.deadline_rounds}: propose an outcome, sealed "
            "until everyone has; repeat your last offer to stand still (if nobody moves, "
            "the negotiation ends in conflict), or concede"
        )
        self._calls = {
            p: Call(
                to=p,
                round=self.round,
                deadline_round=self.params.deadline_rounds,
                allowed=["propose"],
                phase="propose",
                table=table,
                note=note,
            )
            for p in self.participants
        }
        return list(self.pending)

    def _after_proposals(self) -> list[ChairEvent]:
        if self.round > 1 and all(self.offers.get(p) == self.previous.get(p) for p in self.participants):
            self.standstill += 1
            if self.standstill >= self.params.standstill_rounds:
                return self._end(
                    None,
                    f"conflict: no delegate conceded in round {self.round} "
                    "(every offer repeats the last)",
                )
            return self._next_round()
        self.standstill = 0
        return self._open_judgements()

    # -- judgements --------------------------------------------------------------------

    def _distinct_offers(self) -> list[tuple[str, Outcome]]:
        """Each distinct offer once, with the first participant who made it."""
        seen: set[tuple[str, ...]] = set()
        distinct = []
        for p in self.participants:
            if p in self.offers:
                key = _key(self.offers[p], self.agenda)
                if key not in seen:
                    seen.add(key)
                    distinct.append((p, self.offers[p]))
        return distinct

    def _open_judgements(self) -> list[ChairEvent]:
        self.phase = "judge"
        self._calls = {}
        self._questions = {}
        distinct = self._distinct_offers()
        for j in self.participants:
            questions = [(by, offer) for by, offer in distinct if offer != self.offers.get(j)]
            if questions:
                self._questions[j] = questions
                self._ask_next(j)
        if not self._calls:  # everyone proposed the same outcome
            return self._after_judgements()
        return list(self.pending)

    def _ask_next(self, delegate: str) -> Call | None:
        questions = self._questions.get(delegate) or []
        if not questions:
            self._questions.pop(delegate, None)
            self._calls.pop(delegate, None)
            return None
        by, offer = questions.pop(0)
        self._strikes.pop(delegate, None)
        candidates = [
            Candidate(id=p, outcome=dict(self.offers[p]))
            for p in self.participants
            if p != delegate and p in self.offers
        ]
        own = self.offers.get(delegate)
        makers = [p for p in self.participants if self.offers.get(p) == offer]
        call = Call(
            to=delegate,
            round=self.round,
            deadline_round=self.params.deadline_rounds,
            allowed=["accept", "reject"],
            phase="judge",
            standing_offer=dict(offer),
            offered_by=by,
            compare_to=dict(own) if own is not None else None,
            candidates=candidates,
            note=(
                f"round {self.round}: is the offer of {', '.join(makers)} at least as good for you "
                "as your own? accept it or reject it"
            ),
        )
        self._calls[delegate] = call
        return call

    def _after_judgements(self) -> list[ChairEvent]:
        agreed = []
        for by, offer in self._distinct_offers():
            key = _key(offer, self.agenda)
            if all(
                self.offers.get(j) == offer or self._verdicts.get((j, key)) == "accept"
                for j in self.participants
            ):
                agreed.append((by, offer))
        if agreed:
            by, offer = agreed[0] if len(agreed) == 1 else self._rng.choice(agreed)
            makers = [p for p in self.participants if self.offers.get(p) == offer]
            draw = f"; drawn by lot from {len(agreed)} agreed offers" if len(agreed) > 1 else ""
            return self._end(
                dict(offer),
                f"the offer of {', '.join(makers)} is acceptable to every other delegate{draw}",
                list(self.participants),
            )
        return self._next_round()

    def _next_round(self) -> list[ChairEvent]:
        if self.round >= self.params.deadline_rounds:
            return self._end(None, "deadline reached without agreement")
        self.previous = {p: dict(o) for p, o in self.offers.items()}
        self.round += 1
        return self._open_proposals()

    # -- moves -------------------------------------------------------------------------

    def receive(self, sender: str, move: Move) -> list[ChairEvent]:
        dumped = move.model_dump(mode="json")
        if self.done:
            return [Rejection(to=sender, reason="the session has ended", move=dumped)]
        if sender not in self._missed:
            return [Rejection(to=sender, reason=f"{sender!r} is not a participant", move=dumped)]
        if self.phase == "idle":
            return [Rejection(to=sender, reason="the session has not started", move=dumped)]
        call = self._calls.get(sender)
        if call is None:
            return [Rejection(to=sender, reason=self._why_no_call(sender, move), move=dumped)]
        if move.kind not in call.allowed:
            if self.phase == "propose":
                why = f"out of phase: round {self.round} is collecting proposals (allowed: propose)"
            else:
                why = (
                    f"out of phase: proposals for round {self.round} are closed; accept or reject "
                    "the offer put to you (allowed: accept, reject)"
                )
            return self._illegal(sender, move, f"a {move.kind} is not allowed: {why}")
        assert isinstance(move, (Propose, Accept, Reject))
        problem = self.agenda.problem_with(move.offer)
        if problem:
            return self._illegal(sender, move, problem)
        offer = {i.id: move.offer[i.id] for i in self.agenda.issues}
        if isinstance(move, Propose):
            self._missed[sender] = 0
            del self._calls[sender]
            self.offers[sender] = offer
            self._proposed[sender] = True
            return self._after_proposals() if not self._calls else []
        asked = call.standing_offer
        if offer != asked:
            return self._illegal(
                sender,
                move,
                f"stale: {move.kind}s an offer other than the one put to you "
                f"({self.agenda.describe(asked or {})})",
            )
        self._missed[sender] = 0
        self._verdicts[(sender, _key(offer, self.agenda))] = "accept" if isinstance(move, Accept) else "reject"
        self._ask_next(sender)
        return self._judged(sender)

    def _judged(self, delegate: str) -> list[ChairEvent]:
        """After `delegate` answered (or missed) a question: its next one, or the round's end."""
        if delegate in self._calls:
            return [self._calls[delegate]]
        if not self._calls:
            return self._after_judgements()
        return []

    def _why_no_call(self, sender: str, move: Move) -> str:
        if self.phase == "propose":
            if self._proposed.get(sender):
                return f"duplicate: you already proposed in round {self.round}"
            return (
                f"too late: your proposal for round {self.round} was counted as missed; "
                "your previous offer stands"
            )
        if isinstance(move, Propose):
            return f"out of phase: proposals for round {self.round} are closed"
        offer = getattr(move, "offer", None)
        if isinstance(offer, dict) and self.agenda.problem_with(offer) is None:
            done = self._verdicts.get((sender, _key(offer, self.agenda)))
            if done in ("accept", "reject"):
                return f"duplicate: you already judged that offer in round {self.round}"
            if done == "missed":
                return f"too late: your answer about that offer in round {self.round} was counted as a rejection"
        return f"out of turn: no question is open to you in round {self.round}"

    def _illegal(self, sender: str, move: Move, reason: str) -> list[ChairEvent]:
        rejection = Rejection(to=sender, reason=reason, move=move.model_dump(mode="json"))
        self._strikes[sender] = self._strikes.get(sender, 0) + 1
        if self._strikes[sender] >= self.params.strikes:
            return [rejection, *self._miss(sender, f"{self._strikes[sender]} illegal moves")]
        call = self._calls[sender].model_copy(update={"note": f"your last move was refused: {reason}"})
        self._calls[sender] = call
        return [rejection, call]

    # -- timeouts and absence ----------------------------------------------------------

    def timeout(self, delegate: str) -> list[ChairEvent]:
        if self.done or delegate not in self._calls:
            return []
        return self._miss(delegate, "no answer before the deadline")

    def _miss(self, delegate: str, why: str) -> list[ChairEvent]:
        call = self._calls.pop(delegate)
        self._strikes.pop(delegate, None)
        self._missed[delegate] += 1
        if self.phase == "propose":
            self._proposed[delegate] = False
            if delegate in self.offers:
                consequence = f"proposal missed ({why}): its previous offer stands"
            else:
                consequence = f"proposal missed ({why}): it has no offer this round"
        else:
            missed = [call.standing_offer or {}] + [o for _, o in self._questions.pop(delegate, [])]
            for offer in missed:
                self._verdicts[(delegate, _key(offer, self.agenda))] = "missed"
            consequence = f"judgement missed ({why}): {len(missed)} offer(s) count as rejected"
        if self._missed[delegate] >= self.params.absence_limit:
            absence = Absence(
                delegate=delegate,
                round=self.round,
                consequence=f"absent ({self._missed[delegate]} missed calls in a row): "
                "unanimity is impossible, the session ends",
            )
            return [absence, *self._end(None, f"{delegate} is absent")]
        absence = Absence(delegate=delegate, round=self.round, consequence=consequence)
        if self.phase == "propose":
            return [absence, *(self._after_proposals() if not self._calls else [])]
        return [absence, *self._judged(delegate)]

    def _end(self, agreement: Outcome | None, reason: str, accepted_by: list[str] | None = None) -> list[ChairEvent]:
        self._calls = {}
        self._questions = {}
        self._ended = Ended(agreement=agreement, reason=reason, round=self.round, accepted_by=accepted_by or [])
        return [self._ended]
