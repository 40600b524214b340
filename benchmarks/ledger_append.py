"""Ledger append throughput on SQLite.

    python benchmarks/ledger_append.py --entries 1000000 [--runs 3] [--batch 512] [--e2e-entries 100000]
        [--check-workers N]

1. *Store and hash*: envelopes already signed and parsed (as the chair holds them when it
   records), appended with `Ledger.append_canonical` in batches of `--batch` (the chair's
   batch size) into a fresh SQLite file (WAL): hash chain, RFC 9162 leaf hashes, the
   in-memory Merkle tree, the values-card index, one INSERT per table per batch, one
   commit per batch. Then one checkpoint (tree root + Ed25519 signature).
2. *End to end*: two processes, as in a deployment where delegates sign in their own
   processes: one signs every event (`Signer.seal`, RFC 8785 + Ed25519) and sends the
   wire bytes; this one, the chair, parses each (`Envelope.parse`), checks signatures
   with the chair's `SignatureChecker` and appends in batches (as `Chair._flush`). Run
   twice: signatures checked in the chair's process (`check_workers=0`, the default: in
   a thread from 8 envelopes a batch), then on `--check-workers` worker processes
   (default: one per CPU), pipelined as in `Chair._loop` (the oldest batch recorded
   while the later ones are checked). Reported: events/s, the ratio to one process's
   bare Ed25519 verification rate (measured just before), and the share of all the
   machine's CPU time (every core, for the run's wall time) spent signing + verifying
   (CPU time, measured around each), and doing any work at all (every process's CPU
   time, the check workers' included). On a machine shared with other jobs the last
   says how much of it the benchmark got.
   The stage shares are of the chair's wall time.

Each figure is the median of `--runs` runs; the shares of time are from one run.

    python benchmarks/ledger_append.py --entries 200000 --runs 3 --e2e-entries 20000
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import os
import tempfile
import time
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path

from ledger_common import SESSION, actor_identities, envelopes, identity, keys, machine, median, parsed, seal_event

from ledger_verify import _verify_sample

from accord.chair import _IN_FLIGHT_PER_WORKER
from accord.checking import SignatureChecker
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
    (`Signer.seal`: RFC 8785 + Ed25519), send its wire bytes in chunks; last, the CPU
    time spent signing and the process's whole CPU time."""
    ids = actor_identities()
    clock = time.thread_time  # CPU time: a signer preempted by other jobs is not signing
    conn.recv()  # start together with the clock of the checking side
    cpu = time.process_time()
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
    conn.send((signing, time.process_time() - cpu))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; 0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def end_to_end(n: int, batch: int, directory: Path, workers: int = 0) -> tuple[float, dict[str, float]]:
    """Two processes, as in a deployment: one signs (the delegates), this one is the
    chair, which checks each envelope with the chair's own code: `Envelope.parse`, then
    the chair's `SignatureChecker` (`check_workers=workers`: 0, in this process, in a
    thread from 8 envelopes; N, on N worker processes, with the chair's pipeline: the
    oldest batch recorded while the later ones are checked, at most
    `_IN_FLIGHT_PER_WORKER * N` in flight), and appends in batches of `batch`
    (`Ledger.append_canonical`, as `Chair._flush`). Every event is checked here, the
    chair's own calls too (in a session the chair signs those itself): the harder case.

    The stages are of this process's wall time; "verify" is the CPU time spent verifying
    signatures wherever that ran, "sign" the CPU time spent signing, "cpu" every
    process's CPU time (this one, the signer, the check workers)."""
    public = PublicKeys(keys())
    ledger = await Ledger.open(directory / "e2e.db")
    stages = {"parse": 0.0, "check": 0.0, "append": 0.0, "wait": 0.0}
    clock = time.perf_counter
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    signer = ctx.Process(target=_delegates_sign, args=(theirs, n, 64), daemon=True)
    signer.start()
    checker = SignatureChecker(public, workers)
    depth = _IN_FLIGHT_PER_WORKER * workers or 1
    try:
        await checker.start()  # warm, as the chair starts it before the session opens
        started_cpu = [_cpu_seconds(w.process.pid) for w in checker._workers]  # imports: not counted
        await ledger.create_session(SESSION, "bench", "bench", "sha256:0")
        buffer: list[tuple[Envelope, bytes]] = []
        in_flight: deque[tuple[list[Envelope], asyncio.Future[list[bool]]]] = deque()
        received = True
        ours.send("go")
        started = clock()
        cpu = time.process_time()
        while received or in_flight:
            if received and len(in_flight) < depth and (not in_flight or ours.poll()):
                t0 = clock()
                wires = ours.recv()  # blocks only with nothing else to do
                t1 = clock()
                stages["wait"] += t1 - t0
                if wires is None:
                    received = False
                    continue
                envs = [Envelope.parse(wire) for wire in wires]
                t2 = clock()
                in_flight.append((envs, checker.check(envs)))
                stages["parse"] += t2 - t1
                stages["check"] += clock() - t2
                continue
            t0 = clock()
            envs, checks = in_flight.popleft()
            verified = await checks
            t1 = clock()
            stages["check"] += t1 - t0  # waiting for the checks of the oldest batch
            for env, ok in zip(envs, verified, strict=True):
                if not ok:
                    raise AssertionError("bad signature")
                buffer.append((env, env.canonical()))
            if len(buffer) >= batch:
                await ledger.append_canonical(SESSION, buffer)
                buffer = []
            stages["append"] += clock() - t1
        t2 = clock()
        await ledger.append_canonical(SESSION, buffer)
        stages["append"] += clock() - t2
        elapsed = clock() - started
        cpu = time.process_time() - cpu
        worker_cpu = sum(_cpu_seconds(w.process.pid) for w in checker._workers) - sum(started_cpu)
        signing, signer_cpu = ours.recv()
        signer.join()
        stages["verify"] = checker.verify_seconds
        stages["sign"] = signing
        stages["cpu"] = cpu + signer_cpu + worker_cpu
        stages["cpu: chair"], stages["cpu: signer"], stages["cpu: check workers"] = cpu, signer_cpu, worker_cpu
        if (await ledger.tree(SESSION)).size != n:
            raise AssertionError("not every event was appended")
        return elapsed, stages
    finally:
        await checker.close()
        if signer.is_alive():
            signer.kill()
        await ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--e2e-entries", type=int, default=None, help="default: min(entries, 100000)")
    parser.add_argument(
        "--check-workers", type=int, default=None, help="end to end with this many check workers too (default: CPUs)"
    )
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

    cores = os.cpu_count() or 1
    workers_options = [0] + sorted({args.check_workers or cores})
    results: dict[int, dict[str, list[float]]] = {
        w: {"rate": [], "bound": [], "work": [], "busy": []} for w in workers_options
    }
    last: dict[int, dict[str, float]] = {}
    for run in range(args.runs):
        # The bound: bare Ed25519 verification on one process, measured just before.
        bare = 20_000 / _verify_sample(20_000)
        for workers in workers_options:
            with tempfile.TemporaryDirectory() as tmp:
                seconds, stages = asyncio.run(end_to_end(e2e_n, args.batch, Path(tmp), workers))
            got = results[workers]
            got["rate"].append(e2e_n / seconds)
            got["bound"].append(e2e_n / seconds / bare)
            # Of all the CPU time the machine had (every core, for the run's wall time).
            got["work"].append((stages["sign"] + stages["verify"]) / (seconds * cores))
            got["busy"].append(stages["cpu"] / (seconds * cores))
            last[workers] = {k: v / seconds for k, v in stages.items() if k in ("parse", "check", "append", "wait")}
            per_event = {k.removeprefix("cpu: "): v / e2e_n * 1e6 for k, v in stages.items() if k.startswith("cpu")}
            print(
                f"  end-to-end run {run + 1}, check workers {workers}: {seconds:.2f} s, "
                f"{e2e_n / seconds:,.0f} events/s "
                f"({got['bound'][-1]:.0%} of one process's bare Ed25519 verification, {bare:,.0f}/s just before); "
                f"signing + verifying {got['work'][-1]:.0%} of the {cores} cores' time, all work {got['busy'][-1]:.0%}; "
                "CPU per event: " + ", ".join(f"{k} {v:.0f} µs" for k, v in per_event.items())
            )
    for workers in workers_options:
        got = results[workers]
        where = "in the chair's process" if workers == 0 else f"on {workers} worker processes"
        print(
            f"end to end sign + check + append ({e2e_n:,} events), signatures checked {where}: "
            f"median {median(got['rate']):,.0f} events/s ({median(got['bound']):.0%} of one process's bare Ed25519 "
            f"verification rate); signing + verifying {median(got['work']):.0%} of the {cores} cores' time "
            f"(all work {median(got['busy']):.0%}); the chair's wall time in the last run: "
            + ", ".join(f"{k} {v:.0%}" for k, v in last[workers].items())
        )


if __name__ == "__main__":
    main()
