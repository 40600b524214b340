"""Rich renderings of sessions: live progress, the outcome table, the value trail."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from accord.progress import SessionEvent
from accord.session import SessionResult
from accord.session_plan import SessionPlan


def _offer_text(plan_or_spec: Any, offer: dict[str, str] | None) -> str:
    if not offer:
        return "—"
    return ", ".join(f"{issue}={option}" for issue, option in offer.items())


class LiveProgress:
    """Folds session events into the state the live view shows."""

    def __init__(self, plan: SessionPlan) -> None:
        self.plan = plan
        self.round = 0
        self.deadline = 0
        self.standing: dict[str, str] | None = None
        self.offered_by: str | None = None
        self.last: dict[str, str] = {p.id: "" for p in plan.participants}
        self.notes: list[str] = []
        self.moves = 0

    def __call__(self, event: SessionEvent) -> None:
        body = event.body
        if event.kind in ("call", "calls"):  # `calls`: one call to many delegates
            self.round = body["round"]
            self.deadline = body["deadline_round"]
        elif event.kind == "move":
            self.moves += 1
            move = body["move"]
            self.last[event.actor] = move["kind"]
            if move["kind"] == "propose":
                self.standing, self.offered_by = move["offer"], event.actor
        elif event.kind == "refusal":
            self.notes.append(f"[yellow]{event.actor}[/]: {body['reason']}")
        elif event.kind == "ratification":
            r = body["ratification"]
            verdict = "approved" if r["approved"] else "not ratified"
            self.notes.append(f"[magenta]{event.actor}[/]: constituents {verdict} ({r['source']})")
        elif event.kind in ("rejection", "absence", "refused-message"):
            who = body.get("to") or body.get("delegate") or ""
            self.notes.append(f"[red]{event.kind}[/] {who}: {body.get('reason') or body.get('consequence')}")

    def render(self) -> Panel:
        table = Table(expand=False, box=None, pad_edge=False)
        table.add_column("delegate")
        table.add_column("strategy", style="dim")
        table.add_column("utility of standing offer", justify="right")
        table.add_column("last move")
        for p in self.plan.participants:
            u = p.model.utility(self.standing) if self.standing else None
            table.add_row(
                p.constituency.label,
                p.strategy_name,
                "—" if u is None else f"{u:+.3f}",
                self.last[p.id] + (" (offered)" if p.id == self.offered_by else ""),
            )
        head = Text.from_markup(
            f"round [bold]{self.round}[/] of {self.deadline}   moves {self.moves}   "
            f"standing offer: [cyan]{_offer_text(self.plan, self.standing)}[/]"
        )
        parts: list[Any] = [head, table]
        if self.notes:
            parts.append(Text.from_markup("\n".join(self.notes[-4:])))
        return Panel(Group(*parts), title=self.plan.spec.title or self.plan.spec.id)


def outcome_tables(
    plan: SessionPlan, result: SessionResult, labels: dict[str, str] | None = None
) -> Group:
    """`labels`: how to name each delegate's strategy ('llm (model)' for a model)."""
    labels = labels or {}
    ended = result.ended
    agreement = Table(title="Outcome", show_header=True)
    agreement.add_column("issue")
    agreement.add_column("decision")
    if ended.agreement:
        for issue in plan.agenda.issues:
            option = issue.option(ended.agreement[issue.id])
            agreement.add_row(issue.description or issue.id, f"{option.id}: {option.description}")
        # A statement chosen by a vote was not accepted by everyone: say what it is.
        word = f"Chosen ({ended.chosen})" if ended.chosen else "Agreement"
        verdict = Text.from_markup(f"[bold green]{word}[/] in round {ended.round}: {ended.reason}.")
    elif ended.partial:
        agreement.title = "Partial agreements"
        agreement.columns[0].header = "delegates"
        agreement.columns[1].header = "outcome"
        for partial in ended.partial:
            agreement.add_row(", ".join(partial.parties), plan.agenda.describe(partial.outcome))
        verdict = Text.from_markup(
            f"[bold cyan]{len(ended.partial)} partial agreement(s)[/] (round {ended.round}): {ended.reason}."
        )
    else:
        verdict = Text.from_markup(f"[bold yellow]No agreement[/] (round {ended.round}): {ended.reason}.")

    parties = Table(title="Constituencies", show_header=True)
    parties.add_column("constituency")
    parties.add_column("strategy", style="dim")
    parties.add_column("utility", justify="right")
    parties.add_column("satisfaction", justify="right")
    parties.add_column("constituents (min / mean)", justify="right")
    parties.add_column("cards that weighed most")
    for r in result.delegates:
        label = plan.participant(r.delegate).constituency.label
        strategy = labels.get(r.delegate, r.strategy)
        if r.breakdown is None:
            parties.add_row(label, strategy, "—", "—", "—", "—")
            continue
        people = list(r.constituents.values())
        crowd = f"{min(people):+.2f} / {sum(people) / len(people):+.2f}" if people else "—"
        cards = "; ".join(
            f"{c.title} ({c.contribution:+.2f})" for c in r.breakdown.top(2) if c.contribution
        )
        parties.add_row(
            label,
            strategy,
            f"{r.breakdown.utility:+.3f}",
            f"{100 * (r.satisfaction or 0):.0f}%",
            crowd,
            cards or "—",
        )
    where = Text.from_markup(
        f"Signed log: [bold]{result.entries}[/] entries in [cyan]{result.ledger}[/], "
        f"session [bold]{result.session_id}[/]\n"
        f"Trail: accord log {result.session_id}    Check: accord verify {result.session_id}"
    )
    parts: list[Any] = [verdict]
    if ended.agreement or ended.partial:
        parts.append(agreement)
    parts += [parties, where]
    return Group(*parts)
