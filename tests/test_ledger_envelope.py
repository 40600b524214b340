"""Envelopes keep their canonical bytes once known for certain (built when sealed, or the
received bytes once their signature proves them canonical); the cache never changes a
result: every canonical form equals RFC 8785 of the fields, and altered envelopes fail."""

from __future__ import annotations

import json
import random

import rfc8785

from accord.ledger import Envelope, Identity, PublicKeys, Signer
from accord.ledger.envelope import unsigned_wire
from accord.ledger.verify import check_envelope


def _value(rng: random.Random, depth: int = 0) -> object:
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        return rng.choice([1, -2.5, "ts", '"q"', "é\n", None, True, 1e21, 0.1, "\u2028", "😀"])
    if roll < 0.6:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["ts", "sig", "a", "v", "actor", "é", "\u2028"]
    return {rng.choice(keys) + rng.choice(["", "0", "1"]): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_cached_canonical_forms_equal_rfc8785_and_tampering_still_fails() -> None:
    rng = random.Random(7)
    alice = Identity.generate("alice")
    keys = PublicKeys({"alice": alice.public_key})
    raw_keys = {"alice": alice.private_key.public_key()}
    signer = Signer(alice, "s")
    for n in range(300):
        body = {"x": _value(rng)} if n % 2 else {"ts": _value(rng), "sig": _value(rng), "nested": _value(rng)}
        env = signer.seal(rng.choice(["move", "call"]), body)
        slow = rfc8785.dumps(env.model_dump(mode="json"))
        assert env.canonical() == slow
        received = Envelope.parse(slow)
        assert received.verify(keys) and received.canonical() == slow and received == env
        assert check_envelope(slow, "s", raw_keys) == (("alice", env.seq, env.kind), None)
        loose = json.dumps(json.loads(slow), indent=1).encode()
        relaxed = Envelope.parse(loose)
        assert relaxed.verify(keys) and relaxed.canonical() == slow  # re-serialised, not the wire
        assert check_envelope(loose, "s", raw_keys)[1] is not None  # stored bytes must be canonical
        altered = relaxed.model_copy(update={"body": {"tampered": True}})
        assert not altered.verify(keys) and altered.canonical() != slow


def test_the_sig_member_must_be_where_rfc8785_puts_it() -> None:
    alice = Identity.generate("alice")
    keys = PublicKeys({"alice": alice.public_key})
    env = Signer(alice, "s").seal("move", {"a": 1, "ts": 2})
    wire = env.canonical()
    sig = env.sig
    assert unsigned_wire(wire, sig) == env.signing_bytes()
    # The sig moved to the end: valid JSON, same content, not canonical.
    moved = wire.replace(f',"sig":"{sig}"'.encode(), b"")[:-1] + f',"sig":"{sig}"}}'.encode()
    assert unsigned_wire(moved, sig) is None
    parsed = Envelope.parse(moved)
    assert parsed.verify(keys) and parsed.canonical() == wire != moved
    # The sig cut from inside the body (before the body's own "ts"), none at top level.
    inside = wire.replace(f',"sig":"{sig}"'.encode(), b"").replace(b'{"a":1,"ts":2}', f'{{"a":1,"sig":"{sig}","ts":2}}'.encode())
    assert not Envelope.parse(inside).verify(keys)
    # Equality ignores the caches; copies with changes drop them.
    assert Envelope.parse(wire) == env == Envelope.model_validate(json.loads(wire))
    assert env.model_copy(update={"seq": 5}).canonical() != wire


def test_libsodium_signatures_are_openssls() -> None:
    # Identity signs through libsodium (faster); Ed25519 is deterministic (RFC 8032), so
    # the bytes must be exactly what `cryptography` (OpenSSL) makes, and verify there.
    import os

    from accord.ledger import Identity

    for size in (0, 1, 64, 700, 5000):
        identity = Identity.generate("residents")
        message = os.urandom(size)
        signature = identity.sign(message)
        assert signature == identity.private_key.sign(message)
        identity.private_key.public_key().verify(signature, message)  # raises if not
    restored = Identity.from_private_bytes("residents", identity.private_bytes())
    assert restored.sign(b"x") == identity.sign(b"x")
