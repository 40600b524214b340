"""Keeping personal data out of the ledger: salted commitments.

The ledger is meant to be copied and checked by anyone, forever, so nothing in a leaf
may identify a person. Constituents appear only under pseudonymous ids (``r01``); any
private value that must still be *bound* to the record (a constituent's real name, an
email, a free-text objection, a vote tied to a person) enters as a commitment::

    commitment = SHA-256(salt || UTF-8(value))      salt: 32 random bytes, kept off-ledger

Only the hex commitment goes into an envelope. The salt (and the value) are kept by
whoever must later prove the link (the constituent, the organizer) and never logged.
Opening a commitment means revealing value and salt: anyone recomputes the hash and
compares it with the one in the signed, checkpointed entry (:func:`verify_commitment`).

Why a salt: without it, a short or guessable value (a name, a yes/no vote) could be
recovered from the log by hashing candidates. Why exactly 32 bytes: with a fixed length,
``salt || value`` splits one way only, so a commitment opens to one value; forgetting
the salt makes the value unrecoverable (useful for erasure: delete the salt).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["SALT_BYTES", "commitment", "verify_commitment"]

SALT_BYTES = 32


def commitment(value: str, salt: bytes | None = None) -> tuple[str, bytes]:
    """``(hex SHA-256(salt || value), salt)``; a fresh random salt unless one is given."""
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    if not isinstance(salt, bytes | bytearray) or len(salt) != SALT_BYTES:
        raise ValueError(f"a commitment salt is exactly {SALT_BYTES} bytes")
    if not isinstance(value, str):
        raise TypeError(f"commit to text (str), not {type(value).__name__}")
    return hashlib.sha256(bytes(salt) + value.encode("utf-8")).hexdigest(), bytes(salt)


def verify_commitment(value: str, salt: bytes, digest: str) -> bool:
    """Whether ``value`` with ``salt`` opens the commitment ``digest`` (constant time)."""
    try:
        expected, _ = commitment(value, salt)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, digest.lower())
