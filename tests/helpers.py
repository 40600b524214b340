"""Shared helpers for tests: run a session from a file into a ledger, read it back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accord.ledger import Entry, Ledger
from accord.session import SessionResult, run_session
from accord.session_plan import SessionPlan, load_plan


async def run_file(path: Path, ledger_path: Path, **kwargs: Any) -> tuple[SessionPlan, SessionResult, list[Entry]]:
    plan, _ = load_plan(path)
    return await run_plan(plan, ledger_path, **kwargs)


async def run_plan(plan: SessionPlan, ledger_path: Path, **kwargs: Any) -> tuple[SessionPlan, SessionResult, list[Entry]]:
    ledger = await Ledger.open(ledger_path)
    try:
        result = await run_session(plan, ledger, **kwargs)
        rows = await ledger.entries(result.session_id)
    finally:
        await ledger.close()
    return plan, result, rows


def moves_of(rows: list[Entry]) -> list[tuple[str, str, Any]]:
    """What was said, without signatures or clocks: for determinism checks."""
    return [
        (row.actor, row.kind, row.body)
        for row in rows
        if row.kind not in ("session.open",)
    ]
