"""Shared by the ledger benchmarks: a realistic stream of signed envelopes, cached on disk.

The stream is a session: the chair's ``session.open``, then cycles of (call to delegate
d, d's move citing two values cards) over three delegates, every envelope signed through
`Signer.seal` exactly as in a run. Keys are derived from fixed seeds, so a cached
stream stays valid across runs. Generating a million envelopes takes minutes (it is
signing), so they are generated once, on every core, and cached in
``$TMPDIR/accord-bench/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from accord.ledger import Envelope, Identity, Signer  # noqa: E402

DELEGATES = ("residents", "builders", "council")
SESSION = "bench-ledger"
CACHE = Path(tempfile.gettempdir()) / "accord-bench"


def identity(actor: str) -> Identity:
    return Identity.from_private_bytes(actor, hashlib.sha256(f"accord-bench/{actor}".encode()).digest())


def keys() -> dict[str, str]:
    return {a: identity(a).public_key for a in ("chair", *DELEGATES)}


def _position(i: int) -> tuple[str, int, str, dict[str, Any]]:
    """(actor, seq, kind, body) of entry i >= 1 of the stream."""
    j = i - 1
    cycle, r = divmod(j, 2 * len(DELEGATES))
    delegate = DELEGATES[r // 2]
    rnd = cycle + 1
    if r % 2 == 0:
        return "chair", 2 + cycle * len(DELEGATES) + r // 2, "call", {
            "kind": "call", "to": delegate, "round": rnd, "deadline_s": 30.0,
            "standing": {"housing": "a40", "height": "mid"},
        }
    body = {
        "round": rnd,
        "value_model": "sha256:" + hashlib.sha256(delegate.encode()).hexdigest(),
        "move": {
            "kind": "offer",
            "offer": {"housing": "a40", "height": "mid", "riverbank": "split", "finance": "phased"},
            "justification": {
                "utility": 0.4213,
                "cited": [
                    {"card": f"{delegate}-rooted", "contribution": 0.3012},
                    {"card": f"{delegate}-green", "contribution": 0.1201},
                ],
                "rationale": "honours 'Staying rooted' (+0.30); honours 'Green commons' (+0.12)",
            },
        },
    }
    return delegate, rnd, "move", body


def actor_identities() -> dict[str, Identity]:
    return {a: identity(a) for a in ("chair", *DELEGATES)}


def seal_event(ids: dict[str, Identity], i: int) -> Envelope:
    """Event `i` of the stream, signed by its actor: entry 0 is the chair's opening."""
    if i == 0:
        return Signer(ids["chair"], SESSION).seal("session.open", {"session_id": SESSION, "keys": keys()})
    actor, seq, kind, body = _position(i)
    return Signer(ids[actor], SESSION, next_seq=seq).seal(kind, body)


def _generate(start: int, stop: int) -> list[bytes]:
    ids = actor_identities()
    return [seal_event(ids, i).canonical() for i in range(start, stop)]


def envelopes(n: int, *, workers: int | None = None) -> list[bytes]:
    """The first n canonical signed envelopes of the stream (cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"envelopes-{n}.jsonl"
    if path.exists():
        return path.read_bytes().split(b"\n")[:-1]
    for bigger in sorted(CACHE.glob("envelopes-*.jsonl"), key=lambda p: int(p.stem.split("-")[1])):
        if int(bigger.stem.split("-")[1]) >= n:
            return bigger.read_bytes().split(b"\n")[:n]
    workers = workers or os.cpu_count() or 1
    started = time.perf_counter()
    step = max(1, -(-n // (workers * 8)))
    lines: list[bytes] = []
    with ProcessPoolExecutor(workers) as pool:
        for chunk in pool.map(_generate, range(0, n, step), [min(n, s + step) for s in range(0, n, step)]):
            lines.extend(chunk)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(line + b"\n" for line in lines))
    tmp.replace(path)
    print(f"(generated and cached {n:,} signed envelopes in {time.perf_counter() - started:.0f} s: {path})", file=sys.stderr)
    return lines


def parsed(lines: list[bytes]) -> Iterator[tuple[Envelope, bytes]]:
    """What the chair holds when it records: the parsed envelope and its canonical bytes."""
    for raw in lines:
        yield Envelope.model_construct(**json.loads(raw)), raw


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
