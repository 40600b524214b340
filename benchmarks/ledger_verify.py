"""Full verification of a large session log, on one and on several processes.

    python benchmarks/ledger_verify.py --entries 1000000 [--runs 3] [--workers 1 2] [--from-rows]

Builds (once, cached in $TMPDIR/accord-bench/) a SQLite ledger holding one session of
`--entries` signed envelopes and its end-of-session checkpoint, co-signed by the three
delegates. Then, per run, `Ledger.verify` (what `accord verify` runs) checks every
envelope (form, session, key, Ed25519 signature), the hash chain, the per-actor
sequence numbers, the Merkle tree and the checkpoint's signatures against its root, with
`--workers` processes (the calling process and `--workers - 1` helpers), each reading
from the file the entries it checks. Reading is included in the time. `--from-rows`
also times `verify_entries` over rows already read into memory (the path for
PostgreSQL), which ships the rows to the helpers.

The bound: Ed25519 verification alone (`cryptography`, OpenSSL) on the same machine,
on one core and on every core at once, is measured first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ledger_common import CACHE, DELEGATES, SESSION, envelopes, identity, machine, median, parsed

import accord.ledger.verify as verify_module
from accord.ledger import Ledger, verify_entries
from accord.ledger.store import Entry
from accord.ledger.verify import VerifyReport

SAMPLE = 20_000


def _verify_sample(n: int) -> float:
    """Seconds to verify n Ed25519 signatures over realistic envelopes (one process)."""
    chair = identity("chair")
    key = chair.private_key.public_key()
    message = envelopes(2)[1]
    signature = chair.sign(message)
    started = time.perf_counter()
    for _ in range(n):
        key.verify(signature, message)
    return time.perf_counter() - started


def ed25519_bound(workers: int) -> tuple[float, float]:
    """Signatures verified per second by one process, and by `workers` processes at once."""
    one = SAMPLE / _verify_sample(SAMPLE)
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_verify_sample, [100] * workers))  # start the processes first
        started = time.perf_counter()
        list(pool.map(_verify_sample, [SAMPLE] * workers))
        many = SAMPLE * workers / (time.perf_counter() - started)
    return one, many


async def build(n: int) -> Path:
    path = CACHE / f"ledger-{n}.db"
    if path.exists():
        async with await Ledger.open(path, create=False) as ledger:
            if (await ledger.find_session(SESSION)).entries == n and await ledger.checkpoints(SESSION):
                return path
        path.unlink()
    lines = envelopes(n)
    started = time.perf_counter()
    tmp = path.with_suffix(".building")
    for leftover in CACHE.glob(tmp.name + "*"):
        leftover.unlink()
    async with await Ledger.open(tmp) as ledger:
        await ledger.create_session(SESSION, "bench", "bench", "sha256:0")
        batch: list = []
        for item in parsed(lines):
            batch.append(item)
            if len(batch) == 4096:
                await ledger.append_canonical(SESSION, batch)
                batch = []
        if batch:
            await ledger.append_canonical(SESSION, batch)
        await ledger.seal(SESSION, identity("chair"), [identity(d) for d in DELEGATES])
    tmp.replace(path)
    print(f"(built {path} in {time.perf_counter() - started:.0f} s)")
    return path


async def load(path: Path) -> tuple[list[Entry], list[str], float]:
    started = time.perf_counter()
    async with await Ledger.open(path, create=False) as ledger:
        rows = await ledger.entries(SESSION)
        notes = await ledger.checkpoint_notes(SESSION)
    return rows, notes, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--from-rows", action="store_true", help="also time verify_entries over rows in memory")
    args = parser.parse_args()
    n = args.entries
    print(f"# ledger_verify: {n:,} entries, {args.runs} runs, workers {args.workers}; {machine()}")
    most = max(args.workers)
    one, many = ed25519_bound(most)
    print(f"Ed25519 verification alone: {one:,.0f}/s on one process, {many:,.0f}/s on {most} processes at once")

    path = asyncio.run(build(n))
    rows: list[Entry] = []
    notes: list[str] = []
    if args.from_rows:
        rows, notes, load_s = asyncio.run(load(path))
        assert len(rows) == n
        print(f"reading {n:,} entries and the checkpoint from SQLite: {load_s:.1f} s ({n / load_s:,.0f} entries/s)")

    # Time spent in the (parallel) per-entry checks, to tell it from the serial rest.
    checks_s = [0.0]

    def timed(fn: Any) -> Any:
        def run(*a: object) -> object:
            started = time.perf_counter()
            try:
                return fn(*a)
            finally:
                checks_s[0] += time.perf_counter() - started

        return run

    verify_module._run_checks = timed(verify_module._run_checks)  # type: ignore[assignment]
    verify_module._run_summaries = timed(verify_module._run_summaries)  # type: ignore[assignment]

    async def from_file(workers: int) -> VerifyReport:
        async with await Ledger.open(path, create=False) as ledger:
            return await ledger.verify(SESSION, workers=workers)

    def machine_busy() -> tuple[float, float]:
        """(busy, total) CPU seconds of the whole machine so far, every process (Linux)."""
        try:
            fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        except OSError:
            return 0.0, 0.0
        tick = os.sysconf("SC_CLK_TCK")
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields) - idle) / tick, sum(fields) / tick

    paths = [("file", "Ledger.verify from the SQLite file")] + (
        [("rows", "verify_entries over rows in memory")] if args.from_rows else []
    )
    rates: dict[tuple[str, int], list[float]] = {(p, w): [] for p, _ in paths for w in args.workers}
    speedups: dict[str, list[float]] = {}
    bound_speedups: list[float] = []
    for run in range(args.runs):
        # The parallelism the machine offers right now (other jobs share it): bare
        # Ed25519 on `most` processes vs one, measured just before this run's checks.
        one_now, many_now = ed25519_bound(most)
        bound_speedups.append(many_now / one_now)
        print(f"  run {run + 1}: Ed25519 alone {one_now:,.0f}/s on 1 process, {many_now:,.0f}/s on {most}")
        for source, _ in paths:
            for workers in args.workers:
                checks_s[0] = 0.0
                busy_before, total_before = machine_busy()
                started = time.perf_counter()
                if source == "file":
                    report = asyncio.run(from_file(workers))
                else:
                    report = verify_entries(SESSION, rows, checkpoints=notes, workers=workers)
                seconds = time.perf_counter() - started
                busy_after, total_after = machine_busy()
                cores = (total_after - total_before) / seconds if total_after > total_before else 0.0
                busy = (busy_after - busy_before) / seconds
                assert report.ok and report.covered == n and report.signatures_checked == n, report.problems[:3]
                assert sorted(report.cosigners) == sorted(DELEGATES)
                rates[(source, workers)].append(n / seconds)
                print(
                    f"  run {run + 1}, {source}, {workers} worker(s): {seconds:.1f} s, {n / seconds:,.0f} entries/s; "
                    f"per-entry checks {checks_s[0]:.1f} s, the rest (serial) {seconds - checks_s[0]:.1f} s; "
                    f"machine: {busy:.2f} of {cores:.0f} cores busy on average (every process, ours and others')"
                )
            if len(args.workers) > 1:
                speedups.setdefault(source, []).append(
                    rates[(source, args.workers[-1])][-1] / rates[(source, args.workers[0])][-1]
                )
    for source, title in paths:
        base = median(rates[(source, args.workers[0])])
        for workers in args.workers:
            rate = median(rates[(source, workers)])
            bound = one if workers == 1 else many * min(workers, most) / most
            print(
                f"full verification, {title}, {workers} worker(s): median {rate:,.0f} entries/s "
                f"({n / rate:.1f} s for {n:,}); {rate / base:.2f}x the {args.workers[0]}-worker rate; "
                f"{rate / bound:.0%} of the Ed25519-only rate"
            )
        if speedups.get(source):
            print(
                f"speed-up {args.workers[-1]} vs {args.workers[0]} worker(s), {title}, per run: "
                + ", ".join(f"{x:.2f}x" for x in speedups[source])
                + f" (median {median(speedups[source]):.2f}x); bare Ed25519 on {most} processes vs 1 just "
                "before each run: "
                + ", ".join(f"{x:.2f}x" for x in bound_speedups)
                + f" (median {median(bound_speedups):.2f}x)"
            )

if __name__ == "__main__":
    main()
