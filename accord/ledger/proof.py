"""Entry proofs: one self-contained file that shows one entry is in a session's signed log.

The file is a C2SP tlog-proof (``c2sp.org/tlog-proof@v1``)::

    c2sp.org/tlog-proof@v1
    extra <base64 of Accord's extension, below>
    index <entry index>
    <base64 inclusion proof hash, leaf's sibling first>
    ...
    <empty line>
    <the checkpoint, verbatim: origin accord/<session>, size, root, signature lines>

tlog-proof leaves ``extra`` to the application and warns it is not authenticated.
Accord's extension is the RFC 8785 JSON object::

    {"accord": "entry-proof/v1",
     "session": "<session id>",
     "entry": "<the entry: its canonical envelope, as stored>",
     "keys": {"chair": "<base64 Ed25519 public key>", "<delegate>": "...", ...},
     "opening": {"entry": "<the session.open envelope>", "proof": ["<base64 hash>", ...]}}

(``opening`` is left out when the entry is the session.open entry itself.) Nothing in it
is taken on trust: the entry must hash to the leaf that the inclusion proof places under
the checkpoint's root; the session.open envelope, which lists every participant's key,
must be leaf 0 of the same tree and be signed by the chair key it lists; ``keys`` must be
exactly those keys; the checkpoint must be signed by that chair key, and its
cosignatures by the delegates' keys; and the entry must be signed by its sender. What
remains is the root of trust: whether the chair's (or a delegate's) key is the real one.
Compare it with one obtained elsewhere (your delegate, the organizer), or pass it to
:func:`verify_entry_proof` as ``trusted``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from accord.ledger.checkpoint import (
    CHAIR,
    Checkpoint,
    CheckpointError,
    origin_for,
    session_verifiers,
    verify_checkpoint,
)
from accord.ledger.merkle import HASH_SIZE, ProofError, leaf_hash, verify_inclusion
from accord.ledger.verify import check_envelope
from constituencies.hashing import canonical_json

__all__ = [
    "EXTENSION",
    "PROOF_HEADER",
    "EntryProof",
    "ProofFileError",
    "ProofReport",
    "verify_entry_proof",
]

PROOF_HEADER = "c2sp.org/tlog-proof@v1"
EXTENSION = "entry-proof/v1"
MAX_PROOF_BYTES = 16 * 1024 * 1024


class ProofFileError(ValueError):
    """A proof file that is malformed or does not prove what it claims; says why."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProofFileError(f"{what} is not base64") from None
    if _b64(raw) != text:
        raise ProofFileError(f"{what} is not canonical base64")
    return raw


def _decimal(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or (text != "0" and text.startswith("0")):
        raise ProofFileError(f"{what} {text!r} is not a decimal without leading zeroes")
    return int(text)


@dataclass(frozen=True)
class EntryProof:
    """The parts of a tlog-proof file."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: Checkpoint
    extra: bytes | None = None

    @property
    def text(self) -> str:
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append(f"extra {_b64(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(_b64(h) for h in self.hashes)
        return "\n".join(lines) + "\n\n" + self.checkpoint.text

    @classmethod
    def parse(cls, data: str | bytes) -> EntryProof:
        if isinstance(data, bytes):
            if len(data) > MAX_PROOF_BYTES:
                raise ProofFileError(f"proof of {len(data)} bytes is too large")
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise ProofFileError("proof is not UTF-8 text") from None
        head, sep, note = data.partition("\n\n")
        if not sep:
            raise ProofFileError("proof has no empty line before its checkpoint")
        lines = head.split("\n")
        if lines[0] != PROOF_HEADER:
            raise ProofFileError(f"first line is not {PROOF_HEADER!r}")
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            extra = _unb64(rest.pop(0)[len("extra ") :], "extra data")
        if not rest or not rest[0].startswith("index "):
            raise ProofFileError("no 'index' line")
        index = _decimal(rest.pop(0)[len("index ") :], "index")
        hashes = []
        for n, line in enumerate(rest):
            raw = _unb64(line, f"proof hash {n}")
            if len(raw) != HASH_SIZE:
                raise ProofFileError(f"proof hash {n} is {len(raw)} bytes, not {HASH_SIZE}")
            hashes.append(raw)
        try:
            checkpoint = Checkpoint.parse(note)
        except CheckpointError as exc:
            raise ProofFileError(f"checkpoint: {exc}") from None
        return cls(index, tuple(hashes), checkpoint, extra)

    @classmethod
    def build(
        cls,
        session_id: str,
        index: int,
        entry: bytes,
        hashes: list[bytes],
        checkpoint: Checkpoint,
        keys: Mapping[str, str],
        opening: bytes | None = None,
        opening_hashes: list[bytes] | None = None,
    ) -> EntryProof:
        """Assemble a proof; `opening` (the session.open envelope) is needed unless index 0."""
        ext: dict[str, Any] = {
            "accord": EXTENSION,
            "session": session_id,
            "entry": entry.decode("utf-8"),
            "keys": dict(keys),
        }
        if index != 0:
            if opening is None or opening_hashes is None:
                raise ValueError("a proof of an entry other than 0 needs the session.open entry and its proof")
            ext["opening"] = {"entry": opening.decode("utf-8"), "proof": [_b64(h) for h in opening_hashes]}
        return cls(index, tuple(hashes), checkpoint, canonical_json(ext))


@dataclass(frozen=True)
class ProofReport:
    session_id: str
    index: int
    tree_size: int
    root: str
    """Base64 root hash, as in the checkpoint."""
    actor: str
    seq: int
    kind: str
    envelope: dict[str, Any]
    chair_key: str
    """The chair's public key (base64) that signed the checkpoint."""
    chair_key_id: str
    """Its signed-note key ID (8 hex digits), handy to compare with one you trust."""
    cosigners: list[str]
    pinned: list[str] = field(default_factory=list)
    """Actors whose keys matched the `trusted` keys passed in."""


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ProofFileError(f"{what} is not JSON") from None
    if not isinstance(doc, dict):
        raise ProofFileError(f"{what} is not a JSON object")
    return doc


def verify_entry_proof(data: str | bytes, *, trusted: Mapping[str, str] | None = None) -> ProofReport:
    """Check a proof file with nothing else; raise `ProofFileError` saying what is wrong.

    `trusted` maps actor ids to base64 public keys you obtained elsewhere; each must be
    the key the session used. Without it the keys come from the proof itself (bound to
    the log as described in the module docstring).
    """
    proof = EntryProof.parse(data)
    if proof.extra is None:
        raise ProofFileError("no 'extra' line: this is not an Accord entry proof")
    ext = _json_object(proof.extra, "the extra data")
    if ext.get("accord") != EXTENSION:
        raise ProofFileError(f"the extra data is not an Accord {EXTENSION} extension")
    session_id, entry_text, keys = ext.get("session"), ext.get("entry"), ext.get("keys")
    if not isinstance(session_id, str) or not isinstance(entry_text, str) or not isinstance(keys, dict):
        raise ProofFileError("the extension needs 'session', 'entry' and 'keys'")
    cp = proof.checkpoint
    try:
        origin = origin_for(session_id)
    except CheckpointError as exc:
        raise ProofFileError(str(exc)) from None
    if cp.origin != origin:
        raise ProofFileError(f"the checkpoint is for {cp.origin!r}, not {origin!r}")
    entry = entry_text.encode("utf-8")

    # The session.open entry: which keys the session used, signed by the chair, logged first.
    if proof.index == 0:
        opening, opening_hashes = entry, list(proof.hashes)
    else:
        block = ext.get("opening")
        if not isinstance(block, dict) or not isinstance(block.get("entry"), str):
            raise ProofFileError("the extension lacks the session.open entry ('opening')")
        hashes = block.get("proof")
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            raise ProofFileError("the session.open inclusion proof is malformed")
        opening = block["entry"].encode("utf-8")
        opening_hashes = [_unb64(h, "session.open proof hash") for h in hashes]
    doc = _json_object(opening, "the session.open entry")
    body = doc.get("body")
    if doc.get("kind") != "session.open" or doc.get("actor") != CHAIR or not isinstance(body, dict):
        raise ProofFileError("the opening entry is not the chair's session.open")
    listed = body.get("keys")
    if not isinstance(listed, dict) or CHAIR not in listed:
        raise ProofFileError("session.open lists no chair key")
    if listed != keys:
        raise ProofFileError("the keys in the extension are not the ones session.open lists")
    pinned = []
    for actor, key in (trusted or {}).items():
        if listed.get(actor) != key:
            raise ProofFileError(f"the session's key for {actor!r} is not the one you trust")
        pinned.append(actor)
    try:
        parsed_keys = {a: Ed25519PublicKey.from_public_bytes(_unb64(k, f"key of {a}")) for a, k in listed.items()}
    except ValueError as exc:
        raise ProofFileError(f"a public key is malformed: {exc}") from None
    _, problem = check_envelope(opening, session_id, parsed_keys)
    if problem:
        raise ProofFileError(f"session.open: {problem}")

    # The checkpoint: signed by the chair's key; cosignatures by the delegates' keys.
    try:
        log, witnesses = session_verifiers(session_id, listed)
        check = verify_checkpoint(cp, log, witnesses)
    except (CheckpointError, ValueError) as exc:
        raise ProofFileError(f"checkpoint: {exc}") from None

    # Both entries are leaves of the checkpointed tree.
    try:
        if proof.index != 0:
            verify_inclusion(leaf_hash(opening), 0, cp.size, opening_hashes, cp.root)
    except ProofError as exc:
        raise ProofFileError(f"session.open is not entry 0 of the checkpointed log: {exc}") from None
    try:
        verify_inclusion(leaf_hash(entry), proof.index, cp.size, list(proof.hashes), cp.root)
    except ProofError as exc:
        raise ProofFileError(f"the entry is not entry {proof.index} of the checkpointed log: {exc}") from None

    # The entry itself: canonical, of this session, signed by its sender.
    header, problem = check_envelope(entry, session_id, parsed_keys)
    if problem or header is None:
        raise ProofFileError(f"the entry: {problem}")
    prefix = log.name + "/"
    return ProofReport(
        session_id=session_id,
        index=proof.index,
        tree_size=cp.size,
        root=_b64(cp.root),
        actor=header[0],
        seq=header[1],
        kind=header[2],
        envelope=json.loads(entry),
        chair_key=listed[CHAIR],
        chair_key_id=log.key_id.hex(),
        cosigners=[n[len(prefix) :] for n in check.cosigners if n.startswith(prefix)],
        pinned=pinned,
    )


async def build_entry_proof(ledger: Any, session_id: str, index: int) -> EntryProof:
    """The proof of entry `index` against the largest stored checkpoint that covers it.

    Checked before it is returned (`ProofFileError` if the stored record does not hold
    up), so a proof that would not verify is never written.
    """
    checkpoint = await ledger.latest_checkpoint(session_id, covering=index)
    entry = await ledger.entry(session_id, index)
    opening = entry if index == 0 else await ledger.entry(session_id, 0)
    keys = opening.body.get("keys") if opening.kind == "session.open" else None
    if not isinstance(keys, dict):
        raise ProofFileError(f"session {session_id!r}: entry 0 is not a session.open listing keys")
    proof = EntryProof.build(
        session_id,
        index,
        entry.envelope.encode("utf-8"),
        await ledger.inclusion_proof(session_id, index, checkpoint.size),
        checkpoint,
        keys,
        opening.envelope.encode("utf-8"),
        await ledger.inclusion_proof(session_id, 0, checkpoint.size) if index else None,
    )
    verify_entry_proof(proof.text)
    return proof
