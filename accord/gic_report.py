"""Group-informed consensus of the statement a session chose, next to the best achievable.

A session imported from a Polis conversation (`accord import polis DIR -o FILE`) has one
issue whose options are the conversation's statements, and a sidecar `<stem>.gic.json`
beside FILE holding Polis's group-informed consensus (GIC) of every statement on the
agenda (see `accord.importers.polis`: GIC(c) = product over opinion groups of
(agrees + 1) / (votes + 2)). Once a statement-selecting protocol (`voting`, `habermas`)
has run it, the ledger's `ended` entry says which statement was chosen: the single
option of `Ended.agreement` on the sidecar's issue, or else `Ended.chosen` when it names
a statement (the protocols' `chosen` is usually a candidate id such as `c07`, which is why
the agreement comes first).

`gic_report(session_file, ledger, session_id)` reads both and returns a `GicReport`: the
chosen statement and its GIC, the statement with the highest GIC on the agenda (what
was achievable in this session) and the ratio of the two (1.0: the chosen statement is
a best one). It checks that the ledger's session was run from this session file (the
content hash recorded in its `session.open` entry), so a sidecar is never read against
another session's outcome.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accord.importers import sidecar_path
from accord.ledger import Ledger, LedgerError
from accord.session_file import SessionFileError, load_session
from constituencies.hashing import content_hash
from protocols.events import Ended

SIDECAR_KIND = "accord-import/polis-gic"


class GicReportError(ValueError):
    """The sidecar or the ledger cannot give a GIC report (which file or session, and why)."""


@dataclass(frozen=True)
class GicReport:
    """The chosen statement's group-informed consensus next to the best on the agenda."""

    chosen: str | None  # option id of the chosen statement; None: the session chose none
    chosen_gic: float | None
    best: str  # the agenda's statement with the highest GIC (ties: lowest comment id)
    best_gic: float
    ratio: float  # chosen_gic / best_gic; 0.0 when nothing was chosen
    session_id: str = ""
    topic: str = ""
    rank: int | None = None  # 1 + how many agenda statements have a strictly higher GIC
    statements: int = 0  # statements on the agenda
    mean_gic: float = 0.0  # mean GIC over the agenda: what a uniformly random pick expects
    reason: str = ""  # the protocol's reason for the end

    @property
    def random_ratio(self) -> float:
        """The ratio a uniformly random statement would get on average."""
        return self.mean_gic / self.best_gic if self.best_gic > 0 else 0.0


def load_gic_sidecar(session_file: str | Path) -> dict[str, Any]:
    """The `.gic.json` written by `accord import polis` beside `session_file`."""
    path = sidecar_path(Path(session_file), "gic")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GicReportError(
            f"{path}: missing; `accord import polis DIR -o {Path(session_file).name}` writes it"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GicReportError(f"{path}: cannot read as JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != SIDECAR_KIND:
        raise GicReportError(f"{path}: not a Polis GIC sidecar (kind is not {SIDECAR_KIND!r})")
    gic = doc.get("gic")
    if not isinstance(gic, dict) or not gic or not all(
        isinstance(v, (int, float)) for v in gic.values()
    ):
        raise GicReportError(f"{path}: field 'gic' must map statement ids to numbers")
    if not isinstance(doc.get("issue"), str):
        raise GicReportError(f"{path}: field 'issue' is missing")
    return doc


def chosen_statement(ended: Ended, issue: str, statements: Mapping[str, float]) -> str | None:
    """The statement a session chose: the agreement's option on `issue`, else `ended.chosen`
    if it is a statement id; None if neither names a statement."""
    if ended.agreement is not None and ended.agreement.get(issue) in statements:
        return ended.agreement[issue]
    if ended.chosen is not None and ended.chosen in statements:
        return ended.chosen
    return None


def report_from(sidecar: Mapping[str, Any], ended: Ended, session_id: str = "") -> GicReport:
    """A report from a sidecar document and the session's `Ended` event (no I/O)."""
    gic: dict[str, float] = {k: float(v) for k, v in sidecar["gic"].items()}
    best_gic = max(gic.values())
    best = min((o for o, g in gic.items() if g == best_gic), key=_comment_order)
    chosen = chosen_statement(ended, sidecar["issue"], gic)
    chosen_gic = gic[chosen] if chosen is not None else None
    ratio = 0.0 if chosen_gic is None else (chosen_gic / best_gic if best_gic > 0 else 1.0)
    rank = None if chosen_gic is None else 1 + sum(g > chosen_gic for g in gic.values())
    return GicReport(
        chosen=chosen,
        chosen_gic=chosen_gic,
        best=best,
        best_gic=best_gic,
        ratio=ratio,
        session_id=session_id,
        topic=str(sidecar.get("topic", "")),
        rank=rank,
        statements=len(gic),
        mean_gic=sum(gic.values()) / len(gic),
        reason=ended.reason,
    )


def _comment_order(option: str) -> tuple[int, str]:
    digits = option[1:]
    return (int(digits), option) if digits.isdigit() else (1 << 62, option)


async def gic_report_async(session_file: str | Path, ledger: Ledger, session_id: str) -> GicReport:
    """As `gic_report`, on an open ledger. `session_id` may be an id, a prefix or 'latest'."""
    sidecar = load_gic_sidecar(session_file)
    try:
        info = await ledger.find_session(session_id)
    except LedgerError as exc:
        raise GicReportError(str(exc)) from None
    rows = await ledger.entries(info.id, kinds=["session.open", "ended"])
    opened = next((r for r in rows if r.kind == "session.open"), None)
    ended_row = next((r for r in rows if r.kind == "ended"), None)
    if ended_row is None:
        raise GicReportError(f"session {info.id} in {ledger.location} has not ended (no 'ended' entry)")
    recorded = opened.body.get("spec_hash") if opened is not None else None
    if recorded is not None:
        try:
            spec, _ = load_session(session_file)
        except SessionFileError as exc:
            raise GicReportError(str(exc)) from None
        if content_hash(spec) != recorded:
            raise GicReportError(
                f"session {info.id} was not run from {session_file} (its recorded spec hash differs)"
            )
    return report_from(sidecar, Ended.model_validate(ended_row.body), info.id)


def gic_report(session_file: str | Path, ledger: str | Path, session_id: str) -> GicReport:
    """Read the `.gic.json` sidecar of `session_file` and the `ended` entry of `session_id`
    in the ledger at `ledger` (a SQLite path or a database URL); see the module docstring."""

    async def go() -> GicReport:
        try:
            store = await Ledger.open(ledger, create=False)
        except LedgerError as exc:
            raise GicReportError(str(exc)) from None
        try:
            return await gic_report_async(session_file, store, session_id)
        finally:
            await store.close()

    return asyncio.run(go())
