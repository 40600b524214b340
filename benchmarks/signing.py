"""What sealing one envelope costs, part by part: Ed25519 signing with `cryptography`
(OpenSSL) and with libsodium (PyNaCl, what `Identity.sign` uses), and canonical JSON of a
move's body with the standard library's C encoder and with orjson (what
`constituencies.hashing` uses). Both pairs give the same bytes; this shows why the
ledger uses the second of each.

    python benchmarks/signing.py [--repeat 7] [--number 20000]

Prints the median over `--repeat` runs of `--number` calls each, in µs per call."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import nacl.bindings
import orjson

from accord.ledger import Identity

# A move's body as the stacked-alternating-offers example writes it (about 900 bytes).
MOVE_BODY: dict[str, Any] = {
    "move": {
        "justification": {
            "cited": [
                {"card": "biz-lively", "contribution": 0.11875},
                {"card": "biz-own-trade", "contribution": 0.0703125},
                {"card": "biz-steady", "contribution": 0.004687500000000001},
                {"card": "biz-neighbours", "contribution": 0.0625},
            ],
            "rationale": "Proposing an outcome worth 0.26 to us (aspiration 0.25, round 1 of 30): it honours "
            "'A street with life in it' (+0.12); honours 'A trade of one's own' (+0.07).",
            "utility": 0.25625,
        },
        "kind": "propose",
        "offer": {"affordable": "a40", "finance": "jv", "height": "tall", "riverbank": "promenade"},
    },
    "round": 1,
    "value_model": "sha256:63210f99398e4de562bcca682806cedd1fd5b8c11324f077ee4081e1b10a7a9c",
}


def _stdlib_encoder() -> Callable[[Any], bytes]:
    encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return lambda value: encoder.encode(value).encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()

    identity = Identity.generate("business")
    stdlib = _stdlib_encoder()
    message = stdlib(MOVE_BODY) + os.urandom(64)  # about an envelope's signed bytes
    secret = identity.sodium_secret
    signature = identity.sign(message)
    public = identity.private_key.public_key()
    public_raw = secret[32:]
    assert identity.private_key.sign(message) == signature
    assert orjson.dumps(MOVE_BODY, option=orjson.OPT_SORT_KEYS) == stdlib(MOVE_BODY)

    cases: list[tuple[str, Callable[[], Any]]] = [
        ("sign, cryptography (OpenSSL)", lambda: identity.private_key.sign(message)),
        ("sign, libsodium (PyNaCl)", lambda: nacl.bindings.crypto_sign(message, secret)),
        ("verify, cryptography (OpenSSL)", lambda: public.verify(signature, message)),
        ("verify, libsodium (PyNaCl)", lambda: nacl.bindings.crypto_sign_open(signature + message, public_raw)),
        ("move body to JSON, stdlib C encoder", lambda: stdlib(MOVE_BODY)),
        ("move body to JSON, orjson", lambda: orjson.dumps(MOVE_BODY, option=orjson.OPT_SORT_KEYS)),
    ]
    print(f"{len(message)}-byte message; median of {args.repeat} runs of {args.number} calls")
    results = {}
    for label, call in cases:
        runs = timeit.repeat(call, number=args.number, repeat=args.repeat)
        results[label] = statistics.median(runs) / args.number * 1e6
        print(f"{label:40s} {results[label]:8.2f} µs")
    print(
        f"libsodium/OpenSSL speed: signing {results['sign, cryptography (OpenSSL)'] / results['sign, libsodium (PyNaCl)']:.2f}x, "
        f"verifying {results['verify, cryptography (OpenSSL)'] / results['verify, libsodium (PyNaCl)']:.2f}x; "
        f"orjson/stdlib: {results['move body to JSON, stdlib C encoder'] / results['move body to JSON, orjson']:.1f}x"
    )


if __name__ == "__main__":
    main()
