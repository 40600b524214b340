"""Ledger append throughput on SQLite.

    python benchmarks/ledger_append.py --entries 1000000 [--runs 3] [--batch 512] [--e2e-entries 100000]

1. *Store and hash*: envelopes already signed and parsed (as the chair holds them when it
   records), appended with `Ledger.append_canonical` in batches of `--batch` (the chair's
   batch size) into a fresh SQLite file (WAL): hash chain, RFC 9162 leaf hashes, the
   in-memory Merkle tree, the values-card index, one INSERT per table per batch, one
   commit per batch. Then one checkpoint (tree root + Ed25519 signature).
2. *End to end*: two processes, as in a deployment where delegates sign in their own
   processes: one signs every event (`Signer.seal`, RFC 8785 + Ed25519) and sends the
   wire bytes; this one, the chair, parses and checks each (`Envelope.parse`,
   `Envelope.verify`, as `Chair._consume`) and appends in batches (as `Chair._flush`).
   The shares are of the chair's wall time; signing is the other process's busy time.

Each figure is the median of `--runs` runs; the shares of time are from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from ledger_common import SESSION, actor_identities, envelopes, identity, keys, machine, median, parsed, seal_event

from ledger_verify import _verify_sample

from accord.ledger import Envelope, Ledger, PublicKeys
from accord.ledger.merkle import MerkleTree, leaf_hash


async def store_and_hash(items: list, batch: int, directory: Path) -> tuple[float, float]:
    ledger = await Ledger.open(directory / "bench.db")
    try:
        await ledger.create_session(SESSION, "bench", "bench", "sha256:0")
        started = time.perf_counter()
        for start in range(0, len(items), batch):
            await ledger.append_canonical(SESSION, items[start : start + batch])
        appended = time.perf_counter() - started
        cp_started = time.perf_counter()
        await ledger.checkpoint(SESSION, identity("chair"))
        return appended, time.perf_counter() - cp_started
    finally:
        await ledger.close()


def sqlite_floor(items: list, batch: int, directory: Path) -> float:
    """Seconds for plain `sqlite3` (no SQLAlchemy, no asyncio, rows prepared beforehand)
    to insert the same rows in the same batches into the same schema: the floor."""
    import sqlite3

    from accord.ledger.store import cited_cards

    async def schema() -> None:
        async with await Ledger.open(directory / "floor.db"):
            pass

    asyncio.run(schema())
    rows, cards, prev = [], [], "00" * 32
    for idx, (env, raw) in enumerate(items):
        digest = hashlib.sha256(bytes.fromhex(prev) + raw).hexdigest()
        rows.append((SESSION, idx, env.actor, env.seq, env.kind, raw.decode(), prev, digest, leaf_hash(raw).hex()))
        cards.append([(SESSION, card, idx) for card in cited_cards(env.kind, env.body)])
        prev = digest
    conn = sqlite3.connect(directory / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("INSERT INTO sessions VALUES (?, 'b', 'b', '', 'h', 'running', NULL)", (SESSION,))
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows[start : start + batch])
        conn.executemany(
            "INSERT INTO entry_cards VALUES (?, ?, ?)", [c for group in cards[start : start + batch] for c in group]
        )
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def hashing_only(lines: list[bytes]) -> float:
    started = time.perf_counter()
    prev = bytes(32)
    leaves = []
    for raw in lines:
        prev = hashlib.sha256(prev + raw).digest()
        leaves.append(leaf_hash(raw))
    MerkleTree(leaves)
    return time.perf_counter() - started


def _delegates_sign(conn: Connection, n: int, chunk: int) -> None:
    """The signing side, in its own process (as delegates are): seal each event
    (`Signer.seal`: RFC 8785 + Ed25519), send its wire bytes in chunks; last, the time
    spent signing."""
    ids = actor_identities()
    clock = time.perf_counter
    conn.recv()  # start together with the clock of the checking side
    signing = 0.0
    out: list[bytes] = []
    for i in range(n):
        t0 = clock()
        out.append(seal_event(ids, i).canonical())
        signing += clock() - t0
        if len(out) >= chunk:
            conn.send(out)
            out = []
    conn.send(out)
    conn.send(None)
    conn.send(signing)


async def end_to_end(n: int, batch: int, directory: Path) -> tuple[float, dict[str, float]]:
    """Two processes, as in a deployment: one signs (the delegates), this one is the
    chair, which checks each envelope exactly as `Chair._consume` does (`Envelope.parse`,
    `Envelope.verify`, the canonical bytes) and appends in batches of `batch`
    (`Ledger.append_canonical`, as `Chair._flush`). Every event is checked here, the
    chair's own calls too (in a session the chair signs those itself): the harder case."""
    public = PublicKeys(keys())
    ledger = await Ledger.open(directory / "e2e.db")
    stages = {"check": 0.0, "append": 0.0, "wait": 0.0}
    clock = time.perf_counter
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    signer = ctx.Process(target=_delegates_sign, args=(theirs, n, 64), daemon=True)
    signer.start()
    try:
        await ledger.create_session(SESSION, "bench", "bench", "sha256:0")
        buffer: list[tuple[Envelope, bytes]] = []
        ours.send("go")
        started = clock()
        while True:
            t0 = clock()
            wires = ours.recv()
            t1 = clock()
            stages["wait"] += t1 - t0
            if wires is None:
                break
            for wire in wires:
                received = Envelope.parse(wire)
                if not received.verify(public):
                    raise AssertionError("bad signature")
                buffer.append((received, received.canonical()))
            t2 = clock()
            stages["check"] += t2 - t1
            if len(buffer) >= batch:
                await ledger.append_canonical(SESSION, buffer)
                buffer = []
                stages["append"] += clock() - t2
        t2 = clock()
        await ledger.append_canonical(SESSION, buffer)
        stages["append"] += clock() - t2
        elapsed = clock() - started
        stages["sign (other process)"] = ours.recv()
        signer.join()
        if (await ledger.tree(SESSION)).size != n:
            raise AssertionError("not every event was appended")
        return elapsed, stages
    finally:
        if signer.is_alive():
            signer.kill()
        await ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--e2e-entries", type=int, default=None, help="default: min(entries, 100000)")
    args = parser.parse_args()
    n = args.entries
    e2e_n = args.e2e_entries or min(n, 100_000)
    print(f"# ledger_append: {n:,} entries, batches of {args.batch}, {args.runs} runs; {machine()}")

    lines = envelopes(n)
    items = list(parsed(lines))
    rates, checkpoint_s = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            seconds, cp = asyncio.run(store_and_hash(items, args.batch, Path(tmp)))
        rates.append(n / seconds)
        checkpoint_s.append(cp)
        print(f"  store+hash run {run + 1}: {seconds:.2f} s, {n / seconds:,.0f} events/s")
    hash_s = hashing_only(lines)
    with tempfile.TemporaryDirectory() as tmp:
        floor_s = sqlite_floor(items, args.batch, Path(tmp))
    last = n / rates[-1]
    print(
        f"store+hash into the tree (signed envelopes, SQLite): median {median(rates):,.0f} events/s "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f}); checkpoint of {n:,} entries "
        f"{median(checkpoint_s) * 1000:.1f} ms"
    )
    print(
        f"  of which hashing (chain + leaves + tree) alone: {n / hash_s:,.0f} events/s, "
        f"{hash_s / last:.0%} of the last run's time"
    )
    print(
        f"  floor: plain sqlite3 inserting the same prepared rows, same batches: {n / floor_s:,.0f} rows/s; "
        f"the ledger reaches {rates[-1] * floor_s / n:.0%} of it (last run)"
    )

    e2e_rates, of_bound = [], []
    shares: dict[str, float] = {}
    for run in range(args.runs):
        # The bound: bare Ed25519 verification on one process, measured just before.
        bare = 20_000 / _verify_sample(20_000)
        with tempfile.TemporaryDirectory() as tmp:
            seconds, stages = asyncio.run(end_to_end(e2e_n, args.batch, Path(tmp)))
        e2e_rates.append(e2e_n / seconds)
        of_bound.append(e2e_n / seconds / bare)
        shares = {k: v / seconds for k, v in stages.items()}
        print(
            f"  end-to-end run {run + 1}: {seconds:.2f} s, {e2e_n / seconds:,.0f} events/s; bare Ed25519 "
            f"verification just before: {bare:,.0f}/s on one process ({of_bound[-1]:.0%} of it)"
        )
    print(
        f"end to end sign + check + append ({e2e_n:,} events): median {median(e2e_rates):,.0f} events/s "
        f"({median(of_bound):.0%} of one process's bare Ed25519 verification rate); "
        "shares in the last run: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
    )


if __name__ == "__main__":
    main()
