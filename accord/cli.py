"""The `accord` command: run sessions, read their trails, verify their records."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from accord.bus.base import SUPPORTED_SCHEMES
from accord.delegate_runner import ResumeError
from accord.distributed import HostError, host_chair, host_delegates, launch
from accord.keystore import KeyStore, KeyStoreError, default_keys_dir
from accord.ledger import DEFAULT_LEDGER, Ledger, LedgerError
from accord.local_session import NO_BUS, LocalSessionError, refuse_unrunnable, run_local
from accord.ledger_worker import LedgerWorker
from accord.session import ResumeRefused, new_session_id, resume_session, run_session
from accord.session_file import SessionFileError, SessionSpec, session_schema
from accord.session_plan import build_plan, load_plan
from accord.trail import read_trail
from accord.views import LiveProgress, outcome_tables

app = typer.Typer(
    help="Accord: AI delegates negotiate for their constituencies; every move signed and traced to values.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

KeysOpt = Annotated[
    Path | None,
    typer.Option(
        "--keys",
        envvar="ACCORD_KEYS",
        help="Directory of the actors' private keys (default: beside the ledger file).",
    ),
]

LedgerOpt = Annotated[
    str,
    typer.Option(
        "--ledger",
        "-l",
        envvar="ACCORD_LEDGER",
        help="Ledger database: a SQLite file path or a database URL.",
    ),
]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


async def _open_existing(location: str) -> Ledger:
    try:
        return await Ledger.open(location, create=False)
    except LedgerError as exc:
        _fail(str(exc))
        raise


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Session file (YAML or JSON).")],
    ledger: LedgerOpt = DEFAULT_LEDGER,
    bus: Annotated[
        str,
        typer.Option(
            help="Bus URL: memory:// (default) or mqtt://host:port; or none: no bus, the protocol and "
            "delegates called directly in this process (every message still signed and chained into "
            "the ledger; signatures checked by `accord verify`, not on receipt).",
        ),
    ] = "memory://",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live view.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    keys: KeysOpt = None,
    per_process: Annotated[
        int, typer.Option(help="With an mqtt:// bus: delegates per process (one connection each).")
    ] = 1,
    model: Annotated[
        str | None,
        typer.Option(help="Make the delegates language models, e.g. anthropic:claude-sonnet-4-5."),
    ] = None,
    ledger_process: Annotated[
        bool,
        typer.Option(
            help="With --bus none: sign, chain and store the messages in a second process while "
            "this one negotiates (the same ledger, its work on another core; starting it takes "
            "about half a second)."
        ),
    ] = False,
) -> None:
    """Run a deliberation session to its outcome, with live progress."""
    interactive = sys.stdin.isatty() and not as_json
    try:
        plan, assessed = _plan_with_models(file, model, _ask_constituents if interactive else None)
    except SessionFileError as exc:
        _fail(str(exc))
        raise
    if bus != NO_BUS and urlsplit(bus).scheme.lower() not in SUPPORTED_SCHEMES:
        _fail(f"--bus {bus!r}: use memory:// (the default), mqtt://host:port, or {NO_BUS} (no bus)")
    if bus == NO_BUS:
        try:
            refuse_unrunnable(plan)
        except LocalSessionError as exc:
            _fail(str(exc))
    elif ledger_process:
        _fail(f"--ledger-process is for --bus {NO_BUS}; on a bus every delegate signs its own messages")
    asks = interactive and any(p.constituency.mandate.ratification for p in plan.participants)
    if asks:
        quiet = True  # prompts and a live view do not share a terminal well
        if ledger_process:
            # The ledger process holds the ledger's write lock from a session's start to
            # its end: not for as long as a person takes to answer.
            _fail("--ledger-process is for sessions that ask no one: this one asks constituents to ratify")

    keystore = KeyStore(keys or default_keys_dir(ledger))

    def start(store: Ledger) -> Any:
        if bus == NO_BUS:
            return lambda progress: run_local(
                plan, store, progress=progress, keystore=keystore,
                extra_opening={"model_assessments": assessed} if assessed else None,
                worker=worker,
            )
        if bus.startswith("mqtt"):
            # Over a broker, every delegate runs in a process of its own.
            return lambda progress: launch(
                plan, file, store, bus, keystore, per_process=per_process, progress=progress
            )
        return lambda progress: run_session(
            plan, store, bus_url=bus, progress=progress, keystore=keystore,
            extra_opening={"model_assessments": assessed} if assessed else None,
            # A prompt stops the clock for everyone: no turn times out meanwhile.
            turn_timeout_s=365 * 24 * 3600.0 if asks else None,
        )

    worker: LedgerWorker | None = None

    async def go() -> Any:
        nonlocal worker
        store = await Ledger.open(ledger)
        try:
            if ledger_process:
                worker = LedgerWorker()
            result = await _with_live_view(plan, quiet or as_json, start(store))
            return result, await store.entries(result.session_id, kinds=["move"])
        except (HostError, LocalSessionError, LedgerError) as exc:
            _fail(str(exc))
            raise
        finally:
            try:
                await store.close()
            finally:
                if worker is not None:
                    worker.close()

    result, moves = asyncio.run(go())
    _print_result(plan, result, as_json, moves)


@app.command()
def chair(
    file: Annotated[Path, typer.Argument(help="Session file (YAML or JSON).")],
    bus: Annotated[str, typer.Option(help="Broker URL, mqtt://[user:pass@]host:port.")],
    session: Annotated[str | None, typer.Option(help="Session id (default: a new one, printed).")] = None,
    ledger: LedgerOpt = DEFAULT_LEDGER,
    keys: KeysOpt = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for every delegate to connect.")] = 120.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    check_workers: Annotated[
        int,
        typer.Option(
            min=0,
            envvar="ACCORD_CHECK_WORKERS",
            help="Processes that check the delegates' signatures while the chair goes on (0: in the chair's process).",
        ),
    ] = 0,
) -> None:
    """Run the chair (and the ledger) for delegates that run in their own processes."""
    # The chair reads it from the environment (`accord.chair.CHECK_WORKERS_ENV`).
    os.environ["ACCORD_CHECK_WORKERS"] = str(check_workers)
    try:
        plan, _ = load_plan(file)
    except SessionFileError as exc:
        _fail(str(exc))
        raise
    session_id = session or new_session_id(plan.spec.id)
    if not as_json:
        err.print(f"session [bold]{session_id}[/]: waiting for delegates on {bus}")
    keystore = KeyStore(keys or default_keys_dir(ledger))

    async def go() -> Any:
        store = await Ledger.open(ledger)
        try:
            return await host_chair(plan, store, session_id, bus, keystore, wait_s=wait)
        except HostError as exc:
            _fail(str(exc))
            raise
        finally:
            await store.close()

    _print_result(plan, asyncio.run(go()), as_json)


@app.command()
def delegate(
    file: Annotated[Path, typer.Argument(help="The session file the chair runs.")],
    session: Annotated[str, typer.Option(help="The session id the chair printed.")],
    bus: Annotated[str, typer.Option(help="Broker URL, mqtt://[user:pass@]host:port.")],
    as_: Annotated[list[str], typer.Option("--as", help="Delegate id to run (repeat for several).")],
    keys: Annotated[Path, typer.Option(envvar="ACCORD_KEYS", help="Where this host keeps its keys.")] = Path(
        "accord.keys"
    ),
    host: Annotated[str | None, typer.Option(help="Name of this host on the presence topic.")] = None,
) -> None:
    """Run one or more delegates for a session whose chair runs elsewhere."""
    try:
        # The whole file is validated and hashed (the hash must match the chair's
        # opening), but only this host's delegates are built.
        plan, _ = load_plan(file, only=as_)
    except SessionFileError as exc:
        _fail(str(exc))
        raise
    try:
        asyncio.run(host_delegates(plan, session, as_, bus, KeyStore(keys), host))
    except (HostError, ResumeError) as exc:
        _fail(str(exc))


def _plan_with_models(file: Path, model: str | None, ask: Any) -> tuple[Any, Any]:
    """Load, apply `--model` and `assess_missing:`, build, and check every model's key:
    a missing key is one clear error now, not a failure mid-session."""
    from accord.cli_llm import check_model_credentials, prepare_llm_spec
    from accord.ratification import RecordedRatifier
    from accord.session_file import load_session

    spec, _ = load_session(file)
    spec, assessed = prepare_llm_spec(spec, file, model)
    plan = build_plan(spec, str(file), RecordedRatifier(spec.ratifications, ask))
    problems = check_model_credentials(plan)
    if problems:
        raise SessionFileError(file, problems)
    return plan, assessed


def _ask_constituents(
    delegate: str, outcome: dict[str, str], rule: Any, utility: float
) -> tuple[bool, list[str], str]:
    """Pause the session and ask the constituents present at this terminal."""
    offer = ", ".join(f"{k}={v}" for k, v in outcome.items())
    console.rule(f"[bold yellow]Ratification needed: {delegate}")
    console.print(
        f"The delegate for [bold]{delegate}[/] would agree to [cyan]{offer}[/] "
        f"(utility {utility:+.3f}).\nIts mandate reserves this for its constituents: {rule.describe()}.",
        highlight=False,
    )
    approved = typer.confirm("Do the constituents approve?", default=False)
    who = typer.prompt("Who decided (constituent ids, comma-separated; empty if not recorded)", default="")
    by = [w.strip() for w in who.split(",") if w.strip()]
    return approved, by, "answered at the prompt"


async def _with_live_view(plan: Any, quiet: bool, start: Any) -> Any:
    if quiet or not console.is_terminal:
        return await start(None)
    live_state = LiveProgress(plan)
    with Live(live_state.render(), console=console, refresh_per_second=12) as live:

        def on_event(event: Any) -> None:
            live_state(event)
            live.update(live_state.render())

        return await start(on_event)


def _print_result(plan: Any, result: Any, as_json: bool, moves: Any = ()) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "session": result.session_id,
                    "agreement": result.ended.agreement,
                    "reason": result.ended.reason,
                    "round": result.ended.round,
                    "utilities": {
                        r.delegate: r.breakdown.utility if r.breakdown else None
                        for r in result.delegates
                    },
                    "entries": result.entries,
                    "ledger": result.ledger,
                },
                indent=2,
            )
        )
        return
    from accord.cli_llm import delegate_labels, llm_usage

    console.print(outcome_tables(plan, result, delegate_labels(plan)))
    usage = llm_usage(moves)
    if usage.total.moves:
        for delegate, used in usage.per_delegate.items():
            console.print(f"LLM {delegate}: {used.describe()}", highlight=False)
        console.print(f"LLM total: {usage.total.describe()} ({usage.price_source})", highlight=False)
    console.print(_headline_metrics(plan, result), highlight=False)


def _headline_metrics(plan: Any, result: Any) -> str:
    """One line of the standard measures; `accord metrics` has them all."""
    from accord.metrics_report import plan_models
    from protocols.metrics import compute_metrics

    m = compute_metrics(plan.agenda, plan_models(plan), result.ended, messages=0)
    parts = []
    if m.pareto.distance is not None:
        parts.append(
            "Pareto-optimal" if m.pareto.optimal else f"{m.pareto.distance:.3f} from the Pareto frontier"
        )
    if m.nash is not None:
        parts.append("at the Nash point" if m.nash.reached else f"{m.nash.distance:.3f} from the Nash point")
    if m.welfare.utilitarian_optimum is not None:
        parts.append(f"welfare {m.welfare.utilitarian:+.3f} of {m.welfare.utilitarian_optimum:+.3f} possible")
    parts.append(f"Gini {m.fairness.gini_constituencies:.3f} across constituencies")
    return f"Measures: {'; '.join(parts)}.  All: accord metrics {result.session_id}"


@app.command()
def resume(
    session: Annotated[str, typer.Argument(help="Session id, unique prefix, or 'latest'.")],
    ledger: LedgerOpt = DEFAULT_LEDGER,
    bus: Annotated[str, typer.Option(help="Bus URL.")] = "memory://",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live view.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    keys: KeysOpt = None,
) -> None:
    """Finish a session whose process died: rebuild its state from the ledger and go on."""
    keystore = KeyStore(keys or default_keys_dir(ledger))

    async def go() -> Any:
        store = await _open_existing(ledger)
        try:
            info = await store.find_session(session)
            opening = await store.entries(info.id, kinds=["session.open"])
            if not opening:
                raise ResumeRefused(f"session {info.id} has no opening entry; nothing to resume")
            plan = build_plan(SessionSpec.model_validate(opening[0].body["spec"]), f"ledger:{info.id}")
            result = await _with_live_view(
                plan,
                quiet or as_json,
                lambda progress: resume_session(store, info.id, keystore, bus_url=bus, progress=progress),
            )
            return plan, result
        except (LedgerError, ResumeRefused, KeyStoreError, ResumeError) as exc:
            _fail(str(exc))
            raise
        finally:
            await store.close()

    plan, result = asyncio.run(go())
    _print_result(plan, result, as_json)


@app.command()
def log(
    session: Annotated[str, typer.Argument(help="Session id, unique prefix, or 'latest'.")] = "latest",
    ledger: LedgerOpt = DEFAULT_LEDGER,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    card: Annotated[
        str | None, typer.Option("--card", help="Only the moves citing this values card (by card id).")
    ] = None,
    delegate: Annotated[
        str | None, typer.Option("--delegate", help="Only what this delegate (or the chair) signed.")
    ] = None,
    constituency: Annotated[
        str | None,
        typer.Option("--constituency", help="Only what this constituency's delegate signed (its id is the delegate's)."),
    ] = None,
) -> None:
    """The session's trail: each move with the cards that justified it."""
    from accord.cli_ledger import log_entries

    if delegate is not None and constituency is not None and delegate != constituency:
        _fail(f"--delegate {delegate!r} and --constituency {constituency!r} name different actors")
    actor = delegate if delegate is not None else constituency

    async def go() -> tuple[str, list[Any]]:
        store = await _open_existing(ledger)
        try:
            info = await store.find_session(session)
            return info.id, await log_entries(store, info.id, card=card, actor=actor)
        except LedgerError as exc:
            _fail(str(exc))
            raise
        finally:
            await store.close()

    session_id, rows = asyncio.run(go())
    items = read_trail(rows)
    if as_json:
        for item in items:
            sys.stdout.write(item.model_dump_json() + "\n")
        return
    console.print(f"[bold]{session_id}[/]: {len(rows)} entries")
    for item in items:
        offer = ", ".join(f"{k}={v}" for k, v in (item.offer or {}).items())
        rnd = f"r{item.round:<3}" if item.round else "    "
        if item.kind == "move":
            style = "green" if item.move == "accept" else "cyan"
            console.print(
                f"{rnd} [bold]{item.actor}[/] [{style}]{item.move}[/] {offer}  "
                f"utility {item.utility:+.3f}",
                highlight=False,
            )
            for c in item.cited:
                console.print(f"       {c.contribution:+.3f}  {c.title} [dim]({c.card})[/]", highlight=False)
            console.print(f"       [italic]{item.rationale}[/]", highlight=False)
        elif item.kind == "refusal":
            console.print(
                f"{rnd} [bold]{item.actor}[/] [yellow]refused by mandate[/]: {item.move} {offer}: {item.detail}",
                highlight=False,
            )
        elif item.kind == "ratification":
            console.print(
                f"{rnd} [bold]{item.actor}[/] [magenta]ratification[/] {offer}: {item.detail}",
                highlight=False,
            )
        elif item.kind == "ended":
            verdict = f"agreement {offer}" if item.offer else "no agreement"
            console.print(f"[bold]ended[/]: {verdict} ({item.detail})", highlight=False)
        else:
            console.print(f"{rnd} [red]{item.kind}[/] {item.actor}: {item.detail}", highlight=False)


@app.command()
def verify(
    session: Annotated[
        str | None,
        typer.Argument(
            help="Session id, prefix or 'latest'; all sessions if omitted; or a bundle "
            "directory written by `accord export`."
        ),
    ] = None,
    ledger: LedgerOpt = DEFAULT_LEDGER,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-w", help="Processes checking signatures (default: one per 20,000 entries, up to the CPUs)."
        ),
    ] = None,
) -> None:
    """Check every signature, sequence number, link and signed checkpoint; exit 1 naming the
    first bad entry and what happened to it (changed, removed, reordered, inserted)."""
    from accord.cli_ledger import render_report, verify_bundle_dir
    from accord.ledger.bundle import is_bundle

    if session is not None and is_bundle(session):
        if not verify_bundle_dir(Path(session), console, workers=workers):
            raise typer.Exit(1)
        return

    async def go() -> list[Any]:
        store = await _open_existing(ledger)
        try:
            targets = [await store.find_session(session)] if session else await store.sessions()
            return [await store.verify(s.id, workers=workers) for s in targets]
        except LedgerError as exc:
            _fail(str(exc))
            raise
        finally:
            await store.close()

    reports = asyncio.run(go())
    bad = sum(not render_report(report, console) for report in reports)
    if bad:
        raise typer.Exit(1)


@app.command()
def sessions(ledger: LedgerOpt = DEFAULT_LEDGER) -> None:
    """List the sessions in a ledger."""

    async def go() -> list[Any]:
        store = await _open_existing(ledger)
        try:
            return await store.sessions()
        finally:
            await store.close()

    table = Table()
    for col in ("session", "title", "started", "status", "entries", "agreement"):
        table.add_column(col)
    for s in asyncio.run(go()):
        agreement = (s.outcome or {}).get("agreement")
        table.add_row(
            s.id,
            s.title,
            s.created_at[:19],
            s.status,
            str(s.entries),
            ", ".join(f"{k}={v}" for k, v in agreement.items()) if agreement else "—",
        )
    console.print(table)


def _fields(model: type[Any]) -> str:
    parts = []
    for name, field in model.model_fields.items():
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        parts.append(f"{name}={default}")
    return ", ".join(parts) or "—"


@app.command("protocols")
def list_protocols() -> None:
    """The protocols installed (built-in and plug-ins), with their parameters."""
    from accord import plugins

    table = Table(title="Protocols (entry-point group accord.protocols)", show_lines=True)
    for col in ("name", "description", "parameters", "moves", "source"):
        table.add_column(col)
    for name, cls in sorted(plugins.protocols().items()):
        moves = ", ".join(m.model_fields["kind"].default for m in cls.moves)
        table.add_row(name, cls.description, _fields(cls.Params), moves, cls.citation)
    console.print(table)


@app.command("strategies")
def list_strategies() -> None:
    """The delegate strategies installed (built-in and plug-ins), with their options."""
    from accord import plugins

    table = Table(title="Strategies (entry-point group accord.strategies)", show_lines=True)
    for col in ("name", "description", "options"):
        table.add_column(col)
    for name, cls in sorted(plugins.strategies().items()):
        table.add_row(name, cls.description, _fields(cls.Options))
    console.print(table)


@app.command()
def schema() -> None:
    """Print the JSON Schema of session files, for editors and validators."""
    print(json.dumps(session_schema(), indent=2))


def _mount_sub_apps() -> None:
    from accord.cli_import import import_app
    from accord.cli_metrics import metrics_app
    from accord.cli_llm import elicit_app, llm_app
    from accord.cli_values import values_app

    app.add_typer(import_app, name="import", help="Import standard domains into session files.")
    app.add_typer(metrics_app, name="metrics")
    app.add_typer(values_app, name="values", help="Values cards: show, check, draw, import and export moral graphs.")
    app.add_typer(elicit_app, name="elicit")
    app.add_typer(llm_app, name="llm")
    from accord.cli_broker import broker_config
    from accord.cli_ledger import export, proof, verify_proof

    app.command("broker-config")(broker_config)
    app.command("proof")(proof)
    app.command("verify-proof")(verify_proof)
    app.command("export")(export)


_mount_sub_apps()


def main() -> None:  # pragma: no cover - console-script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
