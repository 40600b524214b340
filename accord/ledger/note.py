"""Signed notes (C2SP signed-note) and timestamped cosignatures (C2SP tlog-cosignature).

A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines::

    — <key name> base64(4-byte key ID || signature)

Two signature types are used by Accord, both over Ed25519 keys:

* ``0x01``, signed-note Ed25519: the signature is Ed25519 over the note text; the key ID
  is ``SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]``. The log (the chair)
  signs its checkpoints this way.
* ``0x04``, tlog-cosignature/v1 Ed25519: the signature is ``u64 timestamp (big endian) ||
  Ed25519(cosignature/v1\\ntime <timestamp>\\n || note text)``; the key ID is
  ``SHA-256(name || 0x0A || 0x04 || public key)[:4]``. Witnesses (the delegates) co-sign
  checkpoints this way.

Verification follows signed-note: signatures from unknown keys (name and key ID not
both matching a configured verifier) are ignored; a known key whose signature fails makes
the whole note fail; a note with no verified signature from a known key fails.

Pure: no I/O, no clock except the default cosignature timestamp.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "MAX_SIGNATURES",
    "SIG_COSIGNATURE_V1",
    "SIG_ED25519",
    "NoteError",
    "NoteSignature",
    "NoteVerifier",
    "cosign_note",
    "format_note",
    "key_id",
    "parse_note",
    "parse_vkey",
    "sign_note",
    "verify_note",
]

SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 100
"""signed-note: verifiers SHOULD cap the signatures of a note and MUST accept 16."""
MAX_NOTE_BYTES = 1 << 20
_DASH = "\u2014 "
_TYPE_NAMES = {SIG_ED25519: "ed25519", SIG_COSIGNATURE_V1: "cosignature/v1"}


class NoteError(ValueError):
    """A malformed note, or one whose signatures do not verify; the message says why."""


def _check_key_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """``SHA-256(name || 0x0A || type || public key)[:4]`` (signed-note, tlog-cosignature)."""
    _check_key_name(name)
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def cosignature_message(text: str, timestamp: int) -> bytes:
    """What a tlog-cosignature/v1 Ed25519 cosigner signs."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode("utf-8")


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID, and the signature bytes after it."""

    name: str
    key_id: bytes
    signature: bytes

    @property
    def line(self) -> str:
        return f"{_DASH}{self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"

    @property
    def timestamp(self) -> int | None:
        """The cosignature time, if this is a (well-formed) timestamped cosignature."""
        if len(self.signature) != 8 + 64:
            return None
        return int(struct.unpack(">Q", self.signature[:8])[0])


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted key: its name, signature type and raw 32-byte Ed25519 public key."""

    name: str
    public_key: bytes
    sig_type: int = SIG_ED25519

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        if len(self.public_key) != 32:
            raise NoteError(f"{self.name}: an Ed25519 public key is 32 bytes, not {len(self.public_key)}")
        if self.sig_type not in _TYPE_NAMES:
            raise NoteError(f"{self.name}: unsupported signature type {self.sig_type:#04x}")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.sig_type, self.public_key)

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES[self.sig_type]

    @property
    def vkey(self) -> str:
        """The verifier key string ``name+keyid+base64(type || key)`` of the Go note package."""
        data = base64.b64encode(bytes([self.sig_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{data}"

    def matches(self, sig: NoteSignature) -> bool:
        return sig.name == self.name and sig.key_id == self.key_id

    def verify(self, text: str, sig: NoteSignature) -> bool:
        """Whether ``sig`` (already matched by name and key ID) is a good signature on ``text``."""
        key = Ed25519PublicKey.from_public_bytes(self.public_key)
        if self.sig_type == SIG_ED25519:
            message, raw = text.encode("utf-8"), sig.signature
        else:
            if len(sig.signature) != 8 + 64:
                return False
            stamp = struct.unpack(">Q", sig.signature[:8])[0]
            if stamp > 2**63 - 1:
                return False
            message, raw = cosignature_message(text, stamp), sig.signature[8:]
        if len(raw) != 64:
            return False
        try:
            key.verify(raw, message)
        except InvalidSignature:
            return False
        return True


def parse_vkey(vkey: str) -> NoteVerifier:
    """Parse ``name+keyid+base64(type || key)``; the key ID must match the key."""
    name, sep, rest = vkey.partition("+")
    hash_hex, sep2, data = rest.partition("+")
    if not sep or not sep2 or len(hash_hex) != 8:
        raise NoteError(f"malformed verifier key {vkey!r}")
    try:
        raw = base64.b64decode(data, validate=True)
        want = bytes.fromhex(hash_hex)
    except (binascii.Error, ValueError):
        raise NoteError(f"malformed verifier key {vkey!r}") from None
    if len(raw) != 33:
        raise NoteError(f"verifier key {vkey!r}: expected a type byte and a 32-byte key")
    verifier = NoteVerifier(name, raw[1:], raw[0])
    if verifier.key_id != want or hash_hex != hash_hex.lower():
        raise NoteError(f"verifier key {vkey!r}: key ID does not match the key")
    return verifier


_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if _CONTROL.search(text):
        raise NoteError("note contains a control character other than newline")


class NoteSigner(Protocol):
    """What signs a note, besides a `cryptography` key: an `accord.ledger.Identity`
    (which signs with libsodium: the same signatures, faster)."""

    @property
    def public_bytes(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


def _sign_with(key: Ed25519PrivateKey | NoteSigner) -> tuple[Callable[[bytes], bytes], bytes]:
    if isinstance(key, Ed25519PrivateKey):
        return key.sign, _raw_public(key)
    return key.sign, key.public_bytes


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey | NoteSigner) -> NoteSignature:
    """A signed-note Ed25519 (type 0x01) signature on ``text``."""
    _check_text(text)
    sign, public = _sign_with(private_key)
    return NoteSignature(name, key_id(name, SIG_ED25519, public), sign(text.encode("utf-8")))


def cosign_note(
    text: str, name: str, private_key: Ed25519PrivateKey | NoteSigner, timestamp: int | None = None
) -> NoteSignature:
    """A tlog-cosignature/v1 Ed25519 (type 0x04) signature on ``text``."""
    _check_text(text)
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    if not 0 <= stamp <= 2**63 - 1:
        raise NoteError(f"cosignature timestamp {stamp} is out of range")
    sign, public = _sign_with(private_key)
    sig = sign(cosignature_message(text, stamp))
    return NoteSignature(name, key_id(name, SIG_COSIGNATURE_V1, public), struct.pack(">Q", stamp) + sig)


def format_note(text: str, signatures: Iterable[NoteSignature]) -> str:
    _check_text(text)
    lines = "".join(s.line for s in signatures)
    if not lines:
        raise NoteError("a signed note needs at least one signature")
    return f"{text}\n{lines}"


def parse_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and signature lines, checking the format rules."""
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise NoteError(f"note of {len(note)} bytes is too large")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not valid UTF-8") from None
    if len(note) > MAX_NOTE_BYTES:
        raise NoteError("note is too large")
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteError("note contains a control character other than newline")
    # The text is separated from the signatures by the last blank line.
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("the last signature line must end with a newline")
    signatures: list[NoteSignature] = []
    for line in block[:-1].split("\n"):
        if not line.startswith(_DASH):
            raise NoteError(f"malformed signature line {line[:60]!r}")
        name, sep, b64 = line[len(_DASH) :].partition(" ")
        if not sep:
            raise NoteError(f"malformed signature line {line[:60]!r}")
        _check_key_name(name)
        try:
            raw = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise NoteError(f"signature of {name!r} is not base64") from None
        if len(raw) < 5:
            raise NoteError(f"signature of {name!r} is too short")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
        if len(signatures) > MAX_SIGNATURES:
            raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    return text, signatures


def verify_note(
    note: str | bytes | tuple[str, Sequence[NoteSignature]], verifiers: Iterable[NoteVerifier]
) -> list[NoteVerifier]:
    """The verifiers whose signatures on the note are good; raises `NoteError` if any known
    key's signature is bad or none is good. Unknown signatures are ignored."""
    text, signatures = parse_note(note) if not isinstance(note, tuple) else note
    known = list(verifiers)
    good: list[NoteVerifier] = []
    for sig in signatures:
        for verifier in known:
            if verifier.matches(sig):
                if not verifier.verify(text, sig):
                    raise NoteError(f"bad {verifier.type_name} signature from {sig.name}")
                if verifier not in good:
                    good.append(verifier)
    if not good:
        raise NoteError("no signature from a known key")
    return good
