"""Metrics of a session recorded in a ledger: the I/O side of `protocols.metrics`.

The ledger is the source of truth: the `session.open` entry carries the whole session
spec, from which the value models are rebuilt; the `ended` entry carries the outcome;
the `move` entries are the messages the delegates sent.
"""

from __future__ import annotations

from accord.ledger import Entry, Ledger, LedgerError
from accord.session_file import SessionFileError, SessionSpec
from accord.session_plan import SessionPlan, build_plan
from constituencies import ValueModel
from protocols.events import Ended
from protocols.metrics import SessionMetrics, compute_metrics


def models_of(spec: SessionSpec) -> dict[str, ValueModel]:
    """Each delegate's value model, in the spec's order (as `build_plan` builds them)."""
    agenda = spec.agenda_model
    return {
        c.id: ValueModel(c, spec.assessments, agenda.issue_contexts) for c in spec.constituencies
    }


def plan_models(plan: SessionPlan) -> dict[str, ValueModel]:
    return {p.id: p.model for p in plan.participants}


def metrics_from_entries(session_id: str, rows: list[Entry]) -> SessionMetrics:
    """Metrics from a session's ledger entries (any order of reading, idx order expected)."""
    opened = next((r for r in rows if r.kind == "session.open"), None)
    if opened is None:
        raise LedgerError(f"session {session_id!r} has no session.open entry")
    ended_row = next((r for r in rows if r.kind == "ended"), None)
    if ended_row is None:
        raise LedgerError(
            f"session {session_id!r} has not ended (no 'ended' entry): no metrics yet"
        )
    spec = SessionSpec.model_validate(opened.body["spec"])
    try:
        models = plan_models(build_plan(spec, f"ledger:{session_id}"))
    except SessionFileError:
        # A strategy or protocol plug-in that is no longer installed does not change the
        # value models, and metrics need nothing else.
        models = models_of(spec)
    ended = Ended.model_validate(ended_row.body)
    messages = sum(1 for r in rows if r.kind == "move")
    return compute_metrics(
        spec.agenda_model, models, ended, messages=messages, session_id=session_id
    )


async def metrics_for_session(ledger: Ledger, session_id: str) -> SessionMetrics:
    """Read a finished session back from the ledger and compute its metrics."""
    rows = await ledger.entries(session_id, kinds=["session.open", "ended", "move"])
    if not rows:
        raise LedgerError(f"no entries for session {session_id!r} in {ledger.location}")
    return metrics_from_entries(session_id, rows)
