"""Private values enter the ledger only as salted commitments; the salt stays off-ledger."""

from __future__ import annotations

import hashlib

import pytest

from accord.ledger.privacy import SALT_BYTES, commitment, verify_commitment


def test_commitment_is_sha256_of_salt_then_value() -> None:
    salt = bytes(range(SALT_BYTES))
    digest, returned = commitment("Ana Pérez <ana@example.org>", salt)
    assert returned == salt
    assert digest == hashlib.sha256(salt + "Ana Pérez <ana@example.org>".encode()).hexdigest()
    assert verify_commitment("Ana Pérez <ana@example.org>", salt, digest)
    assert verify_commitment("Ana Pérez <ana@example.org>", salt, digest.upper())


def test_fresh_salts_hide_equal_values_and_bind_the_value() -> None:
    (a, salt_a), (b, salt_b) = commitment("yes"), commitment("yes")
    assert len(salt_a) == SALT_BYTES and salt_a != salt_b and a != b
    assert not verify_commitment("no", salt_a, a)
    assert not verify_commitment("yes", salt_b, a)
    # Guessing the value without the salt does not find it.
    assert a not in {hashlib.sha256(v.encode()).hexdigest() for v in ("yes", "no")}


@pytest.mark.parametrize("salt", [b"", b"short", bytes(SALT_BYTES + 1)])
def test_salts_have_one_length_so_a_commitment_opens_one_way(salt: bytes) -> None:
    with pytest.raises(ValueError, match="exactly 32 bytes"):
        commitment("value", salt)
    assert not verify_commitment("value", salt, "00" * 32)
