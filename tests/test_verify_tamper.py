"""`accord verify` on the real SQLite file: passes when intact, names the entry when not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli import app
from tests.conftest import FIXTURES, run
from tests.helpers import run_file

runner = CliRunner()


@pytest.fixture
def finished(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "ledger.db"
    _, result, _ = run(run_file(FIXTURES / "tiny.yaml", db))
    return db, result.session_id


def _verify(db: Path, session: str) -> tuple[int, str]:
    out = runner.invoke(app, ["verify", session, "--ledger", str(db)])
    return out.exit_code, out.output


def test_verify_passes_on_a_finished_session(finished: tuple[Path, str]) -> None:
    db, session = finished
    code, output = _verify(db, session)
    assert code == 0, output
    assert "chain intact" in output


@pytest.mark.parametrize("target", ["move", "call", "ended"])
def test_one_changed_byte_fails_naming_the_entry(finished: tuple[Path, str], target: str) -> None:
    db, session = finished
    with sqlite3.connect(db) as conn:
        idx, envelope = conn.execute(
            "SELECT idx, envelope FROM entries WHERE session_id=? AND kind=? ORDER BY idx LIMIT 1 OFFSET 1"
            if target != "ended"
            else "SELECT idx, envelope FROM entries WHERE session_id=? AND kind=? ORDER BY idx",
            (session, target),
        ).fetchone()
        # Change one byte inside the body: a digit of the round number, or a letter.
        pos = envelope.index('"round":') + len('"round":')
        old = envelope[pos]
        new = "9" if old != "9" else "8"
        tampered = envelope[:pos] + new + envelope[pos + 1 :]
        assert len(tampered.encode()) == len(envelope.encode())
        conn.execute(
            "UPDATE entries SET envelope=? WHERE session_id=? AND idx=?", (tampered, session, idx)
        )
    code, output = _verify(db, session)
    assert code == 1
    assert f"entry {idx} " in output
    assert "FAILED" in output


def test_removed_entry_is_detected(finished: tuple[Path, str]) -> None:
    db, session = finished
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM entries WHERE session_id=? AND idx=5", (session,))
    code, output = _verify(db, session)
    assert code == 1
    assert "entry 6" in output


def test_forged_signature_is_detected(finished: tuple[Path, str]) -> None:
    """Re-chaining a rewritten entry does not help: the signature no longer matches."""
    import json

    import rfc8785

    from accord.ledger.chain import entry_hash

    db, session = finished
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT idx, envelope, prev_hash FROM entries WHERE session_id=? ORDER BY idx", (session,)
        ).fetchall()
        target = next(i for i, (_, env, _) in enumerate(rows) if json.loads(env)["kind"] == "move")
        prev = rows[target][2]
        for i in range(target, len(rows)):
            idx, env, _ = rows[i]
            doc = json.loads(env)
            if i == target:
                doc["body"]["move"]["justification"]["rationale"] = "rewritten by the operator"
            raw = rfc8785.dumps(doc)
            digest = entry_hash(prev, raw)
            conn.execute(
                "UPDATE entries SET envelope=?, prev_hash=?, entry_hash=? WHERE session_id=? AND idx=?",
                (raw.decode(), prev, digest, session, idx),
            )
            prev = digest
    code, output = _verify(db, session)
    assert code == 1
    assert f"entry {rows[target][0]} " in output and "bad signature" in output
