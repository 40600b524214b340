"""`accord import`: standard domains and real deliberations turned into session files.

Mount with `app.add_typer(import_app, name="import")` in accord/cli.py:

    accord import genius DIR -o session.yaml [--deadline N] [--strategy NAME] [--id ID]
    accord import polis  DIR -o session.yaml [--max-statements N] [--strategy NAME] [--rule R] [--id ID]

Each writes the session YAML and a JSON sidecar beside it (`session.genius.json`: the id
mapping, reservation values and discount factors; `session.gic.json`: Polis's
group-informed consensus of every statement), each file whole or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from accord import plugins
from accord.importers import (
    ImporterError,
    dump_session_yaml,
    import_genius,
    import_polis,
    sidecar_path,
    write_text_atomic,
)
from accord.importers.genius import DEFAULT_DEADLINE_ROUNDS
from accord.session_file import SessionFileError, load_session

import_app = typer.Typer(
    help="Import the field's standard data into session files: Genius/ANAC negotiation "
    "domains and Polis conversations.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

OutputOpt = Annotated[
    Path, typer.Option("--output", "-o", help="Session file to write (YAML).", dir_okay=False)
]
IdOpt = Annotated[
    str | None, typer.Option("--id", help="Session id (default: from the folder name).")
]
StrategyOpt = Annotated[
    str, typer.Option("--strategy", help="Every delegate's strategy (see `accord strategies`).")
]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _check_strategy(name: str) -> None:
    try:
        plugins.strategy(name)
    except plugins.PluginError as exc:
        _fail(str(exc))


def _write(output: Path, yaml_text: str, kind: str, side: dict) -> Path:  # type: ignore[type-arg]
    side_file = sidecar_path(output, kind)
    write_text_atomic(side_file, json.dumps(side, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(output, yaml_text)
    try:
        load_session(output)  # what we wrote must read back
    except SessionFileError as exc:  # pragma: no cover - would be an importer bug
        _fail(f"the written session does not load back: {exc}")
    return side_file


@import_app.command("genius")
def genius(
    folder: Annotated[
        Path, typer.Argument(help="A Genius XML or GeniusWeb JSON domain folder.", file_okay=False)
    ],
    output: OutputOpt,
    deadline: Annotated[
        int,
        typer.Option(
            "--deadline",
            min=1,
            help="deadline_rounds of stacked alternating offers (ANAC used a 180 s clock; 100 "
            "rounds samples a time-dependent strategy's concession in steps of 0.01).",
        ),
    ] = DEFAULT_DEADLINE_ROUNDS,
    strategy: StrategyOpt = "boulware",
    session_id: IdOpt = None,
) -> None:
    """A negotiation domain: each preference profile becomes a constituency whose utility equals Genius's."""
    _check_strategy(strategy)
    try:
        result = import_genius(
            folder, deadline_rounds=deadline, strategy=strategy, session_id=session_id
        )
    except ImporterError as exc:
        _fail(str(exc))
        raise
    header = (
        f"Imported by `accord import genius` from {folder} ({result.format}).\n"
        f"Sidecar: {sidecar_path(output, 'genius').name} (original names, reservations, discount factors)."
    )
    side = _write(output, dump_session_yaml(result.spec, header), "genius", result.side_data())
    console.print(
        f"[bold]{result.domain_name}[/]: {len(result.issues)} issues, "
        f"{result.outcome_space_size} outcomes, deadline {deadline} rounds"
    )
    for p in result.profiles:
        discount = (
            "none"
            if p.discount_factor is None
            else f"{p.discount_factor:g} (recorded, not applied)"
        )
        console.print(
            f"  {p.party}: reservation {p.reservation:.4g}, discount {discount}", highlight=False
        )
    for note in result.notes:
        console.print(f"  [yellow]note:[/] {note}", highlight=False)
    console.print(f"wrote {output} and {side}")


@import_app.command("polis")
def polis(
    folder: Annotated[
        Path, typer.Argument(help="A Polis open-data export folder.", file_okay=False)
    ],
    output: OutputOpt,
    max_statements: Annotated[
        int | None,
        typer.Option(
            "--max-statements",
            min=2,
            help="Keep only the N moderated-in statements with the most votes (default: all).",
        ),
    ] = None,
    strategy: StrategyOpt = "boulware",
    rule: Annotated[str, typer.Option("--rule", help="The voting protocol's rule.")] = "schulze",
    session_id: IdOpt = None,
) -> None:
    """A Polis conversation: one issue (the statements), one constituency per opinion group."""
    _check_strategy(strategy)
    try:
        result = import_polis(
            folder,
            max_statements=max_statements,
            strategy=strategy,
            rule=rule,
            session_id=session_id,
        )
    except ImporterError as exc:
        _fail(str(exc))
        raise
    header = (
        f"Imported by `accord import polis` from {folder}.\n"
        f"Sidecar: {sidecar_path(output, 'gic').name} (group-informed consensus of every statement).\n"
        "Polis data: CC BY 4.0, The Computational Democracy Project."
    )
    doc = result.gic_document()
    side = _write(output, dump_session_yaml(result.spec, header), "gic", doc)
    console.print(f"[bold]{result.topic}[/]", highlight=False)
    console.print(
        f"  {len(result.statements)} statements on the agenda (of {result.moderated_in} moderated in); "
        f"{len(result.groups)} opinion groups: "
        + ", ".join(f"group-{g} {len(p)}" for g, p in result.groups.items())
        + f"; {result.ungrouped} of {result.participants} participants had no group and are left out",
        highlight=False,
    )
    best = doc["best"]
    console.print(
        f"  highest group-informed consensus: {best['option']} = {best['gic']:.4f} "
        f"(counts from {result.gic_source})",
        highlight=False,
    )
    if "voting" not in plugins.protocols():
        console.print(
            "  [yellow]note:[/] the `voting` protocol is not installed yet; the session names it",
            highlight=False,
        )
    for note in result.notes:
        console.print(f"  [yellow]note:[/] {note}", highlight=False)
    console.print(f"wrote {output} and {side}")
