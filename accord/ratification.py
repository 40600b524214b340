"""Where constituents' approvals come from: the session file, or a person at the prompt.

Either way the answer goes into the ledger (a `ratification` entry signed by the
delegate), so a resumed session replays it instead of asking again, and a constituent
reading the log sees who approved what.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from accord.session_file import RatificationDecision
from constituencies.mandate import RatificationRule
from delegates.delegate import Ratification

Ask = Callable[[str, dict[str, str], RatificationRule, float], tuple[bool, list[str], str]]


class RecordedRatifier:
    """Applies decisions written in the session file; optionally asks about the rest."""

    def __init__(self, decisions: Sequence[RatificationDecision], ask: Ask | None = None) -> None:
        self.decisions = list(decisions)
        self.ask = ask

    def __call__(
        self, delegate: str, outcome: dict[str, str], rule: RatificationRule, utility: float
    ) -> Ratification:
        for d in self.decisions:
            if d.delegate == delegate and all(outcome.get(i) == o for i, o in d.outcome.items()):
                return Ratification(
                    outcome=outcome, approved=d.decision == "approve", rule=rule.describe(),
                    source="session-file", by=list(d.by), note=d.note,
                )
        if self.ask is not None:
            approved, by, note = self.ask(delegate, outcome, rule, utility)
            return Ratification(
                outcome=outcome, approved=approved, rule=rule.describe(), source="prompt", by=by, note=note
            )
        return Ratification(
            outcome=outcome, approved=False, rule=rule.describe(), source="none",
            note="no decision in the session file and nobody to ask: not ratified",
        )
