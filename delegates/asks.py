"""What the other delegates have asked for: their latest offers and a tally per option.

A strategy that concedes toward the others (`Strategy.choose_offer`) needs, for each
outcome it might offer, how close it is to what they want. The tally counts, for every
(issue, option), how many of the others' offers asked for it; an outcome's closeness is
the sum of its options' counts. Counting every offer a delegate made, not only its
latest, is a frequency model of its preferences (Baarslag et al., "Learning about the
opponent in automated bilateral negotiation", AAMAS 30(5), 2016): the options it keeps
asking for while it concedes elsewhere are the ones it values, so an offer that grants
them gives up little for us and much for it, which moves agreements toward the Nash
point. An offer seen again unchanged (the same standing offer at a later turn, a MOPAC
table shown at every call) is counted once, as `OfferHistory` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import repeat

from protocols.agenda import Outcome


class AskTally:
    def __init__(self, me: str, codes: Mapping[tuple[str, str], int] | None = None) -> None:
        self.me = me
        #: The latest offer seen from each other delegate.
        self.latest: dict[str, Outcome] = {}
        #: How many offers have been counted: closeness changes only when this does.
        self.offers = 0
        #: With `codes` (the agenda's `item_codes`), the counts are kept in a list indexed
        #: by item code (what `Strategy.choose_offer` scores outcomes with), and `counts`
        #: is built from it when read; items the codes lack are counted in a dict.
        self.codes = codes
        self.by_code: list[int] = [0] * (max(codes.values(), default=-1) + 1) if codes else []
        self._counts: dict[tuple[str, str], int] = {}
        self._unknown: dict[tuple[str, str], int] = {}
        self._counted = 0  # `offers` when `_counts` was last built from `by_code`
        #: With `codes`: each counted offer's known items as a bit mask (bit c for item
        #: code c), in the order counted. Offer n (from 0) added one to the count of each
        #: of its items, so it raised an outcome's closeness by the bits the two masks
        #: share: what lets a strategy update scores instead of recomputing them.
        self.masks: list[int] = []

    @property
    def counts(self) -> dict[tuple[str, str], int]:
        """(issue, option) -> how many of the others' offers asked for it."""
        if self.codes is None or self._counted == self.offers:
            return self._counts
        by_code = self.by_code
        counts = {item: by_code[code] for item, code in self.codes.items() if by_code[code]}
        counts.update(self._unknown)
        self._counts, self._counted = counts, self.offers
        return counts

    def __bool__(self) -> bool:
        return bool(self.latest)

    def observe(self, sender: str, offer: Mapping[str, str]) -> None:
        if sender == self.me or self.latest.get(sender) == offer:
            return
        self.latest[sender] = dict(offer)
        self.offers += 1
        codes = self.codes
        if codes is None:
            counts = self._counts
            for item in offer.items():
                counts[item] = counts.get(item, 0) + 1
            return
        by_code = self.by_code
        mask = 0
        for item in offer.items():
            code = codes.get(item)
            if code is None:
                self._unknown[item] = self._unknown.get(item, 0) + 1
            else:
                by_code[code] += 1
                mask |= 1 << code
        self.masks.append(mask)

    def closeness(self, outcome: Mapping[str, str]) -> int:
        """How many times the others asked for the options of `outcome`, summed."""
        return sum(map(self.counts.get, outcome.items(), repeat(0)))

    def closest(self, candidates: Iterable[tuple[float, Outcome]]) -> list[Outcome]:
        """Of `candidates` ((utility, outcome), lowest utility first), the closest to what
        the others asked for; among equally close ones, those of the lowest utility."""
        # `closeness` inlined, the lookups mapped in C: this runs for every candidate of
        # every bid, and is most of the time a simulated negotiation takes.
        get, zeros = self.counts.get, repeat(0)
        best, chosen, at = -1, [], 0.0
        for utility, outcome in candidates:
            score = sum(map(get, outcome.items(), zeros))
            if score > best:
                best, chosen, at = score, [outcome], utility
            elif score == best and utility == at:
                chosen.append(outcome)
        return chosen
