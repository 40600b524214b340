"""The hash chain: each entry's hash commits to the previous one and to its envelope."""

from __future__ import annotations

import hashlib

GENESIS = "0" * 64


def entry_hash(prev_hash: str, canonical_envelope: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_envelope).hexdigest()
