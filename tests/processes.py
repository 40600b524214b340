"""Helpers for tests that run the chair and delegates as real processes over a broker."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from accord.ledger import Entry, Ledger
from tests.conftest import ROOT, run

ACCORD = [sys.executable, "-m", "accord.cli"]


def accord_env(**extra: str) -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(ROOT)} | extra


def start_chair(path: Path, session: str, url: str, ledger: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*ACCORD, "chair", str(path), "--session", session, "--bus", url, "--ledger", str(ledger), "--json", "--wait", "60"],
        env=accord_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def start_delegate(path: Path, session: str, url: str, who: str, keys: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*ACCORD, "delegate", str(path), "--session", session, "--bus", url, "--as", who, "--keys", str(keys)],
        env=accord_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def peek_entries(ledger: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(actor, kind, body) of what a running chair has written so far; [] before it has."""
    if not ledger.exists():
        return []
    with sqlite3.connect(ledger) as conn:
        try:
            rows = conn.execute("SELECT actor, kind, envelope FROM entries ORDER BY idx").fetchall()
        except sqlite3.OperationalError:
            return []
    return [(a, k, json.loads(e)["body"]) for a, k, e in rows]


def latest_session_rows(ledger: Path) -> tuple[str, list[Entry]]:
    """The id and entries of the ledger's latest session."""

    async def go() -> tuple[str, list[Entry]]:
        async with await Ledger.open(ledger) as store:
            info = await store.find_session("latest")
            return info.id, list(await store.entries(info.id))

    return run(go())
