"""Actor identities: an id and an Ed25519 key pair."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import nacl.bindings

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class Identity:
    """Who signs: an actor id (the chair, or a delegate's constituency id) and its key."""

    actor: str
    private_key: Ed25519PrivateKey
    # libsodium's 64-byte secret key (seed, then public key). Every envelope is signed,
    # and libsodium signs in 21 µs where `cryptography` (OpenSSL, a context set up per
    # call) takes 35 here (benchmarks/signing.py). Ed25519 signatures are deterministic
    # (RFC 8032): both give the same bytes, which tests/test_ledger_envelope.py checks.
    _sodium_secret: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        public = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        object.__setattr__(self, "_sodium_secret", seed + public)

    @classmethod
    def generate(cls, actor: str) -> Identity:
        return cls(actor, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, actor: str, raw: bytes) -> Identity:
        return cls(actor, Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        return self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def public_key(self) -> str:
        """Base64 of the raw 32-byte public key, as written into the ledger."""
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return b64(raw)

    @property
    def public_bytes(self) -> bytes:
        """The raw 32-byte public key."""
        return self._sodium_secret[32:]

    @property
    def sodium_secret(self) -> bytes:
        """libsodium's form of the private key (seed, then public key): what a ledger
        process (`accord.ledger_worker`) is given."""
        return self._sodium_secret

    def sign(self, message: bytes) -> bytes:
        # crypto_sign returns the signature followed by the message.
        return nacl.bindings.crypto_sign(message, self._sodium_secret)[:64]


class PublicKeys:
    """Verifies signatures by actor id; loaded keys are parsed once."""

    def __init__(self, keys: dict[str, str]) -> None:
        self._raw = dict(keys)
        self._parsed: dict[str, Ed25519PublicKey] = {}

    def __contains__(self, actor: str) -> bool:
        return actor in self._raw

    def as_dict(self) -> dict[str, str]:
        return dict(self._raw)

    def verify(self, actor: str, signature: bytes, message: bytes) -> bool:
        key = self._parsed.get(actor)
        if key is None:
            if actor not in self._raw:
                return False
            key = Ed25519PublicKey.from_public_bytes(unb64(self._raw[actor]))
            self._parsed[actor] = key
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True
