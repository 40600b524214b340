"""`accord proof` writes a C2SP tlog-proof file that `accord verify-proof` checks with
nothing else; every kind of tampering with the file makes it fail."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import rfc8785
from typer.testing import CliRunner

from accord.cli_ledger import ledger_app
from accord.ledger import Identity, Ledger, Signer
from accord.ledger.checkpoint import origin_for, sign_checkpoint
from accord.ledger.merkle import MerkleTree, leaf_hash
from accord.ledger.proof import PROOF_HEADER, EntryProof, ProofFileError, verify_entry_proof
from tests.conftest import FIXTURES, ROOT, run
from tests.helpers import run_file

runner = CliRunner()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list]:
    base = tmp_path_factory.mktemp("proof")
    _, result, rows = run(run_file(FIXTURES / "tiny.yaml", base / "l.db"))
    return base / "l.db", result.session_id, rows


def _proof(session: tuple[Path, str, list], entry: str, out: Path) -> str:
    db, sid, _ = session
    res = runner.invoke(ledger_app, ["proof", sid, entry, "-o", str(out), "--ledger", str(db)])
    assert res.exit_code == 0, res.output
    return out.read_text()


def _verify_alone(text: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Verify in a subprocess whose working directory holds only the proof file."""
    alone = tmp_path / "alone"
    if alone.exists():
        shutil.rmtree(alone)
    alone.mkdir()
    (alone / "entry.tlog-proof").write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "accord.cli_ledger", "verify-proof", "entry.tlog-proof", *args],
        cwd=alone, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert sorted(p.name for p in alone.iterdir()) == ["entry.tlog-proof"]
    return proc


def test_a_proof_verifies_alone_in_an_empty_directory(session, tmp_path: Path) -> None:  # noqa: ANN001
    _, sid, rows = session
    k = next(r.idx for r in rows if r.kind == "move")
    text = _proof(session, str(k), tmp_path / "p.tlog-proof")
    lines = text.split("\n")
    assert lines[0] == PROOF_HEADER and lines[1].startswith("extra ") and lines[2] == f"index {k}"
    assert f"\n\n{origin_for(sid)}\n{len(rows)}\n" in text  # the checkpoint, verbatim
    proc = _verify_alone(text, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"ok entry.tlog-proof: entry {k} of session {sid}" in " ".join(proc.stdout.split())
    # Pinning the real chair key passes; another key fails.
    chair = json.loads(rows[0].envelope)["body"]["keys"]["chair"]
    assert _verify_alone(text, tmp_path, "--key", f"chair={chair}").returncode == 0
    other = Identity.generate("chair").public_key
    assert _verify_alone(text, tmp_path, "--key", f"chair={other}").returncode == 1


def test_proofs_of_the_first_and_last_entries_and_by_actor_and_seq(session, tmp_path: Path) -> None:  # noqa: ANN001
    _, sid, rows = session
    for ref, idx in (("0", 0), (str(len(rows) - 1), len(rows) - 1)):
        report = verify_entry_proof(_proof(session, ref, tmp_path / f"{ref}.tlog-proof"))
        assert report.index == idx and report.tree_size == len(rows)
    move = next(r for r in rows if r.kind == "move")
    report = verify_entry_proof(_proof(session, f"{move.actor}:{move.seq}", tmp_path / "m.tlog-proof"))
    assert (report.index, report.actor, report.kind) == (move.idx, move.actor, "move")
    assert len(report.cosigners) == 3


def _with_extension(text: str, change) -> str:  # noqa: ANN001
    proof = EntryProof.parse(text)
    ext = json.loads(proof.extra)
    change(ext)
    return EntryProof(proof.index, proof.hashes, proof.checkpoint, rfc8785.dumps(ext)).text


def _tampered(text: str) -> dict[str, str]:
    lines = text.split("\n")
    proof = EntryProof.parse(text)
    out = {}
    out["entry changed"] = _with_extension(
        text, lambda e: e.update(entry=e["entry"].replace('"round":', '"round":1', 1))
    )
    out["index changed"] = text.replace(f"\nindex {proof.index}\n", f"\nindex {proof.index + 1}\n")
    out["proof hash dropped"] = "\n".join(lines[:3] + lines[4:])
    h = base64.b64decode(lines[3])
    out["proof hash changed"] = text.replace(lines[3], base64.b64encode(bytes([h[0] ^ 1]) + h[1:]).decode())
    root_line = text.split("\n\n")[1].split("\n")[2]
    out["checkpoint root changed"] = text.replace(root_line, base64.b64encode(bytes(32)).decode())
    out["chair signature removed"] = "\n".join(
        line for line in lines if not (line.startswith("— ") and line.split(" ")[1] == origin_for(proof_sid(text)))
    )
    out["keys swapped"] = _with_extension(
        text, lambda e: e["keys"].update(chair=Identity.generate("chair").public_key)
    )
    out["opening changed"] = _with_extension(
        text, lambda e: e["opening"].update(entry=e["opening"]["entry"].replace("tiny", "tinY", 1))
    )
    out["header changed"] = text.replace(PROOF_HEADER, "c2sp.org/tlog-proof@v2", 1)
    out["no extension"] = "\n".join([lines[0], *lines[2:]])
    out["garbage"] = "not a proof at all"
    return out


def proof_sid(text: str) -> str:
    return json.loads(EntryProof.parse(text).extra)["session"]


def test_every_kind_of_tampering_fails(session, tmp_path: Path) -> None:  # noqa: ANN001
    _, _, rows = session
    k = next(r.idx for r in rows if r.kind == "move")
    text = _proof(session, str(k), tmp_path / "p.tlog-proof")
    variants = _tampered(text)
    for name, bad in variants.items():
        with pytest.raises(ProofFileError):
            verify_entry_proof(bad)
            pytest.fail(f"tampered proof verified: {name}")
    # The same through the command, in an empty directory, for a few of them.
    for name in ("entry changed", "checkpoint root changed", "keys swapped"):
        proc = _verify_alone(variants[name], tmp_path)
        assert proc.returncode == 1 and "FAILED" in proc.stdout, (name, proc.stdout)


def test_a_wholly_forged_session_passes_only_until_the_chair_key_is_pinned(session, tmp_path: Path) -> None:  # noqa: ANN001
    """Someone can forge a consistent proof of a fake session with their own keys; the
    proof says which chair key vouches for it, and pinning the real one rejects it."""
    _, sid, rows = session
    ids = {a: Identity.generate(a) for a in ("chair", "mallory")}
    keys = {a: i.public_key for a, i in ids.items()}
    opening = Signer(ids["chair"], sid).seal("session.open", {"keys": keys}).canonical()
    fake = Signer(ids["mallory"], sid).seal("move", {"round": 1}).canonical()
    tree = MerkleTree([leaf_hash(opening), leaf_hash(fake)])
    cp = sign_checkpoint(origin_for(sid), 2, tree.root(), ids["chair"])
    forged = EntryProof.build(sid, 1, fake, tree.inclusion_proof(1), cp, keys, opening, tree.inclusion_proof(0, 2))
    assert verify_entry_proof(forged.text).chair_key == keys["chair"]
    real_chair = json.loads(rows[0].envelope)["body"]["keys"]["chair"]
    with pytest.raises(ProofFileError, match="not the one you trust"):
        verify_entry_proof(forged.text, trusted={"chair": real_chair})


def test_no_proof_without_a_checkpoint(tmp_path: Path) -> None:
    from tests.test_ledger_tamper import build_session

    db = tmp_path / "l.db"

    async def go() -> str:
        sid, envs, _ = build_session(2)
        async with await Ledger.open(db) as ledger:
            await ledger.create_session(sid, "t", "test", "sha256:0")
            await ledger.append(sid, envs)
        return sid

    sid = run(go())
    res = runner.invoke(ledger_app, ["proof", sid, "3", "-o", str(tmp_path / "p"), "--ledger", str(db)])
    assert res.exit_code == 2 and "no checkpoint" in res.output
    assert not (tmp_path / "p").exists()
