"""The strategy interface: (what the delegate knows, the chair's call) -> a move.

A strategy states how demanding it is at each moment (`aspiration`) and how it bids;
the base class answers every other kind of call a protocol can make (accept or reject a
text, rank candidates, critique a statement, vote on offers on the table) from the
delegate's own utilities and that aspiration. A strategy may override any of them.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from constituencies import Mandate, ValueModel
from delegates.asks import AskTally
from delegates.justification import Explained, Explainer, justify, value_summary
from delegates.outcome_space import OutcomeSpace
from protocols import trusted
from protocols.agenda import Agenda, Outcome
from protocols.events import Call
from protocols.moves import Accept, Critique, Move, Propose, Rank, Reject, Vote, Votes


#: The move kinds `Strategy.respond` answers other than by bidding.
_NOT_BIDDING = frozenset({"rank", "votes", "critique", "reject"})


class StrategyOptions(BaseModel):
    """Base for a strategy's options, as written under `delegates.<id>.options`."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class DelegateView:
    """Everything a strategy may read. It holds no keys and no way to reach the bus."""

    delegate_id: str
    agenda: Agenda
    model: ValueModel
    mandate: Mandate
    space: OutcomeSpace
    rng: random.Random

    @classmethod
    def build(
        cls,
        delegate_id: str,
        agenda: Agenda,
        model: ValueModel,
        mandate: Mandate,
        seed: int,
        outcomes: Sequence[Outcome] | None = None,
    ) -> DelegateView:
        # A string seed is hashed with SHA-512 by `random`, so it does not depend on
        # PYTHONHASHSEED: the same session seed gives every delegate the same stream.
        return cls(
            delegate_id=delegate_id,
            agenda=agenda,
            model=model,
            mandate=mandate,
            space=OutcomeSpace(agenda, model, mandate, outcomes),
            rng=random.Random(f"{seed}:{delegate_id}"),
        )

    def utility(self, outcome: Outcome) -> float:
        return self.model.utility(outcome)

    def admissible(self, outcome: Outcome) -> bool:
        return self.mandate.violation(outcome, self.model.utility(outcome)) is None


class Strategy(ABC):
    """Decides moves. Subclasses set `name`, `description` and `Options`."""

    name: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions

    def __init__(self, view: DelegateView, options: StrategyOptions | None = None) -> None:
        self.view = view
        self.options = options if options is not None else self.Options()
        # What the others have asked for: their latest offers and a tally per option.
        space = view.space
        self.tally = AskTally(view.delegate_id, getattr(space, "item_codes", None))
        # The latest offer seen from each other delegate (the tally's own dict).
        self.seen: dict[str, Outcome] = self.tally.latest
        # choose_offer's last scoring: (neighbourhood, offers counted, closest outcomes).
        self._closest: tuple[range, int, list[Outcome]] | None = None
        # The closeness of the admissible outcomes lo..hi-1 (the last neighbourhood
        # scored) when `offers` offers had been counted: (offers, lo, hi, scores).
        self._scored: tuple[int, int, int, list[int]] = (-1, 0, 0, [])
        # Utility, justification and value summary of an outcome, in one lookup.
        self.explain = Explainer(view.model)
        self._current: tuple[Outcome, Explained] | None = None
        # Whether choose_offer can score by item codes (the tally counts by the space's).
        self._indexed = (
            self.tally.codes is not None
            and self.tally.codes is getattr(space, "item_codes", None)
            and hasattr(space, "mask")
        )
        # The outcome choose_offer last returned: one of the space's, so of the agenda's.
        self._chosen: Outcome | None = None
        # choose_offer's neighbourhood of an aspiration, remembered by the space if it can.
        width, limit = self.neighbourhood_width * space.span, self.neighbourhood_size
        remembered = getattr(space, "neighbourhoods", None)
        self._neighbourhood: Callable[[float], range] = (
            remembered(width, limit)
            if remembered is not None
            else lambda target: space.neighbourhood(target, width, limit)
        )

    def observe(self, call: Call) -> None:
        """Note what the call shows of the others' positions."""
        standing = call.standing_offer
        if standing is not None and call.offered_by:
            self.tally.observe(call.offered_by, standing)
        if call.table:
            for entry in call.table:
                self.tally.observe(entry.by, entry.offer)

    # -- what a strategy must say ------------------------------------------------------

    @abstractmethod
    def aspiration(self, call: Call) -> float:
        """The lowest utility this strategy is content with, now."""

    # -- dispatch ----------------------------------------------------------------------

    def respond(self, call: Call) -> Move:
        """The move to make when called. The delegate wrapper checks it against the mandate."""
        self.observe(call)
        allowed = call.allowed
        if _NOT_BIDDING.isdisjoint(allowed):  # the usual call, in one test: accept or offer
            return self.bid(call)
        if "rank" in allowed:
            return self.rank(call)
        if "votes" in allowed:
            return self.vote(call)
        if "critique" in allowed:
            return self.critique(call)
        if "reject" in allowed:
            return self.judge(call)
        return self.bid(call)

    def observe_rejection(self, reason: str) -> None:  # noqa: B027 - optional hook
        """The chair refused this delegate's last move; strategies may adapt."""

    # -- helpers -----------------------------------------------------------------------

    def _why(self, verb: str, outcome: Outcome, call: Call, extra: str = "") -> str:
        # The outcome `bid` is explaining was looked up once already.
        current = self._current
        found = current[1] if current is not None and current[0] is outcome else self.explain(outcome)
        return (
            f"{verb} an outcome worth {found.worth} to us (aspiration {self.aspiration(call):.2f}, "
            f"round {call.round} of {call.deadline_round}){extra}: it {found.summary}."
        )

    def _move(
        self, cls: type[Propose] | type[Accept], outcome: Outcome, found: Explained, rationale: str
    ) -> Move:
        """`cls(offer=outcome, justification=justify(model, outcome, rationale))` where
        `found` is `self.explain(outcome)`, built without validation when `outcome` is a
        complete outcome of the agenda (all its ids are then the agenda's, already
        validated); validated otherwise."""
        justification = trusted.justification(found.claimed, list(found.cited), rationale)
        if outcome is self._chosen or self.view.agenda.problem_with(outcome) is None:
            build = trusted.propose if cls is Propose else trusted.accept
            return build(dict(outcome), justification)
        return cls(offer=outcome, justification=justification)

    #: The neighbourhood of the aspiration that `choose_offer` searches: from the lowest
    #: admissible utility at or above it, up to `neighbourhood_width` of the admissible
    #: utility span higher, at most `neighbourhood_size` outcomes. Bounded, so a bid costs
    #: the same on any outcome space; wide enough to hold outcomes that differ in what
    #: they give the others. On the ANAC domains of benchmarks/negmas_compare.py the mean
    #: Nash ratio was 0.786 with 0.1 and 64 outcomes, 0.783 with 32 (half the time per
    #: bid), 0.780 with 16, and within 0.01 of these for widths 0.05 to 0.2.
    neighbourhood_width: ClassVar[float] = 0.1
    neighbourhood_size: ClassVar[int] = 32

    def choose_offer(self, call: Call) -> Outcome:
        """An admissible outcome in the neighbourhood of the aspiration, the one closest
        to what the others have asked for (most often asked-for options, over all their
        offers: `AskTally`), then the lowest in utility (the nearest the aspiration);
        remaining ties by the seeded generator. Before anyone has asked for anything:
        the lowest outcome at or above the aspiration.

        Conceding toward the others' positions rather than anywhere below one's own best
        is what lets several delegates find the few outcomes they can all accept.
        """
        space = self.view.space
        near = self._neighbourhood(self.aspiration(call))
        if not near:
            self._chosen = space.all[0][1]
            return self._chosen
        ranked = space.admissible
        tally = self.tally
        if not tally.latest:
            floor = ranked[near[-1]][0]
            self._chosen = self.view.rng.choice(
                [ranked[k][1] for k in near if ranked[k][0] - floor <= 1e-12]
            )
            return self._chosen
        # While neither the neighbourhood nor the others' asks change (a Boulware opponent
        # repeats its offer for many rounds), the scores do not either: reuse them.
        last = self._closest
        if last is not None and last[0] == near and last[1] == tally.offers:
            chosen = last[2]
        elif self._indexed:
            chosen = self._closest_in(near)
            self._closest = (near, tally.offers, chosen)
        else:
            chosen = tally.closest(reversed(ranked[near.start : near.stop]))
            self._closest = (near, tally.offers, chosen)
        self._chosen = self.view.rng.choice(chosen)
        return self._chosen

    def _closest_in(self, near: range) -> list[Outcome]:
        """`self.tally.closest(reversed(ranked[near.start : near.stop]))`, from scores
        kept from turn to turn (raised by the offers counted since), each outcome that
        enters the neighbourhood scored once, by list lookups."""
        space = self.view.space
        ranked = space.admissible
        a, b = near.start, near.stop
        tally = self.tally
        offers, lo, hi, scores = self._scored
        if lo < b and a < hi and tally.offers - offers <= 2:
            # The neighbourhood overlaps the outcomes scored last time: keep their scores
            # (it moves a little each turn, mostly down as the aspiration falls).
            if lo < a:
                scores, lo = scores[a - lo :], a
            if hi > b:
                scores, hi = scores[: b - lo], b
            if offers != tally.offers:
                # An offer or two counted since: add to each score what each new offer
                # added (the options it shares with it: one AND and one bit count, a
                # third of the cost of summing its options' counts again).
                masks = space.masks[lo:hi]
                if 0 in masks:  # not all computed yet
                    mask = space.mask
                    masks = [mask(k) for k in range(lo, hi)]
                for new in tally.masks[offers:]:
                    scores = [n + (m & new).bit_count() for n, m in zip(scores, masks)]
        else:
            lo = hi = a
            scores = []
        # Score what the neighbourhood adds, above and below the kept outcomes.
        if a < lo:
            scores = self._scores(a, lo) + scores
        if b > hi:
            scores = scores + self._scores(hi, b)
        self._scored = (tally.offers, a, b, scores)
        # The last best in the window is the lowest in utility (the ranking is best
        # first); the others tied with it in score and utility sit just below it.
        best = max(scores)
        k = b - 1 - scores[::-1].index(best)
        at = ranked[k][0]
        chosen = [ranked[k][1]]
        k -= 1
        while k >= a and ranked[k][0] == at:
            if scores[k - a] == best:
                chosen.append(ranked[k][1])
            k -= 1
        return chosen

    def _scores(self, lo: int, hi: int) -> list[int]:
        """The closeness to the others' asks (`AskTally.closeness`) of admissible
        outcomes lo..hi-1, from the tally's counts by item code."""
        space = self.view.space
        counters = space.counters[lo:hi]
        if None in counters:  # not all made yet
            counter = space.counter
            counters = [counter(k) for k in range(lo, hi)]
        counts = self.tally.by_code
        return [sum(count(counts)) for count in counters]

    # -- default answers to each kind of call ------------------------------------------

    def bid(self, call: Call) -> Move:
        """Alternating offers: accept the standing offer if it is good enough, else offer."""
        # `explain(outcome)` is `explained[key(outcome)]`: looked up so, without a call.
        explained, key = self.explain.memo, self.explain.key
        offer = self.choose_offer(call)
        ours = explained[key(offer)]
        standing = call.standing_offer
        try:
            if standing is not None and "accept" in call.allowed:
                threshold = min(self.aspiration(call), ours.utility)
                theirs = explained[key(standing)]
                if theirs.utility >= threshold - 1e-12:
                    # Only while this move is made: an outcome is a dict, and dicts change.
                    self._current = (standing, theirs)
                    return self._move(Accept, standing, theirs, self._why("Accepting", standing, call))
            self._current = (offer, ours)
            return self._move(Propose, offer, ours, self._why("Proposing", offer, call))
        finally:
            self._current = None

    def judge(self, call: Call) -> Move:
        """A text put to a vote: accept if it beats what it would replace, else if good enough."""
        text = call.standing_offer
        assert text is not None, "a call allowing 'reject' must carry the text in standing_offer"
        u = self.view.utility(text)
        if call.compare_to is not None:
            ok = u > self.view.utility(call.compare_to) + 1e-12 or (
                u >= self.view.utility(call.compare_to) - 1e-12 and u >= self.aspiration(call)
            )
        else:
            ok = u >= self.aspiration(call) - 1e-12
        ok = ok and self.view.admissible(text)
        cls = Accept if ok else Reject
        verb = "Accepting" if ok else "Rejecting"
        return cls(offer=text, justification=justify(self.view.model, text, self._why(verb, text, call)))

    def rank(self, call: Call) -> Move:
        """A sincere ballot: candidates by our utility; inadmissible ones last."""
        candidates = call.candidates or []

        def key(c):  # noqa: ANN001, ANN202
            return (not self.view.admissible(c.outcome), -self.view.utility(c.outcome), c.id)

        ordered = sorted(candidates, key=key)
        top = ordered[0].outcome
        return Rank(
            ranking=[c.id for c in ordered],
            justification=justify(self.view.model, top, self._why("Ranking first", top, call)),
        )

    def critique(self, call: Call) -> Move:
        """Name the issue whose change would help us most, and the outcome we would prefer."""
        candidate = (call.candidates or [])[0]
        current = candidate.outcome
        base = self.view.utility(current)
        best: tuple[float, Outcome] | None = None
        for issue in self.view.agenda.issues:
            for option in issue.options:
                if option.id == current[issue.id]:
                    continue
                changed = {**current, issue.id: option.id}
                gain = self.view.utility(changed) - base
                if self.view.admissible(changed) and (best is None or gain > best[0] + 1e-12):
                    best = (gain, changed)
        if best is None or best[0] <= 1e-12:
            text = "We can support this statement as it stands."
            suggestion = None
        else:
            suggestion = best[1]
            changed_issue = next(i for i in current if current[i] != suggestion[i])
            text = (
                f"Change {changed_issue} to {suggestion[changed_issue]}: that would raise its worth to "
                f"us by {best[0]:.2f}, because it {value_summary(self.view.model, suggestion)}."
            )
        return Critique(
            candidate=candidate.id,
            text=text,
            suggestion=suggestion,
            justification=justify(self.view.model, current, self._why("Critiquing", current, call)),
        )

    def vote(self, call: Call) -> Move:
        """MOPAC: vote for every offer on the table that meets our aspiration and mandate."""
        chosen: list[Vote] = []
        for entry in call.table or []:
            u = self.view.utility(entry.offer)
            if u >= self.aspiration(call) - 1e-12 and self.view.admissible(entry.offer):
                why = self._why("Voting for", entry.offer, call)
                chosen.append(
                    Vote(offer=entry.offer, min_power=2, justification=justify(self.view.model, entry.offer, why))
                )
        best = max(chosen, key=lambda v: v.justification.utility).offer if chosen else self.choose_offer(call)
        summary = f"Voting for {len(chosen)} of {len(call.table or [])} offers on the table"
        return Votes(votes=chosen, justification=justify(self.view.model, best, summary + "."))
