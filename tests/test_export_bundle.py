"""`accord export` bundles, checked offline by `accord verify DIR`: intact passes, and a
changed, removed, reordered or inserted line is named with what happened to it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli import app
from accord.cli_ledger import ledger_app
from accord.ledger import Identity, Signer
from accord.ledger.bundle import BundleError, export_bundle, verify_bundle
from accord.ledger.store import Ledger
from tests.conftest import FIXTURES, ROOT, run
from tests.helpers import run_file

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("bundle")
    _, result, _ = run(run_file(FIXTURES / "tiny.yaml", base / "l.db"))
    out = runner.invoke(ledger_app, ["export", result.session_id, "-o", str(base / "b"), "--ledger", str(base / "l.db")])
    assert out.exit_code == 0, out.output
    return base / "b", result.session_id


@pytest.fixture
def bundle(exported: tuple[Path, str], tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(exported[0], copy)
    return copy


def _lines(bundle: Path) -> list[bytes]:
    return (bundle / "entries.jsonl").read_bytes().split(b"\n")[:-1]


def _write(bundle: Path, lines: list[bytes]) -> None:
    (bundle / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


def _kinds(lines: list[bytes]) -> list[tuple[str, str]]:
    return [(json.loads(line)["actor"], json.loads(line)["kind"]) for line in lines]


def test_an_exported_bundle_verifies_offline(exported: tuple[Path, str], tmp_path: Path) -> None:
    bundle, session = exported
    files = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert {"README.txt", "entries.jsonl", "leaves.txt", "keys.json", "manifest.json"} <= set(files)
    assert any(f.startswith("checkpoints/") for f in files)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == "accord-bundle/v1" and manifest["session"] == session
    assert "accord verify" in (bundle / "README.txt").read_text()
    report = verify_bundle(bundle)
    assert report.ok, report.problems
    assert report.entries == manifest["entries"] == report.covered
    assert len(report.cosigners) == 3
    # In a subprocess, in a directory holding nothing but the bundle: no database needed.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copytree(bundle, alone / "b")
    proc = subprocess.run(
        [sys.executable, "-m", "accord.cli", "verify", "b"],
        cwd=alone, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok b (session" in proc.stdout
    assert sorted(p.name for p in alone.iterdir()) == ["b"]


def test_a_changed_line_is_named(bundle: Path) -> None:
    lines = _lines(bundle)
    k = [i for i, (_, kind) in enumerate(_kinds(lines)) if kind == "move"][2]
    lines[k] = lines[k].replace(b'"round":', b'"round":1', 1)
    _write(bundle, lines)
    first = verify_bundle(bundle).first
    assert first is not None and (first.idx, first.what) == (k, "changed")
    assert "bad signature" in first.reason


def test_a_removed_line_is_named(bundle: Path) -> None:
    lines = _lines(bundle)
    k = 9
    del lines[k]
    _write(bundle, lines)
    first = verify_bundle(bundle).first
    assert first is not None and (first.idx, first.what) == (k, "removed"), first


def test_a_removed_last_line_is_named(bundle: Path) -> None:
    lines = _lines(bundle)
    _write(bundle, lines[:-1])
    first = verify_bundle(bundle).first
    assert first is not None and (first.idx, first.what) == (len(lines) - 1, "removed")


def test_reordered_lines_of_different_senders_are_named(bundle: Path) -> None:
    lines = _lines(bundle)
    kinds = _kinds(lines)
    # A call and the delegate's answer: sequence numbers alone cannot see this swap.
    k = next(i for i in range(1, len(lines) - 1) if kinds[i][0] == "chair" and kinds[i + 1][0] != "chair")
    lines[k], lines[k + 1] = lines[k + 1], lines[k]
    _write(bundle, lines)
    first = verify_bundle(bundle).first
    assert first is not None and (first.idx, first.what) == (k, "reordered")
    # Without leaves.txt the signed checkpoint still catches it, and bounds where.
    (bundle / "leaves.txt").unlink()
    report = verify_bundle(bundle)
    assert report.first is not None and report.first.what == "diverged"


def test_an_inserted_line_is_named(bundle: Path) -> None:
    lines = _lines(bundle)
    sid = json.loads(lines[0])["session"]
    # A replayed copy of an earlier line...
    replayed = [*lines[:12], lines[4], *lines[12:]]
    _write(bundle, replayed)
    first = verify_bundle(bundle).first
    assert first is not None and (first.idx, first.what) == (12, "inserted")
    assert "copy of entry 4" in first.reason
    # ...and a forged one, signed by a key that is not the delegate's.
    actor = json.loads(lines[3])["actor"]
    forged = Signer(Identity.generate(actor), sid, next_seq=50).seal("move", {"round": 1}).canonical()
    _write(bundle, [*lines[:7], forged, *lines[7:]])
    first = verify_bundle(bundle).first
    assert first is not None and (first.idx, first.what) == (7, "inserted")
    # ...and one appended after the end.
    _write(bundle, [*lines, forged])
    first = verify_bundle(bundle).first
    assert first is not None and (first.idx, first.what) == (len(lines), "inserted")


def test_altered_leaves_or_checkpoints_are_reported(bundle: Path) -> None:
    leaves = (bundle / "leaves.txt").read_text().splitlines()
    leaves[3] = "00" * 32
    (bundle / "leaves.txt").write_text("\n".join(leaves) + "\n")
    report = verify_bundle(bundle)
    assert not report.ok and report.first is not None and report.first.what == "checkpoint"
    assert "leaves.txt does not hash" in report.first.reason
    (bundle / "leaves.txt").unlink()
    assert verify_bundle(bundle).ok
    (path,) = (bundle / "checkpoints").iterdir()
    path.write_text(path.read_text().replace("accord/", "accord/x", 1))
    report = verify_bundle(bundle)
    assert not report.ok and report.first is not None and report.first.what == "checkpoint"


def test_verify_cli_on_a_bundle(bundle: Path) -> None:
    out = runner.invoke(app, ["verify", str(bundle)])
    assert out.exit_code == 0, out.output
    assert "chain intact" in out.output and "cosigned by" in out.output
    lines = _lines(bundle)
    lines[5], lines[6] = lines[6], lines[5]
    _write(bundle, lines)
    out = runner.invoke(app, ["verify", str(bundle)])
    assert out.exit_code == 1
    assert "FAILED" in out.output and "entry 5 (line 6)" in out.output and "reordered" in out.output


def test_export_refuses_a_non_empty_directory(exported: tuple[Path, str], tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "something").write_text("x")

    async def go() -> None:
        async with await Ledger.open(exported[0].parent / "l.db", create=False) as ledger:
            with pytest.raises(BundleError, match="not an empty directory"):
                await export_bundle(ledger, exported[1], target)

    run(go())
    assert sorted(p.name for p in target.iterdir()) == ["something"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".taken")]
