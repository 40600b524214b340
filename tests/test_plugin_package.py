"""A protocol written outside Accord plugs in by entry point and runs through `accord run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import FIXTURES, ROOT

PLUGIN = ROOT / "examples" / "plugin-protocol"


def test_example_plugin_installs_and_runs_through_the_cli(tmp_path: Path) -> None:
    target = tmp_path / "site"
    # Installed into a private folder, not the test environment, so no other test sees it.
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(PLUGIN)],
        check=True,
    )
    doc = yaml.safe_load((FIXTURES / "tiny.yaml").read_text())
    doc["protocol"] = {"name": "ultimatum", "proposer": "parents"}
    session = tmp_path / "session.yaml"
    session.write_text(yaml.safe_dump(doc))
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}
    accord = [sys.executable, "-m", "accord.cli"]

    listed = subprocess.run([*accord, "protocols"], env=env, capture_output=True, text=True, check=True)
    assert "ultimatum" in listed.stdout

    ledger = tmp_path / "l.db"
    out = subprocess.run(
        [*accord, "run", str(session), "--json", "--ledger", str(ledger)],
        env=env, capture_output=True, text=True, check=True,
    )
    result = json.loads(out.stdout)
    assert result["reason"] in (
        "every delegate accepted the ultimatum",
        *(f"{d} rejected the ultimatum" for d in ("neighbours", "shops")),
    )
    verified = subprocess.run(
        [*accord, "verify", result["session"], "--ledger", str(ledger)], env=env, capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_without_the_plugin_the_protocol_is_unknown(tmp_path: Path) -> None:
    doc = yaml.safe_load((FIXTURES / "tiny.yaml").read_text())
    doc["protocol"] = {"name": "ultimatum"}
    session = tmp_path / "session.yaml"
    session.write_text(yaml.safe_dump(doc))
    out = subprocess.run(
        [sys.executable, "-m", "accord.cli", "run", str(session), "--ledger", str(tmp_path / "l.db")],
        capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 2
    assert "unknown protocol 'ultimatum'" in out.stderr
    assert "accord.protocols" in out.stderr
