"""A session process killed with SIGKILL leaves a ledger that verifies; `accord resume`
finishes it with the same outcome as an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

SESSION = next(p for p in EXAMPLES if p.parent.name == "riverside")
ACCORD = [sys.executable, "-m", "accord.cli"]


def _env(**extra: str) -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(ROOT)} | extra


def _accord(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ACCORD, *args], env=_env(**env), capture_output=True, text=True)


def _outcome(stdout: str) -> tuple[object, str, int]:
    doc = json.loads(stdout)
    return doc["agreement"], doc["reason"], doc["round"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, str, int]:
    ledger = tmp_path_factory.mktemp("clean") / "l.db"
    out = _accord("run", str(SESSION), "--json", "--ledger", str(ledger))
    assert out.returncode == 0, out.stderr
    return _outcome(out.stdout)


def _resume_and_check(ledger: Path, expected: tuple[object, str, int]) -> None:
    verified = _accord("verify", "latest", "--ledger", str(ledger))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    resumed = _accord("resume", "latest", "--json", "--ledger", str(ledger))
    if "has already finished" in resumed.stderr or "has no opening entry" in resumed.stderr:
        return  # killed after the end, or before anything was recorded: nothing to resume
    assert resumed.returncode == 0, resumed.stderr
    assert _outcome(resumed.stdout) == expected
    after = _accord("verify", "latest", "--ledger", str(ledger))
    assert after.returncode == 0, after.stdout
    log = _accord("log", "latest", "--json", "--ledger", str(ledger))
    moves = [json.loads(line) for line in log.stdout.splitlines()]
    keyed = [(m["actor"], m["round"], m["move"], json.dumps(m["offer"], sort_keys=True)) for m in moves if m["kind"] == "move"]
    assert len(keyed) == len(set(keyed)), "a move was recorded twice"


@pytest.mark.parametrize("after_entries", [1, 2, 7, 18, 40, 75, 110, 150, 190, 208])
def test_killed_at_an_entry_count_resumes_to_the_same_outcome(
    after_entries: int, uninterrupted: tuple[object, str, int], tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    crashed = _accord(
        "run", str(SESSION), "--json", "--ledger", str(ledger),
        ACCORD_CRASH_AFTER_ENTRIES=str(after_entries), ACCORD_LEDGER_FLUSH_S="0",
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    _resume_and_check(ledger, uninterrupted)


@pytest.mark.parametrize("seed", range(4))
def test_killed_from_outside_at_a_random_moment(seed: int, uninterrupted: tuple[object, str, int], tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    proc = subprocess.Popen(
        [*ACCORD, "run", str(SESSION), "--json", "--ledger", str(ledger)],
        env=_env(ACCORD_LEDGER_FLUSH_S="0"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    # Wait for the ledger to appear, then kill somewhere in the run.
    deadline = time.monotonic() + 30
    while not ledger.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(random.Random(seed).uniform(0.0, 0.6))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not ledger.exists():
        pytest.fail("the session never started")
    _resume_and_check(ledger, uninterrupted)


def test_resume_refuses_a_finished_session(tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    assert _accord("run", str(SESSION), "--json", "--ledger", str(ledger)).returncode == 0
    out = _accord("resume", "latest", "--ledger", str(ledger))
    assert out.returncode == 2 and "already finished" in out.stderr


def test_resume_without_keys_says_where_it_looked(tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    _accord("run", str(SESSION), "--json", "--ledger", str(ledger), ACCORD_CRASH_AFTER_ENTRIES="30", ACCORD_LEDGER_FLUSH_S="0")
    out = _accord("resume", "latest", "--ledger", str(ledger), "--keys", str(tmp_path / "elsewhere"))
    assert out.returncode == 2 and "no keys for session" in out.stderr
