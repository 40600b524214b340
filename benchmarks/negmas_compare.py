"""Accord against NegMAS on ANAC domains: time per negotiation, agreement rate, Nash optimality.

Run from the checkout, with Accord's environment (a measurement, not a test):

    python benchmarks/negmas_compare.py                  # table on stdout
    python benchmarks/negmas_compare.py --write-md       # ... and the section in BENCHMARKS.md

NegMAS is AGPL-3.0, so it never enters Accord's process: this script creates its own
virtualenv `benchmarks/.venv-negmas` (gitignored), installs `requirements-negmas.txt`
there with pip, and runs `_negmas_side.py` in it as a subprocess that answers in JSON.

What is compared, per ANAC domain (Genius XML, `../shared/data/genius/anac`), for each
pair of time-dependent strategies (boulware-boulware, boulware-linear, boulware-conceder;
the first profile file plays the first strategy and opens), with the same number of
rounds on both sides (Accord's `deadline_rounds` = NegMAS's `n_steps`; one round = one
turn per party on both):

* Accord, ledger off: `accord.simulate.simulate` (protocol + delegates in memory);
* Accord, ledger on: `accord.local_session.run_local` (what `accord run --bus none`
  runs) into a SQLite ledger in a temp dir, the ledger opened once per domain: no bus,
  the protocol and delegates called directly in this process; every message signed by
  its actor's key, hash-chained and stored (one transaction a negotiation), the
  session sealed with a checkpoint co-signed by every delegate. Signatures are not
  checked on receipt (nothing crosses a process); `Ledger.verify` checks them after
  each domain, outside the timings. The ledger is the one the memory-bus run writes,
  entry for entry (checked here too, outside the timings);
* Accord, ledger on, ledger process: the same `run_local` with a `LedgerWorker`
  (`accord run --bus none --ledger-process`), one for the whole benchmark, started
  outside the timings: the same ledger, its entries signed, chained and stored by a
  second process while this one negotiates (fed a batch at a time, as it takes them;
  at the session's end this one signs what is left from the back while the other takes
  it from the front). Two processes on two cores: the CPU time of both is reported
  too;
* Accord, ledger on, memory bus (an extra column): `accord.session.run_session` on the
  in-process memory bus into the same ledger: every message also published, parsed and
  its signature verified by the chair (or the delegates) on receipt, appended in batches
  while the session runs;
* NegMAS: `SAOMechanism` with `BoulwareTBNegotiator` / `LinearTBNegotiator` /
  `ConcederTBNegotiator` ("named"), and the same negotiator class with Accord's concession
  exponents ("matched": the like-for-like baseline for speed, and a second one for
  quality). See `_negmas_side.py`.

Fairness of the timing. Each time is the median of `--reps` repetitions of one
negotiation (each side is deterministic: the repetitions make the same moves). One-off
costs are timed apart and left out: importing the domain (Accord: `import_genius`;
NegMAS: `Scenario.from_genius_folder`, which NegMAS's mechanism does not repeat: a
negotiation is created on an already loaded scenario) and ranking the outcome space
(Accord ranks it once per delegate in `build_plan`; a negotiation here gets fresh
delegates and strategies over the plan's ranked spaces, exactly what `build_plan` builds
minus the ranking). NegMAS's negotiators rank the outcome space themselves in every
negotiation (their inverse utility function); NegMAS "warm" hands them inverses built
once per domain through NegMAS's own `ufun_inverter` argument, which is the like-for-like
comparison; NegMAS "cold" is NegMAS as usually run. Accord's ledger-off times are all
taken before its ledger-on runs, as NegMAS's are in a process that does nothing else. Both sides' utilities are the Genius
utilities (NegMAS's loader keeps raw evaluations, so `_negmas_side.py` rescales them per
issue as Genius does; every NegMAS agreement is checked against Accord's value models).

Nash optimality, the same for both: from Accord's value models, the Nash point is the
outcome maximising prod_i (u_i - d_i) over the individually rational outcomes
(u_i >= d_i), d_i = the party's reservation value; a negotiation's Nash ratio is its
prod_i (u_i - d_i) over that maximum (0 without agreement), and its Nash distance the
Euclidean distance of its utilities (d without agreement) to the Nash point.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import functools
import io
import itertools
import json
import math
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from accord import plugins  # noqa: E402
from accord.importers.genius import GeniusImport, import_genius  # noqa: E402
from accord.ledger import Ledger  # noqa: E402
from accord.ledger_worker import LedgerWorker  # noqa: E402
from accord.ratification import RecordedRatifier  # noqa: E402
from accord.local_session import run_local  # noqa: E402
from accord.session import run_session  # noqa: E402
from accord.session_file import DelegateSpec  # noqa: E402
from accord.session_plan import Participant, SessionPlan, build_plan  # noqa: E402
from accord.simulate import simulate  # noqa: E402
from delegates.delegate import Delegate  # noqa: E402
from protocols.agenda import Agenda  # noqa: E402

HERE = Path(__file__).resolve().parent
SHARED = ROOT.parent / "shared"
ANAC = SHARED / "data" / "genius" / "anac"
VENV = HERE / ".venv-negmas"
REQUIREMENTS = HERE / "requirements-negmas.txt"
NEGMAS_SIDE = HERE / "_negmas_side.py"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
SECTION = "Negotiation speed and quality vs NegMAS"

# Bilateral ANAC domains of different sizes (outcomes in brackets). Energy (390 625
# outcomes) is left out by default: ranking it takes Accord's build_plan about a minute on
# this machine; pass `--domains y2011/Energy` to include it.
DEFAULT_DOMAINS = (
    "y2011/Laptop",  # 27
    "y2013/Coffee",  # 112
    "y2010/ItexvsCypress",  # 180
    "y2013/DogChoosing",  # 270
    "y2011/IS_BT_Acquisition",  # 384
    "y2010/EnglandZimbabwe",  # 576
    "y2013/Icecream",  # 720
    "y2013/Animal",  # 1152, reservation 0.5
    "y2011/Grocery",  # 1600
    "y2011/Amsterdam",  # 3024
    "y2013/Lunch",  # 3840, reservation 0.8
    "y2013/SmartPhone",  # 12000, reservation 0.6
    "y2011/Car",  # 15625
    "y2010/Travel",  # 188160
)
DEFAULT_PAIRS = ("boulware:boulware", "boulware:linear", "boulware:conceder")


# -- Nash optimality, from the value models --------------------------------------------


@dataclasses.dataclass(frozen=True)
class NashStats:
    disagreement: tuple[float, ...]
    point: tuple[float, ...]
    product: float

    def quality(self, utilities: Sequence[float] | None) -> tuple[float, float]:
        """(Nash ratio, distance to the Nash point) of a result; None = no agreement."""
        here = tuple(utilities) if utilities is not None else self.disagreement
        product = (
            math.prod(max(0.0, u - d) for u, d in zip(here, self.disagreement, strict=True))
            if utilities is not None
            else 0.0
        )
        ratio = product / self.product if self.product > 0 else float(utilities is not None)
        return ratio, math.dist(here, self.point)


def nash_stats(agenda: Agenda, models: Sequence[Any], disagreement: Sequence[float]) -> NashStats:
    """The Nash point over the whole outcome space (utilities from each model's per-issue
    option values, summed: a ValueModel's utility), disagreement point `disagreement`."""
    columns = []
    for model in models:
        per_issue = [
            [model.option_values.get(i.id, {}).get(o.id, 0.0) for o in i.options]
            for i in agenda.issues
        ]
        columns.append([sum(combo) for combo in itertools.product(*per_issue)])
    d = tuple(disagreement)
    best, point = -1.0, d
    for us in zip(*columns, strict=True):
        if all(u >= x - 1e-12 for u, x in zip(us, d, strict=True)):
            p = math.prod(u - x for u, x in zip(us, d, strict=True))
            if p > best:
                best, point = p, tuple(us)
    return NashStats(d, point, max(best, 0.0))


# -- the Accord side -------------------------------------------------------------------


@dataclasses.dataclass
class AccordDomain:
    key: str
    imported: GeniusImport
    plan: SessionPlan
    nash: NashStats
    import_s: float
    build_s: float


def fresh_plan(base: SessionPlan, strategies: Sequence[str], classes: dict[str, type]) -> SessionPlan:
    """`base` with new delegates playing `strategies` (in participant order): new strategy
    objects and seeded generators, as build_plan makes them, over base's ranked spaces."""
    spec = base.spec.model_copy(
        update={
            "delegates": {
                p.id: DelegateSpec(strategy=s) for p, s in zip(base.participants, strategies, strict=True)
            }
        }
    )
    participants = []
    for p, name in zip(base.participants, strategies, strict=True):
        view = dataclasses.replace(p.delegate.view, rng=random.Random(f"{spec.seed}:{p.id}"))
        cls = classes[name]
        delegate = Delegate(view, cls(view, cls.Options()), RecordedRatifier(spec.ratifications))
        participants.append(Participant(p.constituency, p.model, name, delegate))
    return dataclasses.replace(base, spec=spec, participants=participants)


def load_accord(key: str, rounds: int) -> AccordDomain:
    folder = ANAC / key
    start = time.perf_counter()
    imported = import_genius(folder, deadline_rounds=rounds)
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    plan = build_plan(imported.spec, str(folder))
    build_s = time.perf_counter() - start
    if len(plan.participants) != 2:
        raise SystemExit(f"{key}: {len(plan.participants)} parties; this benchmark is bilateral")
    nash = nash_stats(
        plan.agenda,
        [p.model for p in plan.participants],
        [p.constituency.mandate.reservation for p in plan.participants],
    )
    return AccordDomain(key, imported, plan, nash, import_s, build_s)


def _outcome(plan: SessionPlan, ended: Any) -> dict[str, Any]:
    agreement = ended.agreement
    return {
        "agreement": agreement,
        "round": ended.round,
        "utilities": [p.model.utility(agreement) for p in plan.participants] if agreement else None,
    }


def _said(rows: Sequence[Any]) -> list[tuple[Any, ...]]:
    """A ledger's entries without clocks, keys and signatures (and the opening without its
    session id and keys): what two runs of one negotiation must have in common."""
    said = []
    for r in rows:
        body = r.body
        if r.kind == "session.open":
            body = {k: v for k, v in body.items() if k not in ("session_id", "keys")}
        said.append((r.actor, r.seq, r.kind, body))
    return said


def time_accord_off(dom: AccordDomain, pairs: Sequence[tuple[str, str]], reps: int) -> dict[str, Any]:
    """Ledger off: `simulate` per pair, `reps` times; the runs, with their outcomes."""
    classes = {name: plugins.strategy(name) for pair in pairs for name in pair}
    # The untouched plan (built with the importer's strategies) against a fresh one: the
    # fresh delegates must make the very same moves.
    first = tuple(dom.plan.spec.delegate_spec(p.id).strategy for p in dom.plan.participants)
    reference = simulate(dom.plan)
    again = simulate(fresh_plan(dom.plan, first, classes))
    if [(a, m.model_dump()) for a, m in reference.moves] != [(a, m.model_dump()) for a, m in again.moves]:
        raise SystemExit(f"{dom.key}: fresh delegates do not replay build_plan's delegates")
    runs = []
    for pair in pairs:
        off: list[float] = []
        result: dict[str, Any] = {}
        for _ in range(reps):
            start = time.perf_counter()
            plan = fresh_plan(dom.plan, pair, classes)
            sim = simulate(plan)
            off.append(time.perf_counter() - start)
            here = _outcome(plan, sim.ended)
            if result and here != result["outcome"]:
                raise SystemExit(f"{dom.key} {pair}: two simulations of one seed differ")
            result = {"outcome": here, "moves": sim.messages}
        ratio, dist = dom.nash.quality(result["outcome"]["utilities"])
        runs.append(
            {
                "pair": list(pair),
                **result,
                "ledger_off_s": off,
                "ledger_on_s": [],
                "ledger_off_median_s": statistics.median(off),
                "ledger_on_median_s": None,
                "ledger_bus_s": [],
                "ledger_bus_median_s": None,
                "ledger_lp_s": [],
                "ledger_lp_median_s": None,
                "ledger_on_cpu_s": None,
                "ledger_lp_cpu_s": None,
                "ledger_lp_worker_cpu_s": None,
                "ledger_entries": None,
                "ledger_run_same_outcome": None,
                "nash_ratio": ratio,
                "nash_distance": dist,
            }
        )
    return {"ledger_open_s": None, "runs": runs}


def _process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used, from /proc (Linux; clock ticks
    of 10 ms, so only sums over many runs mean anything)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def time_accord_ledger(
    dom: AccordDomain, timed: dict[str, Any], reps: int, ledger_dir: Path, worker: LedgerWorker
) -> None:
    """Ledger on, for each run of `timed` (from `time_accord_off`, whose outcomes they
    must reach): `run_local` (no bus) signing and storing in this process, `run_local` with
    `worker` (a ledger process started once for the whole benchmark), then `run_session`
    (memory bus), `reps` times each, into one SQLite ledger per domain; the results are
    added to `timed`, with the CPU time the busless runs took (this process's, and the
    ledger process's, summed over the reps and divided by them)."""
    pairs = [tuple(run["pair"]) for run in timed["runs"]]
    classes = {name: plugins.strategy(name) for pair in pairs for name in pair}
    start = time.perf_counter()
    ledger = await Ledger.open(ledger_dir / f"{dom.key.replace('/', '-')}.db")
    timed["ledger_open_s"] = time.perf_counter() - start
    try:
        for run in timed["runs"]:
            pair = tuple(run["pair"])
            agrees = True
            last = {}
            entries = None
            apart = functools.partial(run_local, worker=worker)
            variants = (
                ("on", run_local, run["ledger_on_s"]),
                ("lp", apart, run["ledger_lp_s"]),
                ("bus", run_session, run["ledger_bus_s"]),
            )
            for name, runner, times in variants:
                cpu = time.process_time()
                worker_cpu = _process_cpu_s(worker.pid)
                for _ in range(reps):
                    start = time.perf_counter()
                    plan = fresh_plan(dom.plan, pair, classes)
                    session = await runner(plan, ledger)
                    times.append(time.perf_counter() - start)
                    entries = session.entries
                    agrees &= _outcome(plan, session.ended) == run["outcome"]
                if name != "bus":  # (fresh_plan included, as in the times)
                    run[f"ledger_{name}_cpu_s"] = (time.process_time() - cpu) / reps
                if name == "lp":
                    run["ledger_lp_worker_cpu_s"] = (_process_cpu_s(worker.pid) - worker_cpu) / reps
                last[name] = session.session_id
            # Outside the timings: the busless runs' ledgers verify and are, entry for
            # entry, the memory-bus run's.
            for name in ("on", "lp"):
                report = await ledger.verify(last[name])
                if not report.ok:
                    raise SystemExit(f"{dom.key} {pair}: the busless run's ledger does not verify: {report.first}")
                same_ledger = _said(await ledger.entries(last[name])) == _said(await ledger.entries(last["bus"]))
                if not same_ledger:
                    raise SystemExit(f"{dom.key} {pair}: the busless run's ledger is not the memory bus run's")
            run["ledger_on_median_s"] = statistics.median(run["ledger_on_s"])
            run["ledger_lp_median_s"] = statistics.median(run["ledger_lp_s"])
            run["ledger_bus_median_s"] = statistics.median(run["ledger_bus_s"])
            run["ledger_entries"] = entries
            run["ledger_run_same_outcome"] = agrees
    finally:
        await ledger.close()


# What the profile groups Accord's time into: (label, file suffix, function name, which
# time). "cum" is the time inside the function and everything it calls; the groups do not
# nest in one another except where the label says so.
PROFILE_GROUPS = (
    ("offer choice (`Strategy.choose_offer`)", "delegates/base.py", "choose_offer", "cum"),
    ("justifications (`justify`, `value_summary`)", "delegates/justification.py", "justify", "cum"),
    ("", "delegates/justification.py", "value_summary", "cum"),
    ("mandate checks (`Delegate._dispose`)", "delegates/delegate.py", "_dispose", "cum"),
    ("protocol state machine (`receive`)", "protocols/stacked_alternating_offers.py", "receive", "cum"),
    # `canonical_json` takes a fast path where it applies and falls back on rfc8785.dumps,
    # so its cumulative time is all the canonical JSON (counting dumps too would be twice).
    ("canonical JSON (`canonical_json`, `canonical_json_fast`: fast path or `rfc8785.dumps`)", "constituencies/hashing.py", "canonical_json", "cum"),
    ("", "constituencies/hashing.py", "canonical_json_fast", "cum"),
    ("Ed25519 sign + verify", "~", "<method 'sign' of 'cryptography.hazmat.bindings._rust.openssl.ed25519.Ed25519PrivateKey' objects>", "own"),
    ("", "~", "<method 'verify' of 'cryptography.hazmat.bindings._rust.openssl.ed25519.Ed25519PublicKey' objects>", "own"),
    ("", "nacl/bindings/crypto_sign.py", "crypto_sign", "cum"),  # what `Identity.sign` calls
    ("ledger writes (`append_canonical`, `seal`, `create_session`, `finish_session`, `SessionWriter`; includes some canonical JSON and signing)", "accord/ledger/store.py", "append_canonical", "cum"),
    ("", "accord/ledger/store.py", "append", "cum"),
    ("", "accord/ledger/store.py", "commit", "cum"),
    ("", "accord/ledger/store.py", "seal", "cum"),
    ("", "accord/ledger/store.py", "create_session", "cum"),
    ("", "accord/ledger/store.py", "finish_session", "cum"),
    ("waiting in the event loop (`epoll`)", "~", "<method 'poll' of 'select.epoll' objects>", "own"),
)


def _grouped(stats: pstats.Stats, total: float) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for label, suffix, name, which in PROFILE_GROUPS:
        rows = [
            (calls, cum if which == "cum" else own)
            for (file, _, fn), (calls, _, own, cum, _) in stats.stats.items()  # type: ignore[attr-defined]
            if fn == name and (file == suffix if suffix == "~" else file.endswith(suffix))
        ]
        seconds, calls = sum(t for _, t in rows), sum(c for c, _ in rows)
        if label:
            groups.append({"group": label, "seconds": seconds, "calls": calls})
        else:
            groups[-1]["seconds"] += seconds
            groups[-1]["calls"] += calls
    for g in groups:
        g["share"] = g["seconds"] / total if total else 0.0
    return [g for g in groups if g["seconds"] > 0]


PROFILE_RUNS_OFF = 20  # negotiations profiled, ledger off
PROFILE_RUNS_ON = 10  # and ledger on (busless)
PROFILE_RUNS_BUS = 3  # and ledger on, memory bus


def profile_accord(dom: AccordDomain, pair: tuple[str, str], ledger_dir: Path, top: int = 12) -> dict[str, Any]:
    """cProfile of one negotiation (repeated), ledger off and on: time by group, and the
    functions with the most own time. Shares are of the profiled call's total (profiling slows
    Python code more than C code, so the shares are indicative)."""
    classes = {name: plugins.strategy(name) for name in pair}
    out: dict[str, Any] = {"domain": dom.key, "pair": list(pair)}

    def summarise(profiler: cProfile.Profile, label: str) -> None:
        stats = pstats.Stats(profiler, stream=io.StringIO())
        total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]  # type: ignore[attr-defined]
        out[label] = {
            "total_s": total,
            "groups": _grouped(stats, total),
            "top_own": [
                {
                    "function": f"{Path(file).name}:{line}({name})" if file != "~" else name,
                    "path": file,
                    "calls": calls,
                    "own_s": own,
                    "cumulative_s": cum,
                    "share": own / total if total else 0.0,
                }
                for (file, line, name), (_, calls, own, cum, _) in rows
            ],
        }

    # Several negotiations each, into one profile: on a shared machine one short profiled
    # run can lose milliseconds to preemption inside whichever function was running.
    out["runs"] = {"ledger_off": PROFILE_RUNS_OFF, "ledger_on": PROFILE_RUNS_ON, "ledger_bus": PROFILE_RUNS_BUS}
    profiler = cProfile.Profile()
    for _ in range(PROFILE_RUNS_OFF):
        plan = fresh_plan(dom.plan, pair, classes)
        profiler.enable()
        sim = simulate(plan)
        profiler.disable()
    out["moves"] = sim.messages
    summarise(profiler, "ledger_off")

    async def on(runner: Any, runs: int) -> int:
        ledger = await Ledger.open(ledger_dir / "profile.db")
        try:
            for _ in range(runs):
                plan = fresh_plan(dom.plan, pair, classes)
                profiler.enable()
                result = await runner(plan, ledger)
                profiler.disable()
            return result.entries
        finally:
            await ledger.close()

    profiler = cProfile.Profile()
    out["entries"] = asyncio.run(on(run_local, PROFILE_RUNS_ON))
    summarise(profiler, "ledger_on")
    profiler = cProfile.Profile()
    asyncio.run(on(run_session, PROFILE_RUNS_BUS))
    summarise(profiler, "ledger_bus")
    return out


# -- the NegMAS side (a subprocess of its own venv) ------------------------------------


def _pinned_version() -> str:
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.strip()
        if line.startswith("negmas=="):
            return line.split("==", 1)[1]
    raise SystemExit(f"{REQUIREMENTS}: no `negmas==VERSION` line")


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_negmas_venv(venv: Path) -> Path:
    """Create `venv` and pip-install the pinned NegMAS into it, unless already there."""
    python = venv_python(venv)
    pinned = _pinned_version()
    if python.exists():
        probe = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('negmas'))"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == pinned:
            return python
    else:
        print(f"creating {venv} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print(f"pip install -r {REQUIREMENTS} into {venv} ...", file=sys.stderr, flush=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True
    )
    return python


def run_negmas(
    python: Path, domains: Sequence[AccordDomain], pairs: Sequence[tuple[str, str]], reps: int,
    rounds: int, variants: Sequence[str], workdir: Path,
) -> dict[str, Any]:
    job = {
        "domains": [
            {"key": d.key, "folder": str(d.imported.folder), "profiles": [p.file.name for p in d.imported.profiles]}
            for d in domains
        ],
        "pairs": [list(p) for p in pairs],
        # NegMAS as usually run ("cold") only for its own negotiators; on Accord's curves
        # only warm, the like-for-like mode.
        "modes": {v: ["cold", "warm"] if v == "named" else ["warm"] for v in variants},
        "variants": list(variants),
        "reps": reps,
        "n_steps": rounds,
        "genius_normalise": True,
        "nash": True,
    }
    job_file = workdir / "negmas-job.json"
    job_file.write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    start = time.perf_counter()
    done = subprocess.run(
        [str(python), str(NEGMAS_SIDE), str(job_file)], stdout=subprocess.PIPE, text=True, env=env
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the NegMAS side failed (exit {done.returncode}); see its stderr above")
    result = json.loads(done.stdout)
    result["process_wall_s"] = wall
    return result


def to_accord_outcome(imported: GeniusImport, agreement: dict[str, str] | None) -> dict[str, str] | None:
    """A NegMAS agreement (issue name -> value name) as an Accord outcome (ids)."""
    if agreement is None:
        return None
    # Names compared without surrounding spaces: NegMAS keeps SmartPhone's " Accessory",
    # Accord's importer strips it.
    given = {name.strip(): value.strip() for name, value in agreement.items()}
    out = {}
    for issue in imported.issues:
        value = given[issue.name.strip()]
        out[issue.id] = next(o.id for o in issue.options if o.name.strip() == value)
    return out


# -- putting it together ---------------------------------------------------------------


def _mean_of(runs: Sequence[dict[str, Any]], field: str) -> float | None:
    values = [r.get(field) for r in runs]
    return None if any(v is None for v in values) else statistics.fmean(values)  # type: ignore[arg-type]


def _geomean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def _ms(s: float | None) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "-"
    ms = s * 1000
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def _x(r: float | None) -> str:
    if r is None or math.isnan(r):
        return "-"
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


def combine(
    accord: dict[str, dict[str, Any]], domains: Sequence[AccordDomain], negmas: dict[str, Any] | None
) -> dict[str, Any]:
    """Per-domain rows and the overall figures."""
    by_key = {d["key"]: d for d in (negmas or {}).get("domains", [])}
    rows = []
    mismatch = 0.0
    for dom in domains:
        a = accord[dom.key]
        runs = a["runs"]
        row: dict[str, Any] = {
            "domain": dom.key,
            "outcomes": dom.imported.outcome_space_size,
            "accord_import_s": dom.import_s,
            "accord_build_s": dom.build_s,
            "accord_ledger_open_s": a["ledger_open_s"],
            "accord_off_s": statistics.fmean(r["ledger_off_median_s"] for r in runs),
            "accord_on_s": statistics.fmean(r["ledger_on_median_s"] for r in runs)
            if all(r["ledger_on_median_s"] is not None for r in runs)
            else None,
            "accord_bus_s": statistics.fmean(r["ledger_bus_median_s"] for r in runs)
            if all(r.get("ledger_bus_median_s") is not None for r in runs)
            else None,
            "accord_lp_s": statistics.fmean(r["ledger_lp_median_s"] for r in runs)
            if all(r.get("ledger_lp_median_s") is not None for r in runs)
            else None,
            # CPU per negotiation (mean over the pairs of each pair's mean over its reps).
            "accord_on_cpu_s": _mean_of(runs, "ledger_on_cpu_s"),
            "accord_lp_cpu_s": _mean_of(runs, "ledger_lp_cpu_s"),
            "accord_lp_worker_cpu_s": _mean_of(runs, "ledger_lp_worker_cpu_s"),
            "accord_rounds": statistics.fmean(r["outcome"]["round"] for r in runs),
            "accord_agreements": sum(r["outcome"]["agreement"] is not None for r in runs),
            "accord_nash_ratio": statistics.fmean(r["nash_ratio"] for r in runs),
            "accord_nash_distance": statistics.fmean(r["nash_distance"] for r in runs),
            "negotiations": len(runs),
            "ledger_same_outcome": all(r["ledger_run_same_outcome"] is not False for r in runs),
        }
        n = by_key.get(dom.key)
        if n is not None and "error" not in n:
            row["negmas_load_s"] = n["load_s"]
            row["negmas_inverse_s"] = n["inverse_s"]
            for variant in ("named", "matched"):
                for mode in ("cold", "warm"):
                    sel = [r for r in n["runs"] if r["variant"] == variant and r["mode"] == mode]
                    if not sel:
                        continue
                    row[f"negmas_{variant}_{mode}_s"] = statistics.fmean(r["median_s"] for r in sel)
                    if mode != "warm":
                        continue
                    qualities = []
                    for r in sel:
                        outcome = to_accord_outcome(dom.imported, r["agreement"])
                        utilities = (
                            [p.model.utility(outcome) for p in dom.plan.participants] if outcome else None
                        )
                        if utilities is not None:
                            mismatch = max(
                                mismatch, *(abs(x - y) for x, y in zip(utilities, r["utilities"], strict=True))
                            )
                        r["accord_utilities"] = utilities
                        qualities.append(dom.nash.quality(utilities))
                    row[f"negmas_{variant}_rounds"] = statistics.fmean(r["steps"] for r in sel)
                    row[f"negmas_{variant}_agreements"] = sum(r["agreement"] is not None for r in sel)
                    row[f"negmas_{variant}_nash_ratio"] = statistics.fmean(q[0] for q in qualities)
                    row[f"negmas_{variant}_nash_distance"] = statistics.fmean(q[1] for q in qualities)
            warm = row.get("negmas_named_warm_s")
            cold = row.get("negmas_named_cold_s")
            row["speedup_off_vs_warm"] = warm / row["accord_off_s"] if warm else None
            row["speedup_off_vs_cold"] = cold / row["accord_off_s"] if cold else None
            if row["accord_on_s"]:
                row["speedup_on_vs_warm"] = warm / row["accord_on_s"] if warm else None
                row["speedup_on_vs_cold"] = cold / row["accord_on_s"] if cold else None
            if row["accord_bus_s"]:
                row["speedup_bus_vs_warm"] = warm / row["accord_bus_s"] if warm else None
                row["speedup_bus_vs_cold"] = cold / row["accord_bus_s"] if cold else None
            if row["accord_lp_s"]:
                row["speedup_lp_vs_warm"] = warm / row["accord_lp_s"] if warm else None
                row["speedup_lp_vs_cold"] = cold / row["accord_lp_s"] if cold else None
            # Like for like: NegMAS warm playing Accord's concession curves, the same
            # strategies (the named negotiators concede on other curves and mostly end
            # sooner; the rounds still differ a little, so a per-round figure is given too).
            same = row.get("negmas_matched_warm_s")
            for variant in ("off", "on", "lp", "bus"):
                mine = row.get(f"accord_{variant}_s")
                row[f"speedup_{variant}_vs_same"] = same / mine if same and mine else None
        elif n is not None:
            row["negmas_error"] = n["error"]
        rows.append(row)

    def total(field: str) -> float | None:
        vals = [r.get(field) for r in rows]
        return None if any(v is None for v in vals) else float(sum(vals))  # type: ignore[arg-type]

    def gm(field: str) -> float | None:
        vals = [r.get(field) for r in rows]
        return None if any(v is None for v in vals) else _geomean(vals)  # type: ignore[arg-type]

    count = sum(r["negotiations"] for r in rows)
    summary: dict[str, Any] = {
        "negotiations": count,
        "accord_agreement_rate": sum(r["accord_agreements"] for r in rows) / count,
        "accord_nash_ratio": statistics.fmean(r["accord_nash_ratio"] for r in rows),
        "accord_nash_distance": statistics.fmean(r["accord_nash_distance"] for r in rows),
        "utility_mismatch_negmas_vs_accord": mismatch,
    }
    if negmas is not None and all("negmas_named_warm_s" in r for r in rows):
        for variant in ("named", "matched"):
            if all(f"negmas_{variant}_agreements" in r for r in rows):
                summary[f"negmas_{variant}_agreement_rate"] = (
                    sum(r[f"negmas_{variant}_agreements"] for r in rows) / count
                )
                summary[f"negmas_{variant}_nash_ratio"] = statistics.fmean(
                    r[f"negmas_{variant}_nash_ratio"] for r in rows
                )
                summary[f"negmas_{variant}_nash_distance"] = statistics.fmean(
                    r[f"negmas_{variant}_nash_distance"] for r in rows
                )
        for field in (
            "speedup_off_vs_warm", "speedup_off_vs_cold", "speedup_on_vs_warm", "speedup_on_vs_cold",
            "speedup_bus_vs_warm", "speedup_bus_vs_cold", "speedup_lp_vs_warm", "speedup_lp_vs_cold",
            "speedup_off_vs_same", "speedup_on_vs_same", "speedup_lp_vs_same", "speedup_bus_vs_same",
        ):
            summary[f"{field}_geomean"] = gm(field)
            summary[f"{field}_min"] = min((r[field] for r in rows if r.get(field)), default=None)
            summary[f"{field}_max"] = max((r[field] for r in rows if r.get(field)), default=None)
        for field in (
            "accord_off_s", "accord_on_s", "accord_bus_s", "accord_lp_s", "negmas_named_warm_s", "negmas_named_cold_s",
            "negmas_matched_warm_s", "accord_on_cpu_s", "accord_lp_cpu_s", "accord_lp_worker_cpu_s",
        ):
            summary[f"total_{field}"] = total(field)
        same = summary["total_negmas_matched_warm_s"]
        for variant in ("off", "on", "lp", "bus"):
            mine = summary[f"total_accord_{variant}_s"]
            summary[f"speedup_{variant}_vs_same_total"] = same / mine if same and mine else None
        off, on = summary["total_accord_off_s"], summary["total_accord_on_s"]
        warm, cold = summary["total_negmas_named_warm_s"], summary["total_negmas_named_cold_s"]
        summary["speedup_off_vs_warm_total"] = warm / off if off else None
        summary["speedup_on_vs_warm_total"] = warm / on if on and warm else None
        summary["speedup_off_vs_cold_total"] = cold / off if off else None
        summary["speedup_on_vs_cold_total"] = cold / on if on and cold else None
        bus = summary["total_accord_bus_s"]
        summary["speedup_bus_vs_warm_total"] = warm / bus if bus and warm else None
        summary["speedup_bus_vs_cold_total"] = cold / bus if bus and cold else None
        lp = summary["total_accord_lp_s"]
        summary["speedup_lp_vs_warm_total"] = warm / lp if lp and warm else None
        summary["speedup_lp_vs_cold_total"] = cold / lp if lp and cold else None
        s_off = summary["speedup_off_vs_same_geomean"]
        s_on = summary["speedup_on_vs_same_geomean"]
        s_lp = summary["speedup_lp_vs_same_geomean"]

        def named(variant: str) -> str:
            return f" (against NegMAS's named negotiators: {_x(summary[f'speedup_{variant}_vs_warm_geomean'])})"

        matched_rate = summary.get("negmas_matched_agreement_rate", 0.0)
        matched_nash = summary.get("negmas_matched_nash_ratio", 0.0)
        summary["targets"] = {
            f"ledger off >= 10x faster than NegMAS (like for like): {_x(s_off)}{named('off')}": None
            if s_off is None
            else s_off >= 10,
            "ledger on (signed, chained, sealed; no bus), one process, faster than NegMAS (like for like): "
            f"{_x(s_on)}{named('on')}": None
            if s_on is None
            else s_on > 1,
            "ledger on (signed, chained, sealed; no bus), signed and stored by a second process, faster than "
            f"NegMAS (like for like): {_x(s_lp)}{named('lp')}": None
            if s_lp is None
            else s_lp > 1,
            "agreement rate >= NegMAS's (named negotiators and Accord's curves)": summary["accord_agreement_rate"]
            >= max(summary["negmas_named_agreement_rate"], matched_rate) - 1e-12,
            "Nash optimality >= NegMAS's (mean Nash ratio; named negotiators and Accord's curves)": summary[
                "accord_nash_ratio"
            ]
            >= max(summary["negmas_named_nash_ratio"], matched_nash) - 1e-12,
        }
    return {"rows": rows, "summary": summary}


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs{f' ({model})' if model else ''}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def load_average() -> float | None:
    """The 1-minute load average (Linux), or None where there is none."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _load_note(meta: dict[str, Any]) -> str:
    loads = [x for x in meta.get("load_average") or [] if x is not None]
    if not loads:
        return ""
    return (
        f" (1-minute load average {' at the start, '.join(f'{x:.1f}' for x in loads)}"
        f"{' at the end' if len(loads) > 1 else ''}, on {os.cpu_count()} cores)"
    )


def _same(s: dict[str, Any], variant: str) -> str:
    """A speed-up against NegMAS warm on Accord's curves: geometric mean [min, max], total."""
    key = f"speedup_{variant}_vs_same"
    return (
        f"{_x(s.get(f'{key}_geomean'))} [{_x(s.get(f'{key}_min'))}, {_x(s.get(f'{key}_max'))}], "
        f"total {_x(s.get(f'{key}_total'))}"
    )


def _per_round(rows: Sequence[dict[str, Any]], field: str, variant: str = "named") -> float | None:
    """Geometric mean over domains of (NegMAS warm s/round, `variant` negotiators) /
    (Accord `field` s/round)."""
    ratios = []
    for r in rows:
        if r.get(field) is None or f"negmas_{variant}_warm_s" not in r:
            return None
        ratios.append(
            (r[f"negmas_{variant}_warm_s"] / r[f"negmas_{variant}_rounds"]) / (r[field] / r["accord_rounds"])
        )
    return _geomean(ratios)


def _cpu_lines(s: dict[str, Any]) -> list[str]:
    """What the busless runs cost in CPU, beside their wall times (sums over the domains
    of each domain's mean per negotiation)."""
    on, lp, worker = s.get("total_accord_on_cpu_s"), s.get("total_accord_lp_cpu_s"), s.get("total_accord_lp_worker_cpu_s")
    wall_on, wall_lp, warm = s.get("total_accord_on_s"), s.get("total_accord_lp_s"), s.get("total_negmas_named_warm_s")
    same = s.get("total_negmas_matched_warm_s")
    if None in (on, lp, worker, wall_on, wall_lp, warm, same):
        return []
    return [
        "CPU time per negotiation, summed over the domains (this process from `time.process_time`, the "
        "ledger process from /proc in 10 ms ticks, so summed over all repetitions first): ledger on, "
        f"one process: {on * 1000:.0f} ms CPU for {wall_on * 1000:.0f} ms wall; ledger process: "
        f"{lp * 1000:.0f} ms in the negotiating process + {worker * 1000:.0f} ms in the ledger process = "
        f"{(lp + worker) * 1000:.0f} ms CPU for {wall_lp * 1000:.0f} ms wall; NegMAS warm: "
        f"{same * 1000:.0f} ms wall on the same curves ({warm * 1000:.0f} ms, named negotiators), one "
        f"process. Measured by total CPU instead of wall time, the ledger process variant is "
        f"{_x(same / (lp + worker))} NegMAS warm on the same curves ({_x(warm / (lp + worker))} against the "
        "named negotiators; NegMAS's wall time taken as its CPU time).",
        "",
    ]


def markdown(report: dict[str, Any], command: str) -> str:
    rows, s, meta = report["rows"], report["summary"], report["meta"]
    lines = [
        f"## {SECTION}",
        "",
        f"Command: `{command}` (Accord's environment; the script creates `benchmarks/.venv-negmas` "
        f"and installs NegMAS {meta.get('negmas_version', '?')} there from `benchmarks/requirements-negmas.txt`). "
        f"Measured {meta['date']} on {meta['machine']}: a shared machine with 2 cores on which other "
        f"jobs were running{_load_note(meta)}, so single figures are noisy, and the NegMAS side runs "
        "after the Accord side, so a change of load between the two shifts the ratios; every time below is the median of "
        f"{meta['reps']} repetitions of one negotiation, all from this one run. {meta['rounds']} rounds "
        "(Accord `deadline_rounds` = NegMAS `n_steps`), stacked alternating offers / SAO, pairs "
        f"{', '.join('-'.join(p) for p in meta['pairs'])} (first profile file opens).",
        "",
        "Per negotiation, in milliseconds (mean over the pairs of each pair's median). *Accord off*: "
        "`simulate()`, no bus, no ledger. *Accord on*: `run_local` (`accord run --bus none`) into a "
        "SQLite ledger: no bus, the protocol and the delegates called directly in one process; every "
        "message signed with its actor's Ed25519 key, hash-chained into the ledger and its Merkle tree "
        "(a few transactions a negotiation: the session's row, the entries, the final checkpoint "
        "co-signed by every delegate, the outcome); signatures are not checked on receipt, since nothing "
        "crosses a process, but by `Ledger.verify` (`accord verify`) afterwards, outside the timings, and "
        "the ledger written is checked to be the memory-bus run's entry for entry (actor, sequence "
        "number, kind, body). *Accord on, memory bus*: `run_session` on the in-process memory bus into "
        "the same ledger: the same entries, and also every message published on the bus, parsed and its "
        "signature verified on receipt (delegate messages by the chair, the chair's by the delegates), "
        "the ledger appended in batches as the session runs. *Accord on, ledger process*: `run_local` "
        "with a `LedgerWorker` (`accord run --bus none --ledger-process`): the same ledger, but its "
        "entries are streamed to a second process, started once for the whole benchmark, outside the "
        "timings, which signs them (the same bytes: Ed25519 is deterministic), chains them and inserts "
        "them in a transaction while this one goes on negotiating, and commits it when the session "
        "ends (it is fed a batch at a time, as it takes them; at the session's end this one signs "
        "what is left from the back while the other takes it from the front). Two processes on this "
        "machine's 2 cores, so more CPU per negotiation than wall time (see the CPU line below the "
        "tables). *NegMAS warm*: each party's inverse utility "
        "function built once per domain and passed through `ufun_inverter`, so, as for Accord, ranking "
        "the outcome space is not in the per-negotiation time; with NegMAS's named negotiators "
        "(`BoulwareTBNegotiator` etc.). *NegMAS warm, same curves*: the same, with NegMAS's "
        "`TimeBasedConcedingNegotiator` on Accord's concession curves, so that both frameworks play "
        "the same strategies (the named negotiators concede on other curves and mostly end sooner; "
        "on the same curves NegMAS's negotiations are as long as Accord's or longer, see *rounds*, "
        "so the per-round figures below the tables are the stricter comparison): the like-for-like "
        "figure. *NegMAS cold*: "
        "NegMAS as usually run (named negotiators), each negotiator ranking the outcome space itself. "
        "Speed-up = NegMAS warm, same curves / Accord (above 1: Accord faster); *on speed-up* is "
        "Accord on's (busless, one process), *lp speed-up* Accord on, ledger process's. One-off costs, not in the per-negotiation times: *import+build* "
        "= `import_genius` + `build_plan` (which ranks the outcome space for each delegate); NegMAS "
        "*load* = `Scenario.from_genius_folder` + per-issue rescaling; its inverse build is in the JSON.",
        "",
        "| domain | outcomes | Accord import+build s | NegMAS load s | Accord off | Accord on | Accord on, ledger process | Accord on, memory bus | NegMAS warm | NegMAS warm, same curves | NegMAS cold | off speed-up | on speed-up | lp speed-up | rounds A / N / N same | agreements A / N | Nash ratio A / N |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            "| {domain} | {outcomes} | {ab:.2f} | {nl} | {off} | {on} | {lp} | {bus} | {warm} | {same} | {cold} | {soff} | {son} | {slp} | {ar:.0f} / {nr} / {ns} | {aa}/{n} / {na}/{n} | {an:.3f} / {nn} |".format(
                domain=r["domain"],
                outcomes=r["outcomes"],
                ab=r["accord_import_s"] + r["accord_build_s"],
                nl=f"{r['negmas_load_s']:.3f}" if "negmas_load_s" in r else "-",
                off=_ms(r["accord_off_s"]),
                on=_ms(r["accord_on_s"]),
                lp=_ms(r.get("accord_lp_s")),
                bus=_ms(r.get("accord_bus_s")),
                warm=_ms(r.get("negmas_named_warm_s")),
                same=_ms(r.get("negmas_matched_warm_s")),
                cold=_ms(r.get("negmas_named_cold_s")),
                soff=_x(r.get("speedup_off_vs_same")),
                son=_x(r.get("speedup_on_vs_same")),
                slp=_x(r.get("speedup_lp_vs_same")),
                ar=r["accord_rounds"],
                nr=f"{r['negmas_named_rounds']:.0f}" if "negmas_named_rounds" in r else "-",
                ns=f"{r['negmas_matched_rounds']:.0f}" if "negmas_matched_rounds" in r else "-",
                aa=r["accord_agreements"],
                na=r.get("negmas_named_agreements", "-"),
                n=r["negotiations"],
                an=r["accord_nash_ratio"],
                nn=f"{r['negmas_named_nash_ratio']:.3f}" if "negmas_named_nash_ratio" in r else "-",
            )
        )
    if "targets" in s:
        lines += [
            "",
            f"Over all {s['negotiations']} negotiations:",
            "",
            "| | Accord | NegMAS (named TB negotiators) | NegMAS (Accord's curves) |",
            "|---|---:|---:|---:|",
            f"| agreement rate | {s['accord_agreement_rate']:.3f} | {s['negmas_named_agreement_rate']:.3f} | {s.get('negmas_matched_agreement_rate', float('nan')):.3f} |",
            f"| mean Nash ratio | {s['accord_nash_ratio']:.3f} | {s['negmas_named_nash_ratio']:.3f} | {s.get('negmas_matched_nash_ratio', float('nan')):.3f} |",
            f"| mean distance to the Nash point | {s['accord_nash_distance']:.3f} | {s['negmas_named_nash_distance']:.3f} | {s.get('negmas_matched_nash_distance', float('nan')):.3f} |",
            "",
            "Speed-up of Accord over NegMAS per negotiation (geometric mean over domains [min, max]; "
            "total = sum of NegMAS times / sum of Accord times):",
            "",
            "| | vs NegMAS warm, same curves (like for like) | vs NegMAS warm, named negotiators | vs NegMAS cold |",
            "|---|---:|---:|---:|",
            f"| ledger off | {_same(s, 'off')} | {_x(s['speedup_off_vs_warm_geomean'])} [{_x(s['speedup_off_vs_warm_min'])}, {_x(s['speedup_off_vs_warm_max'])}], total {_x(s['speedup_off_vs_warm_total'])} | {_x(s['speedup_off_vs_cold_geomean'])} [{_x(s['speedup_off_vs_cold_min'])}, {_x(s['speedup_off_vs_cold_max'])}], total {_x(s['speedup_off_vs_cold_total'])} |",
            f"| ledger on (no bus), one process | {_same(s, 'on')} | {_x(s['speedup_on_vs_warm_geomean'])} [{_x(s['speedup_on_vs_warm_min'])}, {_x(s['speedup_on_vs_warm_max'])}], total {_x(s['speedup_on_vs_warm_total'])} | {_x(s['speedup_on_vs_cold_geomean'])} [{_x(s['speedup_on_vs_cold_min'])}, {_x(s['speedup_on_vs_cold_max'])}], total {_x(s['speedup_on_vs_cold_total'])} |",
            f"| ledger on (no bus), ledger process | {_same(s, 'lp')} | {_x(s.get('speedup_lp_vs_warm_geomean'))} [{_x(s.get('speedup_lp_vs_warm_min'))}, {_x(s.get('speedup_lp_vs_warm_max'))}], total {_x(s.get('speedup_lp_vs_warm_total'))} | {_x(s.get('speedup_lp_vs_cold_geomean'))} [{_x(s.get('speedup_lp_vs_cold_min'))}, {_x(s.get('speedup_lp_vs_cold_max'))}], total {_x(s.get('speedup_lp_vs_cold_total'))} |",
            f"| ledger on, memory bus, verified on receipt | {_same(s, 'bus')} | {_x(s.get('speedup_bus_vs_warm_geomean'))} [{_x(s.get('speedup_bus_vs_warm_min'))}, {_x(s.get('speedup_bus_vs_warm_max'))}], total {_x(s.get('speedup_bus_vs_warm_total'))} | {_x(s.get('speedup_bus_vs_cold_geomean'))} [{_x(s.get('speedup_bus_vs_cold_min'))}, {_x(s.get('speedup_bus_vs_cold_max'))}], total {_x(s.get('speedup_bus_vs_cold_total'))} |",
            "",
            "Against the named negotiators the negotiations do not last equally long (*rounds*: mean rounds "
            "to the end; Accord's mostly last longer: its Boulware concedes as t^5, NegMAS's as t^4). Per "
            "round instead of per negotiation, Accord ledger off vs "
            f"NegMAS warm (named): {_x(_per_round(rows, 'accord_off_s'))}; ledger on: "
            f"{_x(_per_round(rows, 'accord_on_s'))}; ledger on, ledger process: "
            f"{_x(_per_round(rows, 'accord_lp_s'))}; ledger on, memory bus: "
            f"{_x(_per_round(rows, 'accord_bus_s'))} (geometric means over domains). Per round against "
            f"NegMAS warm on the same curves: ledger off {_x(_per_round(rows, 'accord_off_s', 'matched'))}; "
            f"ledger on: {_x(_per_round(rows, 'accord_on_s', 'matched'))}; ledger on, ledger process: "
            f"{_x(_per_round(rows, 'accord_lp_s', 'matched'))}; ledger on, memory bus: "
            f"{_x(_per_round(rows, 'accord_bus_s', 'matched'))}.",
            "",
            *_cpu_lines(s),
            "Targets (issue \"Protocols for researchers\", item 7):",
            "",
        ]
        for target, met in s["targets"].items():
            verdict = "not measured" if met is None else "met" if met else "NOT met"
            lines.append(f"- {target}: **{verdict}**")
    lines += [
        "",
        "Checks in this run: every NegMAS agreement's utilities equal Accord's value models' to "
        f"{s['utility_mismatch_negmas_vs_accord']:.1e}; both ledger-on runs reached the same outcome as "
        f"the simulation in every negotiation: {all(r['ledger_same_outcome'] for r in rows)}; the busless "
        "run's ledger verified and equalled the memory-bus run's entry for entry in every negotiation "
        "(the script stops otherwise); fresh delegates replay `build_plan`'s move for move.",
        "",
        "Not like for like, still: the strategies differ in how they pick an offer. NegMAS's "
        "time-based negotiators propose the lowest outcome above their aspiration (one lookup in a "
        "presorted inverse); Accord's `Strategy.choose_offer` also looks the aspiration up in a "
        "presorted ranking, then scores a bounded neighbourhood above it (at most 32 outcomes within "
        "10% of the utility span) by how often the other side asked for each of their options, and "
        "writes a justification (per-card breakdown, rationale) with every move. NegMAS's named negotiators "
        "concede as 1 - t^4 / 1 - t / 1 - t^0.25, Accord's as t^5 / t / t^0.5 from best to "
        "reservation; *same curves* runs NegMAS with Accord's exponents. Discount "
        "factors are ignored on both sides (Accord records, does not apply them).",
    ]
    prof = report.get("profile")
    if prof:
        runs = prof.get("runs", {})
        lines += [
            "",
            f"Where Accord's time goes: cProfile of one negotiation ({prof['domain']}, "
            f"{'-'.join(prof['pair'])}: {prof['moves']} moves, {prof['entries']} ledger entries; "
            f"run {runs.get('ledger_off', 1)} times ledger off, {runs.get('ledger_on', 1)} times "
            f"ledger on, {runs.get('ledger_bus', 1)} times ledger on over the memory bus, into one "
            "profile each), share of the profiled time (profiling inflates "
            "Python code more than C, so shares are indicative):",
            "",
        ]
        for label, key in (
            ("ledger off", "ledger_off"),
            ("ledger on (no bus)", "ledger_on"),
            ("ledger on, memory bus", "ledger_bus"),
        ):
            if key not in prof:
                continue
            groups = "; ".join(
                f"{g['group']} {g['share']:.0%}"
                + (
                    f" ({g['calls'] // runs.get(key, 1)} calls)"
                    if g["group"].startswith("canonical") and "calls" in g
                    else ""
                )
                for g in prof[key]["groups"]
            )
            per = prof[key]["total_s"] / runs.get(key, 1)
            lines.append(f"- {label} ({per * 1000:.0f} ms profiled per negotiation): {groups}")
    return "\n".join(lines) + "\n"


def write_section(path: Path, title: str, body: str, intro: str) -> None:
    """Replace the `## title` section of `path` (up to the next `## `), or append it."""
    text = path.read_text() if path.exists() else intro.rstrip() + "\n"
    lines = text.splitlines(keepends=True)
    head = f"## {title}"
    start = next((n for n, line in enumerate(lines) if line.rstrip() == head), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + body
    else:
        end = next(
            (n for n in range(start + 1, len(lines)) if lines[n].startswith("## ")), len(lines)
        )
        rest = "".join(lines[end:])
        new = "".join(lines[:start]) + body + ("\n" + rest if rest else "")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


def print_table(report: dict[str, Any]) -> None:
    for r in report["rows"]:
        print(
            f"{r['domain']:<26} {r['outcomes']:>7}  build {r['accord_import_s'] + r['accord_build_s']:7.2f}s  "
            f"A-off {_ms(r['accord_off_s']):>7}ms  A-on {_ms(r['accord_on_s']):>7}ms  A-lp {_ms(r.get('accord_lp_s')):>7}ms  A-bus {_ms(r.get('accord_bus_s')):>7}ms  "
            f"N-warm {_ms(r.get('negmas_named_warm_s')):>7}ms  N-cold {_ms(r.get('negmas_named_cold_s')):>7}ms  "
            f"off {_x(r.get('speedup_off_vs_same')):>6}  on {_x(r.get('speedup_on_vs_same')):>6}  "
            f"lp {_x(r.get('speedup_lp_vs_same')):>6}  "
            f"agree {r['accord_agreements']}/{r.get('negmas_named_agreements', '-')}  "
            f"nash {r['accord_nash_ratio']:.3f}/{r.get('negmas_named_nash_ratio', float('nan')):.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Accord vs NegMAS on ANAC domains.")
    parser.add_argument("--domains", default=",".join(DEFAULT_DOMAINS), help="comma-separated, under anac/")
    parser.add_argument("--pairs", default=",".join(DEFAULT_PAIRS), help="a:b strategy pairs, comma-separated")
    parser.add_argument("--rounds", type=int, default=100, help="deadline_rounds = NegMAS n_steps")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per negotiation (median)")
    parser.add_argument("--no-negmas", action="store_true", help="Accord side only")
    parser.add_argument("--no-ledger", action="store_true", help="skip the ledger-on runs")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile of one negotiation")
    parser.add_argument("--profile-domain", default="y2011/Amsterdam")
    parser.add_argument("--venv", type=Path, default=VENV, help="NegMAS virtualenv (created if missing)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--write-md", action="store_true", help=f"write the section into {BENCHMARKS_MD.name}")
    parser.add_argument(
        "--from-json", type=Path, help="render (and with --write-md, write) a saved --json report; run nothing"
    )
    args = parser.parse_args()
    if args.from_json:
        report = json.loads(args.from_json.read_text())
        _publish(report, args.write_md)
        return
    if not ANAC.is_dir():
        raise SystemExit(f"the shared ANAC domains are not at {ANAC}")
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    keys = [k.strip() for k in args.domains.split(",") if k.strip()]
    shown, skip = [], False
    for a in sys.argv[1:]:  # the command as recorded: what produces the figures
        if skip or a == "--write-md":
            skip = False
            continue
        if a == "--json":
            skip = True
            continue
        if not a.startswith("--json="):
            shown.append(a)
    command = " ".join(["python benchmarks/negmas_compare.py", *shown])
    python = None if args.no_negmas else ensure_negmas_venv(args.venv)

    started = time.perf_counter()
    load_before = load_average()
    domains: list[AccordDomain] = []
    accord: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="accord-vs-negmas-") as tmp:
        workdir = Path(tmp)
        for key in keys:
            print(f"accord: {key}", file=sys.stderr, flush=True)
            dom = load_accord(key, args.rounds)
            domains.append(dom)
            accord[key] = time_accord_off(dom, pairs, args.reps)
        # Every ledger-off time is taken before any ledger-on run: measured after them in
        # the same process, the same simulations took 7 to 17% longer (its heap churned by
        # the sessions' database and bus work), while NegMAS runs in a process of its own.
        if not args.no_ledger:
            # One ledger process for every session, started outside the timings (as
            # `Ledger.open` is), as a batch of sessions would share one.
            with LedgerWorker() as worker:
                if not worker.ready():  # started, and done importing, before any timing
                    raise SystemExit("the ledger process did not start")
                for dom in domains:
                    print(f"accord, ledger on: {dom.key}", file=sys.stderr, flush=True)
                    asyncio.run(time_accord_ledger(dom, accord[dom.key], args.reps, workdir, worker))
                if worker.broken:
                    raise SystemExit("the ledger process died during the benchmark")
        profile = None
        if not args.no_profile:
            dom = next((d for d in domains if d.key == args.profile_domain), None) or load_accord(
                args.profile_domain, args.rounds
            )
            profile = profile_accord(dom, ("boulware", "conceder"), workdir)
        negmas = None
        if python is not None:
            variants = ["named", "matched"]
            negmas = run_negmas(python, domains, pairs, args.reps, args.rounds, variants, workdir)
    if args.json:  # the raw figures first, whatever happens next
        args.json.write_text(json.dumps({"accord": accord, "negmas": negmas, "profile": profile}, default=str))
    report = combine(accord, domains, negmas)
    report["meta"] = {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "rounds": args.rounds,
        "reps": args.reps,
        "pairs": [list(p) for p in pairs],
        "negmas_version": negmas["negmas_version"] if negmas else None,
        "negmas_import_s": negmas["import_s"] if negmas else None,
        "wall_s": time.perf_counter() - started,
        # The machine's load when the run started and ended: how busy the shared cores were.
        "load_average": [load_before, load_average()],
    }
    report["profile"] = profile
    report["accord"] = accord
    report["negmas"] = negmas
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    _publish(report, args.write_md)


def _publish(report: dict[str, Any], write_md: bool) -> None:
    print_table(report)
    md = markdown(report, report["meta"]["command"])
    print()
    print(md)
    if write_md:
        write_section(
            BENCHMARKS_MD, SECTION, md,
            "# Benchmarks\n\nMeasured figures for Accord, each section with the command that produces it.\n",
        )
        print(f"wrote the section {SECTION!r} of {BENCHMARKS_MD}", file=sys.stderr)


if __name__ == "__main__":
    main()
