"""Checkpoints of a session's Merkle tree, in the C2SP tlog-checkpoint format.

A checkpoint is a signed note whose text is::

    accord/<session id>            origin: which log
    <tree size>                    decimal, no leading zeroes
    <base64 root hash>             RFC 9162 root of the first <tree size> entries
    [extension lines]              optional, opaque, non-empty (Accord writes none)

The chair signs it as the log, with a signed-note Ed25519 signature under the key name
``accord/<session id>`` (the origin, as tlog-checkpoint recommends) and the chair's key
from the session's ``session.open`` entry. Delegates co-sign it as witnesses, with
tlog-cosignature/v1 Ed25519 signatures under ``accord/<session id>/<delegate id>`` and
their own keys: a delegate that co-signed a checkpoint vouches that the log it saw had
that root, so the operator cannot show one history to one constituency and another to
the next. A client holding an older checkpoint checks that a newer one extends it with
a consistency proof (:func:`verify_checkpoint_consistency`).

A signed note carries at most `note.MAX_SIGNATURES` (100) signature lines, and a session
with a hundred delegates has more cosigners than that. Such a checkpoint is written as
several signed notes of the same text, one after the other: each is a complete C2SP
note (the log's signature, then at most 99 cosignatures), so any signed-note verifier
can check each one alone; Accord reads them back as one checkpoint with every
signature. A checkpoint with at most 99 cosignatures is a single note, as before.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from accord.ledger.identity import Identity, unb64
from accord.ledger.merkle import HASH_SIZE, ProofError, verify_consistency
from accord.ledger.note import (
    MAX_NOTE_BYTES,
    MAX_SIGNATURES,
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    NoteError,
    NoteSignature,
    NoteVerifier,
    cosign_note,
    format_note,
    parse_note,
    sign_note,
    verify_note,
)

__all__ = [
    "CHAIR",
    "Checkpoint",
    "CheckpointError",
    "cosign",
    "cosigner_name",
    "origin_for",
    "session_verifiers",
    "sign_checkpoint",
    "verify_checkpoint",
    "verify_checkpoint_consistency",
]

ORIGIN_PREFIX = "accord/"
CHAIR = "chair"


class CheckpointError(ValueError):
    """A malformed checkpoint, or one that does not verify; the message says why."""


def origin_for(session_id: str) -> str:
    """``accord/<session id>``: the origin line and the log's key name."""
    origin = ORIGIN_PREFIX + session_id
    if any(c.isspace() for c in origin) or "+" in origin:
        raise CheckpointError(f"session id {session_id!r} cannot be part of a note key name")
    return origin


def cosigner_name(session_id: str, actor: str) -> str:
    """``accord/<session id>/<actor>``: a witness's key name."""
    name = f"{origin_for(session_id)}/{actor}"
    if any(c.isspace() for c in actor) or "+" in actor or not actor:
        raise CheckpointError(f"actor id {actor!r} cannot be part of a note key name")
    return name


@dataclass(frozen=True)
class Checkpoint:
    """A tree head (origin, size, root, extension lines) and its note signatures."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()
    signatures: tuple[NoteSignature, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise CheckpointError("the origin must be one non-empty line")
        if self.origin.startswith(_SIGNATURE_LINE):
            # Would be mistaken for a signature line where several notes are joined.
            raise CheckpointError(f"the origin must not start with {_SIGNATURE_LINE!r}")
        if not 0 <= self.size < 2**64:
            raise CheckpointError(f"tree size {self.size} is not a uint64")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError(f"root hash is {len(self.root)} bytes, expected {HASH_SIZE}")
        for line in self.extensions:
            if not line or "\n" in line:
                raise CheckpointError("extension lines must be non-empty single lines")

    @property
    def body(self) -> str:
        """The note text that is signed."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "\n".join(lines) + "\n"

    @property
    def notes(self) -> tuple[str, ...]:
        """The signed notes that carry this checkpoint: one, or several when there are
        more signatures than a note may hold. The log's signatures (key name = origin)
        head every note, so each verifies alone; the others are spread in order."""
        own = [s for s in self.signatures if s.name == self.origin]
        others = [s for s in self.signatures if s.name != self.origin]
        room = MAX_SIGNATURES - len(own)
        if room < 1:
            raise CheckpointError(f"{len(own)} signatures by the log key leave no room in a note")
        if not others:
            return (format_note(self.body, own),)
        return tuple(format_note(self.body, own + others[i : i + room]) for i in range(0, len(others), room))

    @property
    def text(self) -> str:
        """The whole checkpoint as stored, exported and published: its notes, joined."""
        return "".join(self.notes)

    @property
    def session_id(self) -> str | None:
        return self.origin[len(ORIGIN_PREFIX) :] if self.origin.startswith(ORIGIN_PREFIX) else None

    @property
    def root_hex(self) -> str:
        return self.root.hex()

    def with_signatures(self, signatures: Iterable[NoteSignature]) -> Checkpoint:
        """This checkpoint with more signature lines; an identical line is kept once."""
        merged = list(self.signatures)
        for sig in signatures:
            if sig not in merged:
                merged.append(sig)
        return replace(self, signatures=tuple(merged))

    @classmethod
    def parse(cls, note: str | bytes) -> Checkpoint:
        """Parse a checkpoint: one signed note, or several of the same text joined (see
        the module's docstring); their signatures are merged, duplicates kept once."""
        if isinstance(note, bytes):
            try:
                note = note.decode("utf-8")
            except UnicodeDecodeError:
                raise CheckpointError("not a signed note: note is not valid UTF-8") from None
        if len(note) > MAX_NOTE_BYTES:
            raise CheckpointError(f"checkpoint of {len(note)} characters is too large")
        signatures: list[NoteSignature] = []
        seen: set[NoteSignature] = set()
        text = ""
        for number, piece in enumerate(_split_notes(note), start=1):
            try:
                piece_text, piece_signatures = parse_note(piece)
            except NoteError as exc:
                where = f" (note {number})" if number > 1 else ""
                raise CheckpointError(f"not a signed note{where}: {exc}") from None
            if number == 1:
                text = piece_text
            elif piece_text != text:
                raise CheckpointError(f"note {number} of the checkpoint has another text than note 1")
            for sig in piece_signatures:
                if sig not in seen:  # the log's signature heads every note
                    seen.add(sig)
                    signatures.append(sig)
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("a checkpoint has at least three lines: origin, size, root")
        origin, size_text, root_text, *extensions = lines
        if not size_text.isascii() or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise CheckpointError(f"tree size {size_text!r} is not a decimal without leading zeroes")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error:
            raise CheckpointError("root hash is not base64") from None
        if base64.b64encode(root).decode() != root_text:
            raise CheckpointError("root hash is not in canonical base64")
        checkpoint = cls(origin, int(size_text), root, tuple(extensions), tuple(signatures))
        if checkpoint.body != text:
            raise CheckpointError("checkpoint text is not in canonical form")
        return checkpoint


_SIGNATURE_LINE = "\u2014 "


def _split_notes(data: str) -> list[str]:
    """Cut joined notes apart: a note ends at the first line after its blank line that
    is not a signature line (a checkpoint's text has no blank line, and its origin
    cannot start like a signature line)."""
    pieces: list[str] = []
    start = 0
    while True:
        blank = data.find("\n\n", start)
        if blank < 0:
            pieces.append(data[start:])  # parse_note says what is wrong with it
            return pieces
        line = blank + 2
        while line < len(data) and data.startswith(_SIGNATURE_LINE, line):
            end = data.find("\n", line)
            if end < 0:
                line = len(data)
                break
            line = end + 1
        if line >= len(data):
            pieces.append(data[start:])
            return pieces
        pieces.append(data[start:line])
        start = line


def sign_checkpoint(
    origin: str,
    size: int,
    root: bytes,
    signer: Identity,
    *,
    key_name: str | None = None,
    extensions: Sequence[str] = (),
) -> Checkpoint:
    """A checkpoint signed by the log's key (signed-note Ed25519, key name = origin)."""
    unsigned = Checkpoint(origin, size, root, tuple(extensions))
    return unsigned.with_signatures([sign_note(unsigned.body, key_name or origin, signer)])


def cosign(
    checkpoint: Checkpoint,
    identity: Identity,
    *,
    name: str | None = None,
    timestamp: int | None = None,
    previous: Checkpoint | None = None,
    proof: Sequence[bytes] | None = None,
) -> Checkpoint:
    """``checkpoint`` with a witness's tlog-cosignature/v1 added.

    A witness must only co-sign a tree that extends every tree it co-signed before: pass
    the last checkpoint it co-signed as ``previous`` and a consistency proof from it, and
    the cosignature is refused (`CheckpointError`) unless the proof holds.
    """
    if previous is not None:
        verify_checkpoint_consistency(previous, checkpoint, proof or [])
    if name is None:
        session_id = checkpoint.session_id
        if session_id is None:
            raise CheckpointError(f"origin {checkpoint.origin!r} is not Accord's; pass a key name")
        name = cosigner_name(session_id, identity.actor)
    return checkpoint.with_signatures([cosign_note(checkpoint.body, name, identity, timestamp)])


def session_verifiers(session_id: str, keys: Mapping[str, str]) -> tuple[NoteVerifier, list[NoteVerifier]]:
    """The log verifier (the chair's key) and the witness verifiers (every other actor's)
    for a session whose ``session.open`` lists ``keys`` (actor -> base64 public key)."""
    if CHAIR not in keys:
        raise CheckpointError("the session's keys do not include the chair's")
    origin = origin_for(session_id)
    log = NoteVerifier(origin, unb64(keys[CHAIR]), SIG_ED25519)
    witnesses = [
        NoteVerifier(cosigner_name(session_id, actor), unb64(key), SIG_COSIGNATURE_V1)
        for actor, key in sorted(keys.items())
        if actor != CHAIR
    ]
    return log, witnesses


@dataclass(frozen=True)
class CheckpointCheck:
    checkpoint: Checkpoint
    log: NoteVerifier
    cosigners: tuple[str, ...]
    """Key names of the witnesses whose cosignatures verified."""


def verify_checkpoint(
    checkpoint: Checkpoint | str | bytes,
    log: NoteVerifier,
    witnesses: Iterable[NoteVerifier] = (),
    *,
    origin: str | None = None,
) -> CheckpointCheck:
    """Check a checkpoint: origin, the log's signature (required), witnesses' cosignatures
    (each optional, but a bad one fails). Raises `CheckpointError`."""
    cp = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint.parse(checkpoint)
    expected = origin or log.name
    if cp.origin != expected:
        raise CheckpointError(f"checkpoint origin {cp.origin!r} is not {expected!r}")
    known = [log, *witnesses]
    try:
        good = verify_note((cp.body, cp.signatures), known)
    except NoteError as exc:
        if str(exc).startswith("no signature"):
            raise CheckpointError(f"checkpoint is not signed by the log key {log.name}") from None
        raise CheckpointError(str(exc)) from None
    if log not in good:
        raise CheckpointError(f"checkpoint is not signed by the log key {log.name}")
    return CheckpointCheck(cp, log, tuple(v.name for v in good if v is not log))


def verify_checkpoint_consistency(
    old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]
) -> None:
    """Check that ``new`` extends ``old`` (same origin, RFC 9162 consistency proof).

    Signatures are not checked here: verify both checkpoints first. Raises
    `CheckpointError` (wrapping the proof's `ProofError` reason).
    """
    if old.origin != new.origin:
        raise CheckpointError(f"checkpoints of different logs: {old.origin!r} and {new.origin!r}")
    if old.size > new.size:
        raise CheckpointError(f"the older checkpoint ({old.size}) is larger than the newer ({new.size})")
    if old.size == 0:
        return
    try:
        verify_consistency(old.size, new.size, old.root, new.root, proof)
    except ProofError as exc:
        raise CheckpointError(f"checkpoint {new.size} does not extend checkpoint {old.size}: {exc}") from None
