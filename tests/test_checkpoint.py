"""Signed notes, checkpoints, cosignatures and consistency between checkpoints.

Conformance: the signed-note example key and note of the reference implementation
(golang.org/x/mod/sumdb/note, note_test.go), reproduced byte for byte; the timestamp of
the tlog-cosignature spec's example cosignature line.
"""

from __future__ import annotations

import base64
import secrets

import pytest

from accord.bus import open_bus
from accord.bus.topics import chair_topic
from accord.ledger import (
    Checkpoint,
    CheckpointError,
    Identity,
    Ledger,
    LedgerError,
    cosign,
    sign_checkpoint,
    verify_checkpoint,
    verify_checkpoint_consistency,
)
from accord.ledger.checkpoint import cosigner_name, origin_for, session_verifiers
from accord.ledger.merkle import MerkleTree, leaf_hash
from accord.ledger.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    NoteError,
    NoteSignature,
    NoteVerifier,
    key_id,
    parse_note,
    parse_vkey,
    sign_note,
    verify_note,
)
from tests.conftest import FIXTURES, run
from tests.test_ledger_tamper import build_session

# golang.org/x/mod/sumdb/note note_test.go
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY_DATA = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"  # type byte 0x01 || Ed25519 seed
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"


def _go_identity() -> Identity:
    raw = base64.b64decode(GO_SKEY_DATA)
    assert raw[0] == SIG_ED25519
    return Identity.from_private_bytes("PeterNeumann", raw[1:])


def test_signed_note_reference_vector_byte_for_byte() -> None:
    verifier = parse_vkey(GO_VKEY)
    ident = _go_identity()
    assert verifier.public_key == base64.b64decode(ident.public_key)
    assert verifier.key_id.hex() == "c74f20a3" == key_id("PeterNeumann", SIG_ED25519, verifier.public_key).hex()
    assert verifier.vkey == GO_VKEY
    sig = sign_note(GO_TEXT, "PeterNeumann", ident.private_key)
    assert GO_TEXT + "\n" + sig.line == GO_NOTE
    # Signed by the identity (libsodium): the same bytes.
    assert sign_note(GO_TEXT, "PeterNeumann", ident) == sig
    assert verify_note(GO_NOTE, [verifier]) == [verifier]
    with pytest.raises(NoteError, match="bad ed25519 signature"):
        verify_note(GO_NOTE.replace("cryptography", "cryptographY"), [verifier])


def test_note_verification_rules() -> None:
    verifier = parse_vkey(GO_VKEY)
    other = NoteVerifier("someone.example/else", base64.b64decode(Identity.generate("x").public_key))
    # Unknown signatures are ignored, but a note needs one from a known key.
    with pytest.raises(NoteError, match="no signature from a known key"):
        verify_note(GO_NOTE, [other])
    # Same name, different key ID: unknown, ignored.
    text, (sig,) = parse_note(GO_NOTE)
    renamed = NoteSignature("PeterNeumann", b"\0\0\0\0", sig.signature)
    assert verify_note((text, [renamed, sig]), [verifier]) == [verifier]
    for bad in (
        GO_NOTE.replace("\n\n", "\n"),  # no blank line
        GO_NOTE[:-1],  # no final newline
        GO_NOTE.replace("— ", "- "),  # not an em dash
        GO_NOTE.replace("PeterNeumann x08", "Peter+Neumann x08"),  # '+' in key name
        GO_NOTE.replace("If you", "If\tyou"),  # control character
    ):
        with pytest.raises(NoteError):
            verify_note(bad, [verifier])
    with pytest.raises(NoteError):
        parse_vkey(GO_VKEY.replace("c74f20a3", "c74f20a4"))


def test_cosignature_timestamp_of_the_spec_example() -> None:
    # c2sp.org/tlog-cosignature: "— witness.example.com/w1 jWbPPwAAAABkGFDL..." with time 1679315147
    line = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
    _, (sig,) = parse_note("x\n\n" + line)
    assert sig.timestamp == 1679315147


def _tree(n: int) -> MerkleTree:
    return MerkleTree(leaf_hash(f"entry {i}".encode()) for i in range(n))


def test_checkpoint_format_and_signatures() -> None:
    chair, alice, bob = (Identity.generate(a) for a in ("chair", "alice", "bob"))
    sid = "s-1"
    tree = _tree(10)
    cp = sign_checkpoint(origin_for(sid), 10, tree.root(), chair)
    lines = cp.text.split("\n")
    assert lines[:3] == ["accord/s-1", "10", base64.b64encode(tree.root()).decode()]
    assert lines[3] == "" and lines[4].startswith("— accord/s-1 ")
    raw = base64.b64decode(lines[4].split(" ")[2])
    assert raw[:4] == key_id("accord/s-1", SIG_ED25519, base64.b64decode(chair.public_key))
    cp = cosign(cosign(cp, alice, timestamp=1_700_000_000), bob)
    assert Checkpoint.parse(cp.text) == cp and Checkpoint.parse(cp.text).text == cp.text
    cosig = Checkpoint.parse(cp.text).signatures[1]
    assert cosig.name == cosigner_name(sid, "alice") == "accord/s-1/alice"
    assert cosig.key_id == key_id("accord/s-1/alice", SIG_COSIGNATURE_V1, base64.b64decode(alice.public_key))
    assert cosig.timestamp == 1_700_000_000

    keys = {"chair": chair.public_key, "alice": alice.public_key, "bob": bob.public_key}
    log, witnesses = session_verifiers(sid, keys)
    check = verify_checkpoint(cp.text, log, witnesses)
    assert check.cosigners == ("accord/s-1/alice", "accord/s-1/bob")

    # A checkpoint signed by another key, a changed root, a forged cosignature: refused.
    mallory = Identity.generate("chair")
    with pytest.raises(CheckpointError, match="not signed by the log key"):
        verify_checkpoint(sign_checkpoint(origin_for(sid), 10, tree.root(), mallory).text, log, witnesses)
    with pytest.raises(CheckpointError, match="bad ed25519 signature"):
        verify_checkpoint(cp.text.replace("\n10\n", "\n11\n"), log, witnesses)
    forged = cosign(cp, Identity.generate("alice"))  # same name, other key: unknown, ignored
    assert verify_checkpoint(forged, log, witnesses).cosigners == check.cosigners
    text, sigs = parse_note(cp.text)
    bad = [*sigs[:1], NoteSignature(sigs[1].name, sigs[1].key_id, sigs[1].signature[:8] + bytes(64))]
    with pytest.raises(CheckpointError, match="bad cosignature/v1 signature from accord/s-1/alice"):
        verify_checkpoint(Checkpoint(cp.origin, cp.size, cp.root, (), tuple(bad)), log, witnesses)
    with pytest.raises(CheckpointError, match="origin"):
        verify_checkpoint(sign_checkpoint("accord/other", 10, tree.root(), chair), log, witnesses)
    for malformed in (cp.text.replace("\n10\n", "\n010\n"), cp.text.replace("accord/s-1\n", "\n")):
        with pytest.raises(CheckpointError):
            Checkpoint.parse(malformed)


def test_a_client_with_an_older_checkpoint_checks_the_newer_one_extends_it() -> None:
    chair = Identity.generate("chair")
    origin = origin_for("s-2")
    tree = _tree(1000)
    for old_size, new_size in [(1, 1000), (7, 8), (8, 1000), (513, 1000), (1000, 1000)]:
        old = sign_checkpoint(origin, old_size, tree.root(old_size), chair)
        new = sign_checkpoint(origin, new_size, tree.root(new_size), chair)
        proof = tree.consistency_proof(old_size, new_size)
        verify_checkpoint_consistency(old, new, proof)
        if proof:
            with pytest.raises(CheckpointError, match="does not extend"):
                verify_checkpoint_consistency(old, new, [bytes(32), *proof[1:]])
    # A forked history: same old prefix size, a different entry 500. The old client notices.
    forked = MerkleTree([*(tree.leaf_hash_at(i) for i in range(500)), leaf_hash(b"rewritten")])
    forked.append_leaf_hashes(tree.leaf_hash_at(i) for i in range(501, 1000))
    old = sign_checkpoint(origin, 600, tree.root(600), chair)
    fork = sign_checkpoint(origin, 1000, forked.root(), chair)
    with pytest.raises(CheckpointError, match="does not extend"):
        verify_checkpoint_consistency(old, fork, forked.consistency_proof(600, 1000))
    # A witness refuses to co-sign a tree that does not extend the last one it co-signed.
    alice = Identity.generate("alice")
    with pytest.raises(CheckpointError):
        cosign(fork, alice, previous=old, proof=forked.consistency_proof(600, 1000))
    good = sign_checkpoint(origin, 1000, tree.root(), chair)
    assert len(cosign(good, alice, previous=old, proof=tree.consistency_proof(600, 1000)).signatures) == 2


def test_ledger_checkpoints_every_n_entries_and_consistency_proofs(ledger_location: str) -> None:
    async def go() -> None:
        sid, envs, ids = build_session(40)
        published: list[Checkpoint] = []

        async def hook(cp: Checkpoint) -> None:
            published.append(cp)

        async with await Ledger.open(ledger_location) as ledger:
            await ledger.create_session(sid, "t", "test", "sha256:0")
            ledger.checkpoint_every(sid, ids["chair"], 16, on_checkpoint=hook)
            for start in range(0, len(envs), 7):  # batches that straddle the multiples of 16
                await ledger.append(sid, envs[start : start + 7])
            ledger.stop_checkpointing(sid)
            sizes = [cp.size for cp in published]
            assert sizes == list(range(16, len(envs) + 1, 16))
            final = await ledger.seal(sid, ids["chair"], [ids["alice"], ids["bob"]])
            stored = await ledger.checkpoints(sid)
            assert [c.size for c in stored] == [*sizes, len(envs)]
            assert len(stored[-1].signatures) == 3 and stored[-1] == final
            log, witnesses = session_verifiers(sid, {a: i.public_key for a, i in ids.items()})
            for cp in stored:
                verify_checkpoint(cp, log, witnesses)
            # A client holding the first checkpoint checks the last one against it.
            proof = await ledger.consistency_proof(sid, stored[0].size, stored[-1].size)
            verify_checkpoint_consistency(stored[0], stored[-1], proof)
            # Signing again at a stored size adds nothing; a root that is not ours is refused.
            again = await ledger.checkpoint(sid, ids["chair"], size=16)
            assert again == stored[0] and len(again.signatures) == 1
            wrong = sign_checkpoint(origin_for(sid), 16, bytes(32), ids["chair"])
            with pytest.raises(LedgerError, match="does not match"):
                await ledger.save_checkpoint(sid, wrong)
            # A fresh Ledger object rebuilds the tree from the stored leaf hashes.
        async with await Ledger.open(ledger_location) as reopened:
            tree = await reopened.tree(sid)
            assert tree.size == len(envs) and tree.root() == final.root
            report = await reopened.verify(sid)
            assert report.ok, report.problems
            assert report.checkpoints_checked == len(stored) and report.covered == len(envs)
            assert report.cosigners == ["alice", "bob"]

    run(go())


def test_a_session_ends_with_a_checkpoint_cosigned_by_every_delegate_and_published(tmp_path) -> None:  # noqa: ANN001
    from accord.session import run_session
    from accord.session_plan import load_plan

    async def go() -> None:
        plan, _ = load_plan(FIXTURES / "tiny.yaml")
        bus_url = f"memory://cp-{secrets.token_hex(4)}"
        async with open_bus(bus_url) as watcher, await Ledger.open(tmp_path / "l.db") as ledger:
            result = await run_session(plan, ledger, bus_url=bus_url)
            stored = await ledger.checkpoints(result.session_id)
            assert stored and stored[-1].size == result.entries
            keys = await ledger.session_keys(result.session_id)
            log, witnesses = session_verifiers(result.session_id, keys)
            check = verify_checkpoint(stored[-1], log, witnesses)
            assert len(check.cosigners) == len(plan.participants)
            async with watcher.subscribe(chair_topic(result.session_id, "checkpoint")) as sub:
                message = await anext(aiter(sub))
            assert message.retain and Checkpoint.parse(message.payload) == stored[-1]
            assert Checkpoint.parse(message.payload).text == stored[-1].text

    run(go())
