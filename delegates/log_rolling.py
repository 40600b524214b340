"""Log-rolling: hold the issues our weightiest values care about, trade the others away.

Integrative bargaining: parties who care about different issues gain by conceding on
what matters little to them in exchange for what matters much (Raiffa, "The Art and
Science of Negotiation", Harvard 1982; Pruitt, "Achieving integrative agreements", in
Bazerman and Lewicki (eds.), Negotiating in Organizations, Sage 1983; in automated
negotiation, the issue-importance-aware concession of Faratin, Sierra and Jennings,
"Using similarity criteria to make issue trade-offs in automated negotiations",
Artificial Intelligence 142, 2002).

The stakes come from the value model, not from a preference profile. A value model's
utility is a sum over issues, so an issue's contribution to our utility, option by
option, is the utility change when only that issue changes; its *stake* is the spread
of that contribution (best option minus worst), and each card's share of the spread says
which values make the issue matter. The heaviest issues, together carrying `firm_share`
of the total stake, are held firm; the rest are the currency we pay in.

The aspiration falls on a time-dependent schedule (exponent `e`). Among our admissible
outcomes in a band just above it (at least the aspiration, at most `band` of our utility
span above the lowest such outcome), we offer the one that

1. gives the others most of what they last asked for on our flexible issues: what is
   cheap for us to give is what we trade first;
2. loses least on the firm issues, the heaviest first (lexicographically): we hold what
   our weightiest cards care about for as long as the band allows;
3. comes closest to the aspiration: with the firm issues held, the concession the
   schedule calls for is made on the flexible issues;
4. loses least on the flexible issues, the heaviest first; then a seeded choice.

So before anyone has made an offer, the first concessions are on the issues of least
stake, and a firm issue gives way only when the band holds no outcome that keeps it.
(Putting (2) before (1) deadlocks multilateral sessions in which every delegate holds a
different issue firm: on the riverside example no session reached agreement that way.)

Each rationale names the issues held and the cards that hold them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from delegates.aspiration import band
from delegates.base import DelegateView
from delegates.justification import justify
from delegates.time_dependent import TimeDependent, TimeDependentOptions
from delegates.tit_for_tat import without_forbidden_accept
from protocols.agenda import Outcome
from protocols.events import Call
from protocols.moves import Accept, Move, Propose


class LogRollingOptions(TimeDependentOptions):
    firm_share: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Share of the total stake carried by the issues held firm (heaviest first).",
    )
    band: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="Width of the band above the aspiration searched, as a share of our "
        "utility span (best - floor).",
    )


class IssueStake:
    """How much one issue matters to us, option by option, and which cards make it matter."""

    def __init__(
        self,
        issue: str,
        contribution: dict[str, float],
        cards: dict[str, float],
        titles: dict[str, str],
    ) -> None:
        self.issue = issue
        self.contribution = contribution  # option -> our utility from this issue (up to a constant)
        self.stake = max(contribution.values()) - min(contribution.values())
        self.best_option = max(
            contribution, key=lambda o: (contribution[o], -list(contribution).index(o))
        )
        self.cards = dict(sorted(cards.items(), key=lambda kv: -kv[1]))  # card -> its spread here
        self.titles = titles

    def loss(self, option: str) -> float:
        return round(self.contribution[self.best_option] - self.contribution[option], 12)

    def why(self, n: int = 2) -> str:
        """The cards that make this issue matter, heaviest first: "'A' (0.12) and 'B' (0.03)"."""
        named = [
            f"'{self.titles[c]}' ({s:.2f})" for c, s in list(self.cards.items())[:n] if s > 1e-12
        ]
        return " and ".join(named) if named else "none of our cards"


class LogRolling(TimeDependent):
    """Concede first on the issues our values weigh least; hold the ones they weigh most."""

    name: ClassVar[str] = "log-rolling"
    description: ClassVar[str] = (
        "Holds the issues its weightiest cards care about; concedes, and gives the others what "
        "they ask, on the issues that matter little to it."
    )
    Options = LogRollingOptions
    default_e: ClassVar[float] = 0.5

    def __init__(self, view: DelegateView, options: LogRollingOptions | None = None) -> None:
        super().__init__(view, options)
        self.options: LogRollingOptions
        self.stakes = issue_stakes(view)
        ordered = sorted(self.stakes.values(), key=lambda s: -s.stake)
        total = sum(s.stake for s in ordered)
        self.firm: list[IssueStake] = []
        carried = 0.0
        for s in ordered:
            if total <= 0 or s.stake <= 0 or carried >= self.options.firm_share * total - 1e-12:
                break
            self.firm.append(s)
            carried += s.stake
        self.flexible: list[IssueStake] = [s for s in ordered if s not in self.firm]

    # -- choosing the offer ------------------------------------------------------------

    def asks(self) -> dict[str, dict[str, int]]:
        """Per issue, how many of the others last asked for each option."""
        counts: dict[str, dict[str, int]] = {}
        for offer in self.seen.values():
            for issue, option in offer.items():
                counts.setdefault(issue, {}).setdefault(option, 0)
                counts[issue][option] += 1
        return counts

    def candidates(self, call: Call) -> list[tuple[float, Outcome]]:
        """Admissible outcomes in the band just above the aspiration, lowest utility first."""
        above = self.view.space.at_least(self.aspiration(call))
        if not above:
            return list(self.view.space.admissible[:1])
        return band(above, self.options.band * max(0.0, self.best - self.floor))

    def key(
        self, u: float, outcome: Mapping[str, str], asks: Mapping[str, Mapping[str, int]]
    ) -> tuple:
        """Smaller is better: gifts on flexible issues, firm losses, utility, flexible losses."""
        gifts = sum(asks.get(s.issue, {}).get(outcome[s.issue], 0) for s in self.flexible)
        firm = tuple(s.loss(outcome[s.issue]) for s in self.firm)
        flexible = tuple(s.loss(outcome[s.issue]) for s in self.flexible)
        return (-gifts, firm, round(u, 12), flexible)

    def choose_offer(self, call: Call) -> Outcome:
        asks = self.asks()
        scored = [(self.key(u, o, asks), o) for u, o in self.candidates(call)]
        top = min(k for k, _ in scored)
        return self.view.rng.choice([o for k, o in scored if k == top])

    # -- moves ---------------------------------------------------------------------------

    def bid(self, call: Call) -> Move:
        model = self.view.model
        call = without_forbidden_accept(self.view, call)
        offer = self.choose_offer(call)
        standing = call.standing_offer
        if standing is not None and "accept" in call.allowed:
            threshold = min(self.aspiration(call), self.view.utility(offer))
            if self.view.utility(standing) >= threshold - 1e-12:
                why = self._why("Accepting", standing, call, self.trade(standing))
                return Accept(offer=standing, justification=justify(model, standing, why))
        why = self._why("Proposing", offer, call, self.trade(offer))
        return Propose(offer=offer, justification=justify(model, offer, why))

    def trade(self, outcome: Mapping[str, str]) -> str:
        """Which issues the outcome holds for us and which it gives away, and the cards why."""
        asks = self.asks()
        parts = []
        held = [s for s in self.firm if s.loss(outcome[s.issue]) <= 0]
        if held:
            parts.append(
                "holding "
                + " and ".join(
                    f"{s.issue}={outcome[s.issue]}, which {s.why()} make weigh {s.stake:.2f}"
                    for s in held
                )
            )
        yielded = [s for s in self.firm if s.loss(outcome[s.issue]) > 0]
        if yielded:
            parts.append(
                "yielding on "
                + " and ".join(
                    f"{s.issue} despite {s.why()} (stake {s.stake:.2f})" for s in yielded
                )
            )
        given = [s for s in self.flexible if s.loss(outcome[s.issue]) > 0]
        if given:
            gifts = [
                f"{s.issue}={outcome[s.issue]}"
                + (" as asked" if asks.get(s.issue, {}).get(outcome[s.issue]) else "")
                + f" (stake only {s.stake:.2f})"
                for s in given
            ]
            parts.append("giving way on " + " and ".join(gifts))
        return "".join(f"; {p}" for p in parts)


def issue_stakes(view: DelegateView) -> dict[str, IssueStake]:
    """Per issue, our utility from each option and each card's spread, from the value model.

    The model is additive over issues, so changing one issue of a base outcome (our best
    admissible one) changes each card's contribution by exactly that issue's part.
    """
    model = view.model
    base = dict(view.space.admissible[0][1] if view.space.admissible else view.space.all[0][1])
    at_base = {c.card: c.contribution for c in model.breakdown(base).contributions}
    titles = {c.card: c.title for c in model.breakdown(base).contributions}
    stakes = {}
    for issue in view.agenda.issues:
        per_card: dict[str, list[float]] = {c: [] for c in at_base}
        contribution: dict[str, float] = {}
        for option in issue.options:
            changed = model.breakdown({**base, issue.id: option.id})
            contribution[option.id] = changed.utility
            for c in changed.contributions:
                per_card[c.card].append(c.contribution - at_base[c.card])
        cards = {c: max(v) - min(v) for c, v in per_card.items()}
        stakes[issue.id] = IssueStake(issue.id, contribution, cards, titles)
    return stakes
