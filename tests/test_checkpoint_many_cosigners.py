"""A session whose final checkpoint has more cosigners than one signed note may carry
(150 delegates, `note.MAX_SIGNATURES` = 100): stored, exported, proved and verified as
one checkpoint spread over several notes, each a valid C2SP note on its own."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from accord.ledger import Identity, Ledger, Signer
from accord.ledger.bundle import export_bundle, verify_bundle
from accord.ledger.checkpoint import Checkpoint, CheckpointError, session_verifiers, verify_checkpoint
from accord.ledger.envelope import Envelope
from accord.ledger.note import MAX_SIGNATURES, NoteError, parse_note, verify_note
from accord.ledger.proof import build_entry_proof, verify_entry_proof
from tests.conftest import run

DELEGATES = 150


def _session() -> tuple[str, list[Envelope], Identity, list[Identity]]:
    sid = f"many-{secrets.token_hex(4)}"
    chair = Identity.generate("chair")
    delegates = [Identity.generate(f"d{n:03d}") for n in range(DELEGATES)]
    keys = {"chair": chair.public_key, **{d.actor: d.public_key for d in delegates}}
    cs = Signer(chair, sid)
    envs = [cs.seal("session.open", {"keys": keys})]
    for n, d in enumerate(delegates[:5]):
        envs.append(cs.seal("call", {"round": 1, "to": d.actor}))
        envs.append(Signer(d, sid).seal("move", {"round": 1, "n": n}))
    return sid, envs, chair, delegates


def test_150_cosigners_in_the_database_a_bundle_and_a_proof(ledger_location: str, tmp_path: Path) -> None:
    async def go() -> None:
        sid, envs, chair, delegates = _session()
        async with await Ledger.open(ledger_location) as ledger:
            await ledger.create_session(sid, "t", "test", "sha256:0")
            await ledger.append(sid, envs)
            sealed = await ledger.seal(sid, chair, delegates)
            assert len(sealed.signatures) == 1 + DELEGATES
            # Several notes, each within the limit, each headed by the chair's signature.
            assert len(sealed.notes) == 2
            keys = {"chair": chair.public_key, **{d.actor: d.public_key for d in delegates}}
            log, witnesses = session_verifiers(sid, keys)
            for note in sealed.notes:
                _, sigs = parse_note(note)
                assert len(sigs) <= MAX_SIGNATURES and sigs[0].name == log.name
                assert verify_note(note, [log]) == [log]  # any signed-note verifier accepts it
            # Stored as one checkpoint: read back with every signature.
            (stored,) = await ledger.checkpoints(sid)
            assert stored == sealed and set(stored.signatures) == set(sealed.signatures)
            assert len(verify_checkpoint(stored, log, witnesses).cosigners) == DELEGATES
            report = await ledger.verify(sid)
            assert report.ok, report.problems
            assert len(report.cosigners) == DELEGATES and report.covered == len(envs)
            # Cosignatures arriving again (a retry) add nothing.
            again = await ledger.save_checkpoint(sid, sealed)
            assert len(again.signatures) == 1 + DELEGATES
            # An entry proof embeds the whole checkpoint and verifies offline.
            proof = await build_entry_proof(ledger, sid, 3)
            checked = verify_entry_proof(proof.text)
            assert len(checked.cosigners) == DELEGATES
            # An exported bundle verifies without the database.
            await export_bundle(ledger, sid, tmp_path / "bundle")
        bundle = verify_bundle(tmp_path / "bundle")
        assert bundle.ok, bundle.problems
        assert len(bundle.cosigners) == DELEGATES

    run(go())


def test_a_bad_cosignature_in_a_later_note_fails_the_checkpoint() -> None:
    sid, envs, chair, delegates = _session()
    from accord.ledger.checkpoint import cosign, origin_for, sign_checkpoint
    from accord.ledger.merkle import MerkleTree, leaf_hash

    tree = MerkleTree([leaf_hash(e.canonical()) for e in envs])
    cp = sign_checkpoint(origin_for(sid), tree.size, tree.root(), chair)
    for d in delegates:
        cp = cosign(cp, d)
    first, second = cp.notes
    # Corrupt the last cosignature (in the second note): the checkpoint must fail.
    line = second.rstrip("\n").rsplit("\n", 1)[1]
    name, b64 = line[2:].split(" ")
    bad_line = f"\u2014 {name} {b64[:-8]}{'A' * 7 + b64[-1]}"
    tampered = first + second.replace(line, bad_line)
    keys = {"chair": chair.public_key, **{d.actor: d.public_key for d in delegates}}
    log, witnesses = session_verifiers(sid, keys)
    with pytest.raises(CheckpointError, match="bad cosignature/v1 signature"):
        verify_checkpoint(tampered, log, witnesses)
    # Notes of different tree heads cannot be joined into one checkpoint.
    other = sign_checkpoint(origin_for(sid), 1, tree.root(1), chair)
    with pytest.raises(CheckpointError, match="note 2 of the checkpoint has another text"):
        Checkpoint.parse(first + other.text)
    # One note alone still refuses more than MAX_SIGNATURES lines.
    too_many = cp.body + "\n" + "".join(s.line for s in cp.signatures)
    with pytest.raises(NoteError, match="more than"):
        parse_note(too_many)
