"""`accord metrics SESSION`: how a recorded session went, by the standard measures.

Mount it on the main CLI with ``app.add_typer(metrics_app, name="metrics")``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from accord.ledger import DEFAULT_LEDGER, Ledger, LedgerError
from accord.metrics_report import metrics_for_session
from protocols.metrics import SessionMetrics, SolutionPoint

metrics_app = typer.Typer(
    help="Agreement, Pareto, Nash, Kalai, Kalai-Smorodinsky, welfare, fairness and card "
    "preservation of a recorded session.",
    add_completion=False,
)
console = Console()
err = Console(stderr=True)


@metrics_app.callback(
    invoke_without_command=True,
    subcommand_metavar="",
    # A group stops parsing options at its first argument; this one has no subcommands,
    # so let `accord metrics SESSION --json` read like any other command.
    context_settings={"allow_interspersed_args": True},
)
def metrics(
    session: Annotated[
        str, typer.Argument(help="Session id, unique prefix, or 'latest'.")
    ] = "latest",
    ledger: Annotated[
        str,
        typer.Option(
            "--ledger",
            "-l",
            envvar="ACCORD_LEDGER",
            help="Ledger database: a SQLite file path or a database URL.",
        ),
    ] = DEFAULT_LEDGER,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Metrics of a finished session, computed from the delegates' value models."""

    async def go() -> SessionMetrics:
        store = await Ledger.open(ledger, create=False)
        try:
            info = await store.find_session(session)
            return await metrics_for_session(store, info.id)
        finally:
            await store.close()

    try:
        result = asyncio.run(go())
    except LedgerError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    console.print(render_metrics(result))


def _outcome(outcome: dict[str, str] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in outcome.items()) if outcome else "—"


def _solution_row(table: Table, name: str, point: SolutionPoint | None) -> None:
    if point is None:
        table.add_row(name, "no individually rational outcome", "—", "—", "—")
        return
    table.add_row(
        name,
        _outcome(point.outcome),
        " ".join(f"{u:+.3f}" for u in point.utilities.values()),
        f"{point.distance:.3f}",
        "[green]yes[/]" if point.reached else "no",
    )


def render_metrics(m: SessionMetrics) -> Group:
    """Rich tables: verdict, parties, efficiency, welfare and fairness, card preservation."""
    if m.agreement:
        verdict = Text.from_markup(f"[bold green]Agreement[/]: {_outcome(m.outcome)}")
    elif m.partial:
        coalitions = "; ".join(
            f"{'+'.join(c.parties)}: {_outcome(c.outcome)}" for c in m.coalitions
        )
        verdict = Text.from_markup(f"[bold cyan]Partial agreements[/]: {coalitions}")
    else:
        verdict = Text.from_markup("[bold yellow]No agreement[/]")
    head = Text.from_markup(
        f"[bold]{m.session_id or 'session'}[/]: {m.reason}; "
        f"{m.rounds} rounds, {m.messages} messages; "
        f"{m.scenario.outcomes} outcomes, {m.scenario.agreement_space} cross no red line, "
        f"{m.scenario.individually_rational} individually rational"
    )

    parties = Table(title="Parties")
    for col in (
        "party",
        "utility",
        "disagreement",
        "gain",
        "satisfaction",
        "constituents (min / mean)",
    ):
        parties.add_column(col, justify="left" if col == "party" else "right")
    for p in m.parties:
        people = list(p.constituents.values())
        crowd = f"{min(people):+.3f} / {sum(people) / len(people):+.3f}" if people else "—"
        parties.add_row(
            p.id if p.outcome is not None else f"{p.id} [dim](no deal)[/]",
            f"{p.utility:+.3f}",
            f"{p.disagreement:+.3f}",
            f"{p.gain:+.3f}",
            f"{100 * p.satisfaction:.0f}%",
            crowd,
        )

    efficiency = Table(title="Efficiency (distances are Euclidean, in utility space)")
    for col in ("measure", "outcome", "utilities", "distance", "reached"):
        efficiency.add_column(col)
    efficiency.add_row(
        "Pareto frontier",
        f"{m.pareto.frontier_outcomes} outcomes, {m.pareto.frontier_points} points",
        "",
        "—" if m.pareto.distance is None else f"{m.pareto.distance:.3f}",
        "[green]yes[/]" if m.pareto.optimal else "[yellow]no[/]",
    )
    _solution_row(efficiency, "Nash", m.nash)
    _solution_row(efficiency, "Kalai (egalitarian gains)", m.kalai)
    _solution_row(efficiency, "Kalai-Smorodinsky", m.kalai_smorodinsky)

    welfare = Table(title="Welfare and fairness")
    for col in ("measure", "result", "best possible"):
        welfare.add_column(col, justify="left" if col == "measure" else "right")
    w = m.welfare

    def opt(x: float | None) -> str:
        return "—" if x is None else f"{x:+.3f}"

    welfare.add_row("utilitarian (sum)", f"{w.utilitarian:+.3f}", opt(w.utilitarian_optimum))
    welfare.add_row("egalitarian (min)", f"{w.egalitarian:+.3f}", opt(w.egalitarian_optimum))
    welfare.add_row("Gini across constituencies", f"{m.fairness.gini_constituencies:.3f}", "0.000")
    gc = m.fairness.gini_constituents
    welfare.add_row("Gini across constituents", "—" if gc is None else f"{gc:.3f}", "0.000")

    cards = Table(title="Card preservation: (contribution - min) / (max - min)")
    for col in ("party", "card", "contribution", "range", "kept"):
        cards.add_column(col, justify="right" if col in ("contribution", "kept") else "left")
    for p in m.parties:
        for c in sorted(p.cards, key=lambda c: c.preservation):
            cards.add_row(
                p.id,
                c.title,
                f"{c.contribution:+.3f}",
                f"[{c.min:+.3f}, {c.max:+.3f}]",
                f"{100 * c.preservation:.0f}%",
            )
    note = Text.from_markup(
        f"[dim]Disagreement utility = reservation level; Gini over utilities shifted by "
        f"+{m.fairness.shift:g}.[/]"
    )
    parts: list[Table | Text] = [verdict, head, parties, efficiency, welfare]
    if cards.row_count:
        parts.append(cards)
    parts.append(note)
    return Group(*parts)
