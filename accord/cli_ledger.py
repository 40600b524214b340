"""`accord proof`, `accord verify-proof`, `accord export`: the signed log, offline; and
`log_entries`, the indexed selection behind `accord log --card/--delegate/--constituency`.

The commands are plain functions, registered on the sub-app `ledger_app` and exported
so the main app can register them at top level too::

    from accord.cli_ledger import export, proof, verify_proof
    app.command("proof")(proof)
    app.command("verify-proof")(verify_proof)
    app.command("export")(export)

`render_report` prints a `VerifyReport` (database or bundle) the way `accord verify` does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from accord.ledger import DEFAULT_LEDGER, Entry, Ledger, LedgerError, VerifyReport
from accord.ledger.bundle import BundleError, export_bundle, verify_bundle
from accord.ledger.proof import ProofFileError, build_entry_proof, verify_entry_proof

__all__ = [
    "export",
    "ledger_app",
    "log_entries",
    "proof",
    "render_report",
    "verify_bundle_dir",
    "verify_proof",
]

ledger_app = typer.Typer(
    help="The signed log offline: entry proofs and exported bundles.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

LedgerOpt = Annotated[
    str,
    typer.Option(
        "--ledger",
        "-l",
        envvar="ACCORD_LEDGER",
        help="Ledger database: a SQLite file path or a database URL.",
    ),
]


async def log_entries(
    store: Ledger, session_id: str, *, card: str | None = None, actor: str | None = None
) -> list[Entry]:
    """The entries `accord log` shows: all of them, or only the moves citing values card
    `card` (`Ledger.entries_by_card`, the card index) and/or the messages signed by
    `actor` (`Ledger.entries_by_actor`; a delegate's actor id is its constituency id),
    read through the indexes rather than filtered from the whole log. The session's
    ``session.open`` entry is kept first, so card titles still resolve.
    Raises `LedgerError` naming an unknown card or actor."""
    if card is None and actor is None:
        return await store.entries(session_id)
    selected: list[Entry] | None = None
    if card is not None:
        selected = await store.entries_by_card(session_id, card)
        if not selected:
            cited = sorted(await store.cards(session_id))
            known = ", ".join(cited[:10]) + (", ..." if len(cited) > 10 else "") if cited else "none"
            raise LedgerError(f"no move in session {session_id!r} cites card {card!r} (cards cited: {known})")
    if actor is not None:
        by_actor = await store.entries_by_actor(session_id, actor)
        if not by_actor:
            participants = ", ".join(sorted(await store.session_keys(session_id)))
            raise LedgerError(
                f"session {session_id!r} has no entry signed by {actor!r} (participants: {participants})"
            )
        if selected is None:
            selected = by_actor
        else:
            mine = {e.idx for e in by_actor}
            selected = [e for e in selected if e.idx in mine]
    opening = await store.entries(session_id, kinds=["session.open"])
    head = [e for e in opening if all(e.idx != s.idx for s in selected or [])]
    return head + (selected or [])


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _pins(keys: list[str]) -> dict[str, str]:
    pins = {}
    for item in keys:
        actor, sep, key = item.partition("=")
        if not sep or not actor or not key:
            _fail(f"--key {item!r}: expected ACTOR=BASE64KEY")
        pins[actor] = key
    return pins


async def _entry_index(store: Ledger, session_id: str, entry: str) -> int:
    if entry.isdigit():
        return int(entry)
    actor, sep, seq = entry.rpartition(":")
    if not sep or not seq.isdigit():
        raise LedgerError(f"entry {entry!r}: give an entry index (e.g. 12) or ACTOR:SEQ (e.g. residents:3)")
    for row in await store.entries_by_actor(session_id, actor):
        if row.seq == int(seq):
            return row.idx
    raise LedgerError(f"session {session_id!r} has no message {seq} from {actor!r}")


def proof(
    session: Annotated[str, typer.Argument(help="Session id, unique prefix, or 'latest'.")],
    entry: Annotated[str, typer.Argument(help="Entry index (see `accord log`), or ACTOR:SEQ.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Proof file to write (.tlog-proof).")],
    ledger: LedgerOpt = DEFAULT_LEDGER,
) -> None:
    """Write a self-contained proof that one entry is in the session's signed log."""

    async def go() -> tuple[str, int, str, int]:
        try:
            store = await Ledger.open(ledger, create=False)
        except LedgerError as exc:
            _fail(str(exc))
            raise
        try:
            info = await store.find_session(session)
            index = await _entry_index(store, info.id, entry)
            built = await build_entry_proof(store, info.id, index)
            return info.id, index, built.text, built.checkpoint.size
        except (LedgerError, ProofFileError) as exc:
            _fail(str(exc))
            raise
        finally:
            await store.close()

    session_id, index, text, size = asyncio.run(go())
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console.print(
        f"wrote {output}: entry {index} of {session_id}, against the checkpoint of {size} entries",
        highlight=False,
    )
    console.print(f"check it anywhere with: accord verify-proof {output.name}", highlight=False)


def verify_proof(
    file: Annotated[Path, typer.Argument(help="A proof file written by `accord proof`.")],
    key: Annotated[
        list[str] | None,
        typer.Option("--key", "-k", help="ACTOR=BASE64KEY you trust (repeatable), e.g. chair=..."),
    ] = None,
) -> None:
    """Check a proof file with nothing else: no database, no network."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        _fail(f"{file}: {exc.strerror or exc}")
        raise
    try:
        report = verify_entry_proof(data, trusted=_pins(key or []))
    except ProofFileError as exc:
        console.print(f"[bold red]FAILED[/] {file}: {exc}", highlight=False)
        raise typer.Exit(1) from None
    env = report.envelope
    console.print(
        f"[green]ok[/] {file}: entry {report.index} of session {report.session_id} "
        f"({report.kind} by {report.actor}, message {report.seq}) is in its log of "
        f"{report.tree_size} entries",
        highlight=False,
    )
    cosigned = ", ".join(report.cosigners) if report.cosigners else "nobody"
    console.print(
        f"  checkpoint signed by the chair (key ID {report.chair_key_id}), cosigned by {cosigned}",
        highlight=False,
    )
    if report.pinned:
        console.print(f"  keys of {', '.join(report.pinned)} match the ones you trust", highlight=False)
    else:
        console.print(
            f"  [yellow]the keys come from the proof itself[/]: compare the chair's key {report.chair_key} "
            "with one you got elsewhere, or pass --key chair=KEY",
            highlight=False,
        )
    move = env.get("body", {}).get("move") if isinstance(env.get("body"), dict) else None
    if isinstance(move, dict):
        cited = ", ".join(
            c.get("card", "?") for c in move.get("justification", {}).get("cited", []) if isinstance(c, dict)
        )
        console.print(f"  {move.get('kind')} {move.get('offer')} citing {cited or 'no card'}", highlight=False)


def export(
    session: Annotated[str, typer.Argument(help="Session id, unique prefix, or 'latest'.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to create.")],
    ledger: LedgerOpt = DEFAULT_LEDGER,
) -> None:
    """Export a session's signed log as a bundle that `accord verify DIR` checks offline."""

    async def go() -> tuple[str, Path, int]:
        try:
            store = await Ledger.open(ledger, create=False)
        except LedgerError as exc:
            _fail(str(exc))
            raise
        try:
            info = await store.find_session(session)
            path = await export_bundle(store, info.id, output)
            return info.id, path, info.entries
        except (LedgerError, BundleError) as exc:
            _fail(str(exc))
            raise
        finally:
            await store.close()

    session_id, path, n = asyncio.run(go())
    console.print(f"exported {session_id} ({n} entries) to {path}/", highlight=False)
    console.print(f"check it anywhere with: accord verify {path}", highlight=False)


ledger_app.command("proof")(proof)
ledger_app.command("verify-proof")(verify_proof)
ledger_app.command("export")(export)


def render_report(report: VerifyReport, out: Console, *, source: str | None = None, lines: bool = False) -> bool:
    """Print a verification report as `accord verify` does; return whether it passed."""
    name = source or report.session_id

    def where(idx: int, actor: str, kind: str) -> str:
        line = f" (line {idx + 1})" if lines else ""
        return f"entry {idx}{line} ({kind} by {actor})" if actor else f"entry {idx}{line}"

    if report.ok:
        signed = ""
        if report.covered:
            cosigned = ", ".join(report.cosigners) if report.cosigners else "nobody"
            signed = f"; checkpoint of {report.covered} signed by the chair, cosigned by {cosigned}"
        out.print(
            f"[green]ok[/] {name}: {report.entries} entries, "
            f"{report.signatures_checked} signatures, chain intact{signed}",
            highlight=False,
        )
    else:
        first = report.problems[0]
        out.print(
            f"[bold red]FAILED[/] {name}: {where(first.idx, first.actor, first.kind)}: "
            f"{first.what}: {first.reason}",
            highlight=False,
        )
        for more in report.problems[1:5]:
            out.print(
                f"  then {where(more.idx, more.actor, more.kind)}: {more.what}: {more.reason}",
                highlight=False,
            )
        if len(report.problems) > 5:
            out.print(f"  ... and {len(report.problems) - 5} more", highlight=False)
    for note in report.notes:
        out.print(f"  [yellow]note[/]: {note}", highlight=False)
    return report.ok


def verify_bundle_dir(directory: Path, out: Console, *, workers: int | None = None) -> bool:
    """`accord verify DIR`: check an exported bundle; print the report; return whether it passed."""
    try:
        report = verify_bundle(directory, workers=workers)
    except BundleError as exc:
        _fail(str(exc))
        raise
    return render_report(report, out, source=f"{directory} (session {report.session_id})", lines=True)


if __name__ == "__main__":  # pragma: no cover - `python -m accord.cli_ledger ...`
    ledger_app()
