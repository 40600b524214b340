"""Ratification: outcomes the mandate reserves for the constituents' approval."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from accord.ledger import verify_entries
from accord.session_file import load_session
from accord.session_plan import build_plan
from accord.ratification import RecordedRatifier
from tests.conftest import FIXTURES, ROOT, run
from tests.helpers import run_plan


def _tiny_with_rule(tmp_path: Path, decisions: list[dict[str, Any]] | None = None) -> Path:
    doc = yaml.safe_load((FIXTURES / "tiny.yaml").read_text())
    # The shopkeepers want a say before their delegate agrees to late opening hours.
    doc["constituencies"][1]["mandate"]["ratification"] = [
        {"outcomes": [{"hours": "late"}], "reason": "late hours mean staff working nights"}
    ]
    if decisions is not None:
        doc["ratifications"] = decisions
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _late(offer: dict[str, str]) -> bool:
    return offer.get("hours") == "late"


def test_recorded_rejection_keeps_the_delegate_off_those_outcomes(tmp_path: Path) -> None:
    path = _tiny_with_rule(
        tmp_path, [{"delegate": "shops", "outcome": {"hours": "late"}, "decision": "reject", "by": ["sh-1", "sh-2"]}]
    )
    spec, _ = load_session(path)
    _, result, rows = run(run_plan(build_plan(spec, str(path)), tmp_path / "l.db"))
    assert verify_entries(result.session_id, rows).ok
    sent = [r.body["move"]["offer"] for r in rows if r.kind == "move" and r.actor == "shops"]
    assert not any(_late(o) for o in sent)
    ratifications = [r.body["ratification"] for r in rows if r.kind == "ratification"]
    assert ratifications and all(not r["approved"] and r["source"] == "session-file" for r in ratifications)
    assert ratifications[0]["by"] == ["sh-1", "sh-2"]
    if result.ended.agreement:
        assert not _late(result.ended.agreement)


def test_recorded_approval_lets_it_through_and_is_logged_once(tmp_path: Path) -> None:
    path = _tiny_with_rule(
        tmp_path, [{"delegate": "shops", "outcome": {"hours": "late"}, "decision": "approve"}]
    )
    spec, _ = load_session(path)
    _, result, rows = run(run_plan(build_plan(spec, str(path)), tmp_path / "l.db"))
    approvals = [r.body["ratification"] for r in rows if r.kind == "ratification"]
    assert approvals and all(a["approved"] for a in approvals)
    keys = [tuple(sorted(a["outcome"].items())) for a in approvals]
    assert len(keys) == len(set(keys)), "each outcome is asked about once"


def test_without_a_decision_or_a_person_it_is_not_ratified(tmp_path: Path) -> None:
    path = _tiny_with_rule(tmp_path)
    spec, _ = load_session(path)
    _, _, rows = run(run_plan(build_plan(spec, str(path)), tmp_path / "l.db"))
    answers = [r.body["ratification"] for r in rows if r.kind == "ratification"]
    assert answers and all(a["source"] == "none" and not a["approved"] for a in answers)


def test_asking_function_is_used_for_undecided_outcomes(tmp_path: Path) -> None:
    path = _tiny_with_rule(tmp_path)
    spec, _ = load_session(path)
    asked: list[dict[str, str]] = []

    def ask(delegate: str, outcome: dict[str, str], rule: Any, utility: float) -> tuple[bool, list[str], str]:
        asked.append(outcome)
        return True, ["sh-2"], "asked in a test"

    plan = build_plan(spec, str(path), RecordedRatifier([], ask))
    _, _, rows = run(run_plan(plan, tmp_path / "l.db"))
    assert asked and all(_late(o) for o in asked)
    answers = [r.body["ratification"] for r in rows if r.kind == "ratification"]
    assert [a["outcome"] for a in answers] == asked
    assert all(a["source"] == "prompt" and a["by"] == ["sh-2"] for a in answers)


def test_bad_decision_is_a_clear_file_error(tmp_path: Path) -> None:
    path = _tiny_with_rule(tmp_path, [{"delegate": "nobody", "outcome": {"hours": "late"}, "decision": "approve"}])
    out = subprocess.run(
        [sys.executable, "-m", "accord.cli", "run", str(path), "--ledger", str(tmp_path / "l.db")],
        capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 2 and "ratifications[0].delegate" in out.stderr


def test_the_cli_pauses_and_asks_at_a_real_terminal(tmp_path: Path) -> None:
    path = _tiny_with_rule(tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # the child: `accord run` on a real pseudo-terminal
        os.environ["PYTHONPATH"] = str(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "accord.cli", "run", str(path), "--ledger", str(tmp_path / "l.db")])
    seen = b""
    answered = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if seen.count(b"Do the constituents approve?") > answered:
                os.write(fd, b"n\n")
                answered += 1
            if seen.count(b"Who decided") > answered - 1 and seen.endswith(b": "):
                os.write(fd, b"sh-1\n")
    finally:
        _, status = os.waitpid(pid, 0)
    text = seen.decode(errors="replace")
    assert answered >= 1, text
    assert "Ratification needed: shops" in text
    assert os.waitstatus_to_exitcode(status) == 0, text
