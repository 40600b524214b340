"""Whole sessions at scale: N delegates of single-text, memory bus vs a private Mosquitto.

Run from the checkout (a measurement, not a test)::

    python benchmarks/session_scale.py [--sizes 2,10,100,1000] [--rounds 20]
        [--transports memory,mqtt] [--per-process 100] [--repeat 1] [--timeout 600]
        [--profile 1000] [--slim-opening] [--cache-spec-hash] [--lift-envelope-limit]
        [--force] [--keep] [--json]

For each size N it writes a synthetic session file to a temporary directory: N
constituencies, each with 3 values cards of 3 attentional policies and 3 constituents;
an agenda of 3 issues with 4 options each; every (option, card) pair assessed with a
score drawn from `random.Random(seed)`, in [-0.8, 1]; reservation -0.9 (below every
outcome's utility, so ratification can always pass); protocol `single-text` (veto) with
`deadline_rounds` = --rounds; strategies boulware, linear, conceder in turn; fixed seed;
`turn_timeout_s` 120 (--turn-timeout; generous, so that slowness shows as time, not as
missed votes). Then it runs the session

* **memory**: `run_session` on `memory://`, chair and every delegate in one process
  (a child process of this script, so that it can be timed out and profiled);
* **mqtt**: `accord run FILE --bus mqtt://127.0.0.1:PORT --per-process K --json
  --ledger LEDGER` as a subprocess, against a private Mosquitto this script starts on a
  free loopback port (`set_tcp_nodelay true`, persistence off): the chair in that
  process, delegates in ceil(N/K) subprocesses of K each (K = 1 for N <= 10);
* **mqtt-1proc** (only when asked for): `run_session` over that broker, chair and every
  delegate in one process on one connection: the MQTT transport without the delegate
  processes (and without the opening handshake they need).

Each run gets its own SQLite ledger, which is then read back: envelopes, the session
time from the first entry's `ts` to the last's, messages per second (envelopes /
session time), and the call-to-answer round trip of every `move` (its `ts` minus the
`ts` of the latest `call` to that delegate before it in the ledger; all clocks are this
machine's). Each ledger is verified (`Ledger.verify`: signatures, sequence numbers,
hash chain, Merkle tree and checkpoints), and the memory and MQTT outcomes of each N
are compared. `--profile N` adds a cProfile run of the chair process (memory and mqtt)
at size N, outside the timed runs, and prints its top functions.

The signed `session.open` entry carries the whole session file (5 MB at N = 1000).
Accord refuses envelopes over `MAX_ENVELOPE_BYTES` (256 KiB), except the chair's
opening, which may be up to `MAX_OPENING_BYTES` (64 MiB); a delegate host parses it
once for all its delegates and keeps only the keys and the file's hash (it validates
and hashes the whole session file once, but builds only its own delegates). Calls the
protocol makes to many delegates at once go out as one `calls` envelope per round on
the broadcast topic (`accord.chair.GROUP_CALLS_FROM`, 16), so a round of N delegates is
one chair envelope and N delegate moves. An MQTT cell whose opening exceeds
`MAX_OPENING_BYTES` is skipped with the reason (`--force` runs it anyway). A memory
run's final checkpoint is co-signed by every delegate, and a signed note may carry at
most 100 signatures, so from N = 100 it may fail verification there (being fixed in
the ledger); `accord run --bus mqtt://` seals without co-signers.

Three opt-in what-ifs from before these changes, applied in every process of a run
(this script's and, through a `sitecustomize` module put on PYTHONPATH in the temporary
directory, the chair's and the delegate hosts') without touching Accord's files:
`--lift-envelope-limit` raises `MAX_ENVELOPE_BYTES` to 64 MiB; `--slim-opening` leaves
the session file out of the opening (its `spec_hash` stays); `--cache-spec-hash` is now
a no-op (`SessionPlan.spec_hash` is computed once per plan).

Throughput is given two ways: ledger entries per second, and delegate messages (signed
by a delegate, sent over the bus, checked and logged by the chair) per second.

Outcomes are compared as the agreement, round and reason, and as a digest of every
delegate move (actor, sequence number, move): equal digests mean every vote was the same.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import pstats
import random
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.mqtt_broker when run as a script

ISSUES = 3
OPTIONS = 4
CARDS = 3
POLICIES = 3
CONSTITUENTS = 3
STRATEGIES = ("boulware", "linear", "conceder")
RESERVATION = -0.9
SCORE_RANGE = (-0.8, 1.0)
LIFTED_LIMIT = 64 * 1024 * 1024
_LIMIT_ENV = "ACCORD_BENCH_ENVELOPE_LIMIT"
_SLIM_ENV = "ACCORD_BENCH_SLIM_OPENING"
_HASH_ENV = "ACCORD_BENCH_CACHE_SPEC_HASH"
_SITECUSTOMIZE = f"""\
# Written by benchmarks/session_scale.py (--lift-envelope-limit / --slim-opening) into its
# temporary directory, which is put on PYTHONPATH only for the runs it measures.
import os
if os.environ.get({_LIMIT_ENV!r}) or os.environ.get({_SLIM_ENV!r}) or os.environ.get({_HASH_ENV!r}):
    import sys
    sys.path.insert(0, {str(ROOT)!r})
    from benchmarks.session_scale import apply_what_ifs
    apply_what_ifs(
        int(os.environ.get({_LIMIT_ENV!r}) or 0),
        bool(os.environ.get({_SLIM_ENV!r})),
        bool(os.environ.get({_HASH_ENV!r})),
    )
"""


def apply_what_ifs(limit: int, slim: bool, cache_hash: bool = False) -> None:
    """Measurement-only changes to Accord in this process, never written to its files.

    `limit`: raise `MAX_ENVELOPE_BYTES` (parse and verify) to it. `slim`: the chair's
    signed `session.open` leaves out the session file itself (`spec`) and keeps its hash
    (`spec_hash`), which delegates already check against their own copy of the file.
    `cache_hash`: `SessionPlan.spec_hash` (a property that hashes the whole session file
    on every access; a delegate host reads it once per delegate) is computed once per plan.
    """
    if cache_hash:
        from accord.session_plan import SessionPlan

        shipped = SessionPlan.__dict__["spec_hash"]
        if isinstance(shipped, property):

            def spec_hash(self: Any) -> str:
                cached = self.__dict__.get("_bench_spec_hash")
                if cached is None:
                    cached = self.__dict__["_bench_spec_hash"] = shipped.fget(self)
                return cached

            SessionPlan.spec_hash = property(spec_hash)  # type: ignore[assignment,method-assign]
    if limit:
        import accord.ledger.envelope
        import accord.ledger.verify

        accord.ledger.envelope.MAX_ENVELOPE_BYTES = limit
        accord.ledger.verify.MAX_ENVELOPE_BYTES = limit  # type: ignore[attr-defined]
    if slim:
        import accord.distributed
        import accord.session

        original = accord.session.opening_body
        if getattr(original, "_slim", False):
            return

        def opening_body(plan: Any, session_id: str, keys: dict[str, str]) -> dict[str, Any]:
            body = original(plan, session_id, keys)
            body.pop("spec", None)
            return body

        opening_body._slim = True  # type: ignore[attr-defined]
        accord.session.opening_body = opening_body  # type: ignore[assignment]
        accord.distributed.opening_body = opening_body  # type: ignore[attr-defined]


def what_if_env(directory: Path, limit: int, slim: bool, cache_hash: bool) -> dict[str, str]:
    """Apply the what-ifs here and return the environment that applies them in children."""
    if not (limit or slim or cache_hash):
        return {}
    apply_what_ifs(limit, slim, cache_hash)
    (directory / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    path = os.pathsep.join(p for p in (str(directory), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path}
    if limit:
        env[_LIMIT_ENV] = str(limit)
    if slim:
        env[_SLIM_ENV] = "1"
    if cache_hash:
        env[_HASH_ENV] = "1"
    return env


def opening_bytes(file: Path) -> tuple[int, float]:
    """Size of the signed `session.open` envelope a run of `file` writes (keys are fixed
    length, so dummy ones give the size to a few bytes), and the plan's build time."""
    import rfc8785

    from accord.session import opening_body
    from accord.session_plan import load_plan

    started = time.perf_counter()
    plan, _ = load_plan(file)
    built = time.perf_counter() - started
    keys = {p.id: "A" * 43 for p in plan.participants} | {"chair": "A" * 43}
    body = opening_body(plan, f"{plan.spec.id}-20260101-000000-abcd", keys)
    envelope = {"v": 1, "session": f"{plan.spec.id}-20260101-000000-abcd", "actor": "chair", "seq": 1,
                "kind": "session.open", "body": body, "ts": "2026-01-01T00:00:00.000000Z", "sig": "A" * 86}
    return len(rfc8785.dumps(envelope)), built


# --- the synthetic session ---------------------------------------------------------------


def make_session(n: int, rounds: int, seed: int = 7, turn_timeout_s: float = 120.0) -> dict[str, Any]:
    """A session file (as a dict) for `n` delegates of single-text; same inputs, same file."""
    rng = random.Random(f"session-scale:{seed}:{n}")
    agenda = [
        {
            "id": f"i{i}",
            "description": f"Issue {i}",
            "context": f"When deciding issue {i}",
            "options": [{"id": f"o{j}", "description": f"Option {j} of issue {i}"} for j in range(OPTIONS)],
        }
        for i in range(ISSUES)
    ]
    constituencies = []
    assessments = []
    delegates = {}
    for d in range(n):
        cid = f"d{d:04d}"
        cards = [
            {
                "id": f"{cid}-c{c}",
                "title": f"Value {c} of {cid}",
                "description": f"What constituency {cid} attends to, {c}.",
                "policies": [f"MOMENTS of kind {p} for value {c}" for p in range(POLICIES)],
            }
            for c in range(CARDS)
        ]
        constituents = [
            {"id": f"{cid}-p{p}", "holds": sorted({f"{cid}-c{p % CARDS}", f"{cid}-c{(p + d) % CARDS}"})}
            for p in range(CONSTITUENTS)
        ]
        constituencies.append(
            {
                "id": cid,
                "cards": cards,
                "constituents": constituents,
                "mandate": {"reservation": RESERVATION},
            }
        )
        for card in cards:
            for issue in agenda:
                for option in issue["options"]:
                    assessments.append(
                        {
                            "option": f"{issue['id']}/{option['id']}",
                            "card": card["id"],
                            "score": round(rng.uniform(*SCORE_RANGE), 3),
                            "by": "constituents",
                        }
                    )
        delegates[cid] = {"strategy": STRATEGIES[d % len(STRATEGIES)]}
    return {
        "id": f"scale-{n}",
        "title": f"Synthetic single-text session, {n} delegates",
        "agenda": agenda,
        "constituencies": constituencies,
        "assessments": assessments,
        "protocol": {"name": "single-text", "deadline_rounds": rounds},
        "delegates": delegates,
        "seed": seed,
        "turn_timeout_s": turn_timeout_s,
    }


# --- reading a ledger back -------------------------------------------------------------


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def analyse_ledger(path: Path, session_id: str | None = None) -> dict[str, Any]:
    """Envelopes, session time, message rate, call-to-move latency and verification."""
    from accord.ledger import Ledger

    ledger = await Ledger.open(str(path))
    try:
        if session_id is None:
            sessions = await ledger.sessions()
            session_id = sessions[-1].id
        rows = await ledger.entries(session_id)
        started = time.perf_counter()
        report = await ledger.verify(session_id)
        verify_s = time.perf_counter() - started
        info = await ledger.find_session(session_id)
    finally:
        await ledger.close()
    envelopes = [json.loads(r.envelope) for r in rows]
    stamps = [_ts(e["ts"]) for e in envelopes]
    span = max(stamps) - min(stamps) if stamps else 0.0
    last_call: dict[str, float] = {}
    latencies: list[float] = []
    kinds: dict[str, int] = {}
    moves = sorted(
        (e["actor"], e["seq"], json.dumps(e["body"].get("move"), sort_keys=True))
        for e in envelopes
        if e["kind"] == "move"
    )
    moves_digest = hashlib.sha256(json.dumps(moves).encode()).hexdigest()[:16]
    for env, ts in zip(envelopes, stamps, strict=True):
        kinds[env["kind"]] = kinds.get(env["kind"], 0) + 1
        if env["actor"] == "chair" and env["kind"] == "call":
            last_call[env["body"]["to"]] = ts
        elif env["actor"] == "chair" and env["kind"] == "calls":  # one call to many delegates
            for to in env["body"]["to"]:
                last_call[to] = ts
        elif env["actor"] != "chair" and env["kind"] == "move" and env["actor"] in last_call:
            latencies.append(ts - last_call[env["actor"]])
    first = None if report.ok else report.first
    outcome = getattr(info, "outcome", None)
    return {
        "session": session_id,
        "envelopes": len(rows),
        "kinds": kinds,
        "session_s": span,
        "first_ts": min(stamps) if stamps else None,
        "last_ts": max(stamps) if stamps else None,
        "msgs_per_s": len(rows) / span if span > 0 else float("nan"),
        # Delegate envelopes (signed, sent over the bus, checked and logged by the chair)
        # per second: the throughput figure that does not shrink when calls are grouped.
        "delegate_msgs_per_s": sum(1 for e in envelopes if e["actor"] != "chair") / span if span > 0 else float("nan"),
        "rtt_p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "rtt_p99_ms": percentile(latencies, 99) * 1000 if latencies else float("nan"),
        "moves": len(latencies),
        "moves_digest": moves_digest,
        "verified": report.ok,
        "verify_problem": None if first is None else f"entry {first.idx}: {first.reason}",
        "verify_s": verify_s,
        "outcome": outcome,
    }


# --- the memory run (in a child process) -----------------------------------------------


def memory_worker(file: Path, ledger_path: Path, profile: Path | None, bus_url: str = "memory://") -> None:
    """Child process: load, build and run the session on `bus_url` (chair and every
    delegate in this process, one bus connection); print JSON timings."""
    t0 = time.perf_counter()
    from accord.keystore import KeyStore
    from accord.ledger import Ledger
    from accord.session import run_session
    from accord.session_plan import load_plan

    t_import = time.perf_counter()
    plan, _ = load_plan(file)
    t_plan = time.perf_counter()

    async def go() -> Any:
        ledger = await Ledger.open(str(ledger_path))
        try:
            keystore = KeyStore(ledger_path.parent / "accord.keys")
            return await run_session(plan, ledger, keystore=keystore, bus_url=bus_url)
        finally:
            await ledger.close()

    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(asyncio.run, go())
        profiler.dump_stats(str(profile))
    else:
        result = asyncio.run(go())
    t_end = time.perf_counter()
    print(
        json.dumps(
            {
                "session": result.session_id,
                "agreement": result.ended.agreement,
                "reason": result.ended.reason,
                "round": result.ended.round,
                "entries": result.entries,
                "import_s": t_import - t0,
                "plan_s": t_plan - t_import,
                "run_s": t_end - t_plan,
            }
        )
    )


# --- running one cell ------------------------------------------------------------------


_LAUNCHED_AT = 0.0  # wall clock at the last launch: startup = first entry's ts - this
_LAST_CPU_S = 0.0  # user + system CPU seconds of the last run's processes


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a run we started (its own process group: the chair and its delegate hosts)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _run(command: list[str], timeout: float, env: dict[str, str]) -> tuple[int | None, str, str, float]:
    global _LAUNCHED_AT, _LAST_CPU_S
    _LAUNCHED_AT = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        code = None
    wall = time.perf_counter() - started
    # CPU of the run's processes (the chair process and the delegate hosts it waited
    # for; not the broker): against wall time x cores, how busy the machine was for us.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    _LAST_CPU_S = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return code, out.decode(errors="replace"), err.decode(errors="replace"), wall


def _phases(row: dict[str, Any]) -> dict[str, Any]:
    """Wall time split: launch to the first entry, the session, the last entry to exit."""
    if row.get("first_ts") is None:
        return {}
    return {
        "cpu_s": _LAST_CPU_S,
        "startup_s": row["first_ts"] - _LAUNCHED_AT,
        "teardown_s": _LAUNCHED_AT + row["wall_s"] - row["last_ts"],
    }


def _last_error(err: str) -> str:
    """The exception line of a traceback (or the tail of stderr), on one line."""
    text = " ".join(err.translate(str.maketrans("", "", "│╭╮╰╯─")).split())
    waited = re.search(r"after (\d+) s, no delegate process has announced: (.*?) \(start them", text)
    if waited:
        missing = re.findall(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", waited[2])
        return f"the chair gave up after {waited[1]} s waiting for delegate hosts: {len(missing)} delegates had not announced"
    lines = [line.strip() for line in err.strip().splitlines() if line.strip()]
    named = [line for line in lines if "Error" in line.split(":")[0] or "Expired" in line.split(":")[0]]
    return " ".join((named[-1:] or lines[-3:]))[:400]


def run_memory(
    file: Path, work: Path, timeout: float, profile: Path | None = None, env: dict[str, str] | None = None,
    bus_url: str = "memory://",
) -> dict[str, Any]:
    ledger = work / "ledger.db"
    command = [sys.executable, __file__, "--memory-worker", str(file), str(ledger), "--worker-bus", bus_url]
    if profile is not None:
        command += ["--profile-to", str(profile)]
    code, out, err, wall = _run(command, timeout, dict(os.environ) | (env or {}))
    row: dict[str, Any] = {"wall_s": wall}
    if code != 0:
        row["error"] = "timeout" if code is None else f"exit {code}: {_last_error(err)}"
        return row
    result = json.loads(out.strip().splitlines()[-1])
    row |= {
        "run_s": result["run_s"],
        "plan_s": result["plan_s"],
        "agreement": result["agreement"],
        "reason": result["reason"],
        "round": result["round"],
    }
    row |= asyncio.run(analyse_ledger(ledger, result["session"]))
    return row | _phases(row)


def run_mqtt(
    file: Path, work: Path, url: str, per_process: int, timeout: float, profile: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    ledger = work / "ledger.db"
    prefix = [sys.executable]
    if profile is not None:
        prefix += ["-m", "cProfile", "-o", str(profile)]
    command = prefix + [
        "-m", "accord.cli", "run", str(file), "--bus", url, "--per-process", str(per_process),
        "--json", "--ledger", str(ledger),
    ]
    code, out, err, wall = _run(command, timeout, dict(os.environ) | {"PYTHONUNBUFFERED": "1"} | (env or {}))
    row: dict[str, Any] = {"wall_s": wall, "per_process": per_process}
    if code != 0:
        row["error"] = "timeout" if code is None else f"exit {code}: {_last_error(err)}"
        if ledger.exists():
            with contextlib.suppress(Exception):
                row["partial"] = asyncio.run(analyse_ledger(ledger))
        return row
    try:
        result = json.loads(out[out.index("{"):])
    except ValueError:
        row["error"] = f"no JSON result (exit {code}): {_last_error(err) or out[-300:]}"
        return row
    row |= {"agreement": result["agreement"], "reason": result["reason"], "round": result["round"]}
    row |= asyncio.run(analyse_ledger(ledger, result["session"]))
    return row | _phases(row)


# --- the broker ------------------------------------------------------------------------


@contextlib.contextmanager
def private_broker(directory: Path) -> Any:
    """A private Mosquitto on a free loopback port: TCP_NODELAY on, persistence off."""
    from tests.mqtt_broker import MosquittoBroker, find_mosquitto

    if find_mosquitto() is None:
        sys.exit("mosquitto is not installed (apt-get install mosquitto)")
    broker = MosquittoBroker(directory)
    # MosquittoBroker's config turns persistence on (for restart tests); a benchmark
    # run never restarts the broker, so it is switched off here (the last setting wins).
    broker.config.write_text(
        broker.config.read_text().replace("persistence true\n", "persistence false\n")
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


# --- the report ------------------------------------------------------------------------


def _median(rows: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and not math.isnan(r[key])]
    return statistics.median(values) if values else float("nan")


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if "error" not in r]
    if not ok:
        out = {"error": rows[0].get("error", "?"), "wall_s": _median(rows, "wall_s")}
        if "partial" in rows[0]:
            out["partial"] = rows[0]["partial"]
        return out
    first = ok[0]
    return {
        "runs": len(ok),
        "failed": len(rows) - len(ok),
        **{
            key: _median(ok, key)
            for key in ("wall_s", "cpu_s", "startup_s", "session_s", "teardown_s", "msgs_per_s", "delegate_msgs_per_s",
                        "rtt_p50_ms", "rtt_p99_ms")
        },
        "wall_s_all": [round(r["wall_s"], 2) for r in ok],
        "session_s_all": [round(r["session_s"], 2) for r in ok],
        "envelopes": first["envelopes"],
        "moves_digest": first["moves_digest"],
        "same_moves_across_repeats": all(r["moves_digest"] == first["moves_digest"] for r in ok),
        "verified": all(r["verified"] for r in ok),
        "verify_problem": next((r["verify_problem"] for r in ok if r["verify_problem"]), None),
        "agreement": first["agreement"],
        "reason": first["reason"],
        "round": first["round"],
        "same_outcome_across_repeats": all(
            (r["agreement"], r["reason"]) == (first["agreement"], first["reason"]) for r in ok
        ),
        "kinds": first["kinds"],
        "per_process": first.get("per_process"),
    }


def print_profile(path: Path, label: str, top: int = 30) -> None:
    print(f"\n--- cProfile of the chair process, {label} (top {top} by own time) ---")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    print(f"--- {label}: top {top} by cumulative time ---")
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2,10,100,1000", help="delegate counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=20, help="single-text deadline_rounds")
    parser.add_argument(
        "--transports", default="memory,mqtt",
        help="memory, mqtt (accord run --bus, delegates in subprocesses) and mqtt-1proc "
        "(run_session over the broker: chair and delegates in one process, one connection)",
    )
    parser.add_argument("--per-process", type=int, default=100, help="delegates per process (N > 10)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (the table shows medians)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run before it is killed")
    parser.add_argument("--turn-timeout", type=float, default=120.0, help="the session's turn_timeout_s")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lift-envelope-limit", action="store_true",
                        help=f"raise MAX_ENVELOPE_BYTES to {LIFTED_LIMIT} in every process of the runs")
    parser.add_argument("--slim-opening", action="store_true",
                        help="what-if: session.open without the session file (its hash stays)")
    parser.add_argument("--cache-spec-hash", action="store_true",
                        help="what-if: SessionPlan.spec_hash computed once per plan, not per access")
    parser.add_argument("--force", action="store_true",
                        help="run MQTT cells whose opening exceeds the envelope limit anyway")
    parser.add_argument("--profile", type=int, default=0, help="also profile the chair at this N")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON too")
    parser.add_argument("--memory-worker", nargs=2, metavar=("FILE", "LEDGER"), help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    parser.add_argument("--worker-bus", default="memory://", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.memory_worker:
        memory_worker(
            Path(args.memory_worker[0]), Path(args.memory_worker[1]),
            Path(args.profile_to) if args.profile_to else None, args.worker_bus,
        )
        return

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    load = os.getloadavg()[0]
    print(
        f"single-text (veto), {args.rounds} rounds, sizes {sizes}, transports {transports}, "
        f"repeat {args.repeat}, turn_timeout_s {args.turn_timeout:g}, {os.cpu_count()} CPUs, "
        f"load average {load:.1f}, Python {sys.version.split()[0]}, envelope limit "
        f"{'LIFTED to %d' % LIFTED_LIMIT if args.lift_envelope_limit else 'as shipped'}, opening "
        f"{'WITHOUT the session file (what-if)' if args.slim_opening else 'as shipped'}, spec_hash "
        f"{'cached (what-if)' if args.cache_spec_hash else 'as shipped'}",
        flush=True,
    )
    results: dict[tuple[str, int], dict[str, Any]] = {}
    openings: dict[int, int] = {}
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="accord-scale-")) if args.keep else Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="accord-scale-"))
        )
        if args.keep:
            print(f"keeping {tmp}", flush=True)
        env = what_if_env(
            tmp, LIFTED_LIMIT if args.lift_envelope_limit else 0, args.slim_opening, args.cache_spec_hash
        )
        # The chair's opening may be as large as MAX_OPENING_BYTES (it alone carries the
        # session file); every other envelope keeps MAX_ENVELOPE_BYTES.
        from accord.ledger.envelope import MAX_OPENING_BYTES as limit

        url = None
        if {"mqtt", "mqtt-1proc"} & set(transports):
            broker_dir = tmp / "broker"
            broker_dir.mkdir()
            broker = stack.enter_context(private_broker(broker_dir))
            url = broker.url
            print(f"private Mosquitto at {url} (set_tcp_nodelay true, persistence false)", flush=True)
        for n in sizes:
            file = tmp / f"session-{n}.json"
            file.write_text(json.dumps(make_session(n, args.rounds, args.seed, args.turn_timeout)))
            openings[n], built = opening_bytes(file)
            over = openings[n] > limit
            print(
                f"N={n}: session file {file.stat().st_size / 1e6:.2f} MB, session.open envelope "
                f"{openings[n]} bytes ({'OVER' if over else 'within'} the {limit}-byte limit), "
                f"build_plan {built:.2f} s",
                flush=True,
            )
            for transport in transports:
                per_process = 1 if n <= 10 else args.per_process
                if transport == "mqtt" and over and not args.force:
                    why = (f"session.open is {openings[n]} bytes > MAX_OPENING_BYTES {limit}: delegate "
                           "processes drop it and never answer (--force runs it, --lift-envelope-limit lifts it)")
                    print(f"  mqtt N={n}: SKIPPED: {why}", flush=True)
                    results[(transport, n)] = {"error": f"skipped: {why}", "wall_s": float("nan")}
                    continue
                rows = []
                for rep in range(args.repeat):
                    work = tmp / f"{transport}-{n}-{rep}"
                    work.mkdir()
                    if transport == "memory":
                        row = run_memory(file, work, args.timeout, env=env)
                    elif transport == "mqtt-1proc":
                        assert url is not None
                        row = run_memory(file, work, args.timeout, env=env, bus_url=url)
                    else:
                        assert url is not None
                        row = run_mqtt(file, work, url, per_process, args.timeout, env=env)
                    rows.append(row)
                    keys = ("wall_s", "cpu_s", "startup_s", "session_s", "teardown_s", "envelopes", "msgs_per_s",
                            "delegate_msgs_per_s", "rtt_p50_ms", "rtt_p99_ms", "verified", "verify_problem", "reason", "error")
                    brief = {k: (round(v, 3) if isinstance(v, float) else v) for k in keys if (v := row.get(k)) is not None}
                    print(f"  {transport} N={n} run {rep + 1}: {json.dumps(brief, default=str)}", flush=True)
                    if "partial" in row:
                        part = row["partial"]
                        print(f"    its ledger: {part['envelopes']} entries {part['kinds']}, outcome {part['outcome'] and {k: v for k, v in part['outcome'].items() if k != 'utilities'}}, verified {part['verified']} {part['verify_problem'] or ''}", flush=True)
                results[(transport, n)] = summarise(rows)
            if args.profile == n:
                for transport in transports:
                    if transport == "mqtt" and over and not args.force:
                        print(f"  mqtt N={n}: not profiled (skipped, see above)", flush=True)
                        continue
                    work = tmp / f"profile-{transport}-{n}"
                    work.mkdir()
                    out = work / "chair.prof"
                    if transport == "memory":
                        row = run_memory(file, work, args.timeout * 2, profile=out, env=env)
                    elif transport == "mqtt-1proc":
                        assert url is not None
                        row = run_memory(file, work, args.timeout * 2, profile=out, env=env, bus_url=url)
                    else:
                        assert url is not None
                        per_process = 1 if n <= 10 else args.per_process
                        row = run_mqtt(file, work, url, per_process, args.timeout * 2, profile=out, env=env)
                    print(f"  profiled {transport} N={n}: wall {row.get('wall_s', float('nan')):.1f} s, "
                          f"session {row.get('session_s', float('nan')):.1f} s {row.get('error', '')}", flush=True)
                    if out.exists():
                        print_profile(out, f"{transport}, N={n}")

    print()
    print(
        "| transport | N | delegates per process | wall s | CPU s (ours, all cores) | startup s | session s (first to last ts) "
        "| teardown s | envelopes | entries/s | delegate msg/s | call->move p50 ms | p99 ms | ledger verifies | outcome |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for n in sizes:
        for transport in transports:
            s = results[(transport, n)]
            if "error" in s:
                print(f"| {transport} | {n} | | {s['wall_s']:.1f} | | | | | | | | | | | FAILED: {s['error'][:300]} |")
                continue
            outcome = "agreement" if s["agreement"] else "no agreement"
            outcome += f", round {s['round']}: {s['reason']}"
            ver = "yes" if s["verified"] else f"NO ({s['verify_problem']})"
            pp = s["per_process"] if transport == "mqtt" else "all in one"
            print(
                f"| {transport} | {n} | {pp} | {s['wall_s']:.2f} | {s['cpu_s']:.1f} | {s['startup_s']:.2f} | {s['session_s']:.2f} "
                f"| {s['teardown_s']:.2f} | {s['envelopes']} | {s['msgs_per_s']:.0f} "
                f"| {s['delegate_msgs_per_s']:.0f} | {s['rtt_p50_ms']:.1f} "
                f"| {s['rtt_p99_ms']:.1f} | {ver} | {outcome} |"
            )
    if "memory" in transports and len(transports) > 1:
        print()
        for n in sizes:
            a = results[("memory", n)]
            for other in (t for t in transports if t != "memory"):
                b = results[(other, n)]
                if "error" in a or "error" in b:
                    print(f"N={n}: memory and {other} outcomes not compared (a run failed or was skipped)")
                    continue
                same = (a["agreement"], a["round"], a["reason"]) == (b["agreement"], b["round"], b["reason"])
                moves = a["moves_digest"] == b["moves_digest"]
                print(f"N={n}: memory and {other} outcomes {'the same' if same else 'DIFFER'}, "
                      f"moves {'identical' if moves else 'DIFFER'} ({a['moves_digest']} / {b['moves_digest']}): "
                      f"{a['agreement']} ({a['reason']}) / {b['agreement']} ({b['reason']})")
    if args.json:
        print(json.dumps({f"{t}:{n}": s for (t, n), s in results.items()}, default=str, indent=1))


if __name__ == "__main__":
    main()
