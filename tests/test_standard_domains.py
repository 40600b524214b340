"""Every built-in protocol runs the field's standard domains, end to end through the CLI.

(a) Each built-in protocol (from `accord.plugins.protocols()`, defined in Accord's own
    `protocols` package; all of them take multi-issue outcome spaces: `voting` samples
    its candidates from the outcome space, `habermas` drafts complete outcomes) runs ten
    small ANAC domains: `accord import genius DIR -o FILE --deadline 20`, the protocol
    swapped into the session file, `accord run FILE --json --quiet --ledger L`; each run
    must end with an outcome (no agreement at the deadline is a legitimate one) and
    `accord verify` must pass on every session.
(b) The statement-selecting protocols (`voting`, `habermas`) run every Polis conversation
    (`accord import polis`), and `accord.gic_report.gic_report` puts the group-informed
    consensus of the chosen statement next to the best achievable; `pytest -s` prints the
    table (the same figures as `python benchmarks/polis_gic.py`, in BENCHMARKS.md).

The shared data sits beside the checkout (`../shared`); without it these tests skip.
The runs are subprocesses of the real CLI; to keep the suite's time down, the runs a
selection of tests needs are made once per module, protocols in parallel, one ledger per
protocol (its sessions one after another), and one `accord verify` per ledger.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from accord import plugins
from accord.gic_report import GicReport, gic_report, load_gic_sidecar

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ANAC = SHARED / "data" / "genius" / "anac"
POLIS = SHARED / "data" / "polis"
ABSENT = f"the shared data folder {SHARED} is absent (it sits beside the checkout)"

# Ten small ANAC domains (outcomes): up to 1,600 outcomes, so that every protocol's run
# takes a second or two.
DOMAINS = (
    "y2011/Laptop",  # 27
    "y2013/Coffee",  # 112
    "y2013/Outfit",  # 128
    "y2010/ItexvsCypress",  # 180
    "y2013/DogChoosing",  # 270
    "y2011/IS_BT_Acquisition",  # 384
    "y2010/EnglandZimbabwe",  # 576
    "y2013/Icecream",  # 720
    "y2013/Animal",  # 1152
    "y2011/Grocery",  # 1600
)
DEADLINE = 20
STATEMENT_PROTOCOLS = ("voting", "habermas")
WORKERS = max(2, min(4, os.cpu_count() or 2))
CLI_TIMEOUT_S = 600


def builtin_protocols() -> dict[str, type]:
    """The protocols Accord ships (a plug-in installed beside it is not built in)."""
    return {
        name: cls
        for name, cls in sorted(plugins.protocols().items())
        if cls.__module__.split(".")[0] == "protocols"
    }


PROTOCOLS = tuple(builtin_protocols())


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ACCORD_LEDGER", "ACCORD_KEYS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["COLUMNS"] = "200"  # `accord verify` prints one line per session
    return env


def accord(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accord.cli", *map(str, args)],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


def with_protocol(session: Path, protocol: str, out: Path, **params: Any) -> Path:
    """A copy of `session` run by `protocol` (with `deadline_rounds` where it takes one)."""
    doc = yaml.safe_load(session.read_text(encoding="utf-8"))
    fields = builtin_protocols()[protocol].Params.model_fields
    deadline = (doc.get("protocol") or {}).get("deadline_rounds")
    spec: dict[str, Any] = {"name": protocol}
    if "deadline_rounds" in fields and deadline is not None:
        spec["deadline_rounds"] = deadline
    spec.update(params)
    doc["protocol"] = spec
    out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


@dataclass
class Run:
    """One session run through the CLI, and what `accord verify` said of its ledger."""

    protocol: str
    source: str
    session_file: Path
    ledger: Path
    returncode: int = -1
    stdout: str = ""
    stderr: str = ""
    result: dict[str, Any] | None = None
    verified: bool | None = None
    verify_output: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"{self.protocol} on {self.source}: exit {self.returncode}\n"
            f"stdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-2000:]}"
        )


def run_and_verify(runs: list[Run], cwd: Path) -> None:
    """Run `runs` (all into one ledger) one after another, then verify that ledger once."""
    for run in runs:
        done = accord("run", run.session_file, "--json", "--quiet", "--ledger", run.ledger, cwd=cwd)
        run.returncode, run.stdout, run.stderr = done.returncode, done.stdout, done.stderr
        if done.returncode == 0:
            run.result = json.loads(done.stdout)
    if not runs:
        return
    verified = accord("verify", "--ledger", runs[0].ledger, cwd=cwd)
    for run in runs:
        run.verify_output = verified.stdout + verified.stderr
        if run.result is not None:  # `accord verify` prints "ok <session>: ..." per good session
            run.verified = any(
                line.startswith(f"ok {run.result['session']}:") for line in verified.stdout.splitlines()
            )


def in_parallel(tasks: Iterable[Callable[[], None]]) -> None:
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for future in [pool.submit(t) for t in tasks]:
            future.result()


def selected(request: pytest.FixtureRequest, test_name: str, param: str) -> set[str]:
    """The values of `param` among the selected tests named `test_name` of this module."""
    found = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "module", None) is request.module and getattr(item, "originalname", "") == test_name:
            if callspec is not None:
                found.add(callspec.params[param])
    return found


# -- (a) every built-in protocol on ten ANAC domains ---------------------------------------


@pytest.fixture(scope="module")
def anac_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Run]:
    if not ANAC.is_dir():
        pytest.skip(ABSENT)
    work = tmp_path_factory.mktemp("anac")
    wanted = {
        tuple(k.split("|", 1))
        for k in selected(request, "test_protocol_runs_anac_domain", "case")
    }
    domains = sorted({d for _, d in wanted})
    imported: dict[str, Path] = {}
    failures: dict[str, str] = {}

    def do_import(domain: str) -> None:
        out = work / f"{domain.replace('/', '-')}.yaml"
        done = accord("import", "genius", ANAC / domain, "-o", out, "--deadline", DEADLINE, cwd=work)
        if done.returncode == 0:
            imported[domain] = out
        else:
            failures[domain] = done.stdout + done.stderr

    in_parallel(lambda d=d: do_import(d) for d in domains)
    runs: dict[tuple[str, str], Run] = {}
    by_protocol: dict[str, list[Run]] = {}
    for protocol, domain in sorted(wanted):
        if domain not in imported:
            continue
        ledger = work / f"{protocol}.db"
        base = imported[domain]
        session = (
            base
            if protocol == "stacked-alternating-offers"
            else with_protocol(base, protocol, work / f"{base.stem}.{protocol}.yaml")
        )
        run = Run(protocol, domain, session, ledger)
        runs[(protocol, domain)] = run
        by_protocol.setdefault(protocol, []).append(run)
    in_parallel(lambda rs=rs: run_and_verify(rs, work) for rs in by_protocol.values())
    for domain, output in failures.items():
        for protocol in PROTOCOLS:
            runs[(protocol, domain)] = Run(protocol, domain, Path(), Path(), stderr=f"import failed: {output}")
    return runs


def _anac_cases() -> list[Any]:
    if not ANAC.is_dir():
        return [pytest.param("-|-", marks=pytest.mark.skip(reason=ABSENT), id="shared-data-absent")]
    return [pytest.param(f"{p}|{d}", id=f"{p}-{d}") for p in PROTOCOLS for d in DOMAINS]


@pytest.mark.parametrize("case", _anac_cases())
def test_protocol_runs_anac_domain(case: str, anac_runs: dict[tuple[str, str], Run]) -> None:
    protocol, domain = case.split("|", 1)
    run = anac_runs[(protocol, domain)]
    assert run.returncode == 0, run.describe()
    result = run.result
    assert result is not None
    # An outcome: the session ended for a stated reason, with an agreement or without one
    # (no agreement at the deadline is legitimate); an agreement is a complete outcome.
    assert result["reason"], run.describe()
    assert result["round"] >= 1
    if result["agreement"] is not None:
        issues = {i["id"] for i in yaml.safe_load(run.session_file.read_text())["agenda"]}
        assert set(result["agreement"]) == issues
    if protocol in STATEMENT_PROTOCOLS:
        assert result["agreement"] is not None, f"{protocol} chose nothing: {result['reason']}"
    assert result["entries"] > 0
    assert run.verified, f"accord verify failed for {result['session']}:\n{run.verify_output}"


def test_the_builtins_are_found() -> None:
    """The cases above come from the installed built-ins (so a new one is run too); make
    sure that list is not silently empty."""
    assert "stacked-alternating-offers" in PROTOCOLS


# -- (b) statement-selecting protocols on every Polis conversation --------------------------


def _conversations() -> list[Path]:
    if not POLIS.is_dir():
        return []
    return sorted(p for p in POLIS.iterdir() if (p / "comments.csv").is_file())


def _polis_cases() -> list[Any]:
    if not POLIS.is_dir():
        return [pytest.param("-|-", marks=pytest.mark.skip(reason=ABSENT), id="shared-data-absent")]
    cases = []
    installed = plugins.protocols()
    for protocol in STATEMENT_PROTOCOLS:
        marks = (
            [pytest.mark.skip(reason=f"the {protocol!r} protocol is not installed (protocols/{protocol}.py)")]
            if protocol not in installed
            else []
        )
        for folder in _conversations():
            cases.append(pytest.param(f"{protocol}|{folder.name}", marks=marks, id=f"{protocol}-{folder.name}"))
    return cases


@dataclass
class PolisRun:
    run: Run
    report: GicReport | None = None
    error: str = ""


@pytest.fixture(scope="module")
def polis_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], PolisRun]:
    if not POLIS.is_dir():
        pytest.skip(ABSENT)
    work = tmp_path_factory.mktemp("polis")
    installed = plugins.protocols()
    wanted = {tuple(k.split("|", 1)) for k in selected(request, "test_statement_protocol_runs_polis", "case")}
    if any(getattr(i, "originalname", "") == "test_polis_gic_summary" for i in request.session.items):
        wanted |= {(p, f.name) for p in STATEMENT_PROTOCOLS for f in _conversations()}
    wanted = {(p, c) for p, c in wanted if p in installed}  # the others are skipped, with the reason
    names = sorted({c for _, c in wanted})
    imported: dict[str, Path] = {}
    failures: dict[str, str] = {}

    def do_import(name: str) -> None:
        out = work / f"{name}.yaml"
        done = accord("import", "polis", POLIS / name, "-o", out, cwd=work)
        if done.returncode == 0:
            imported[name] = out
        else:
            failures[name] = done.stdout + done.stderr

    in_parallel(lambda n=n: do_import(n) for n in names)
    out: dict[tuple[str, str], PolisRun] = {}
    by_protocol: dict[str, list[Run]] = {}
    for protocol, name in sorted(wanted):
        if name not in imported:
            out[(protocol, name)] = PolisRun(
                Run(protocol, name, Path(), Path()), error=f"import failed: {failures.get(name)}"
            )
            continue
        base = imported[name]
        if protocol == "voting":
            session = base  # the importer's own protocol: voting, Schulze
        else:
            session = with_protocol(base, protocol, work / f"{name}.{protocol}.yaml")
            # The sidecar belongs beside the session file it describes (same agenda).
            shutil.copy(base.with_name(f"{base.stem}.gic.json"), session.with_name(f"{session.stem}.gic.json"))
        run = Run(protocol, name, session, work / f"polis-{protocol}.db")
        out[(protocol, name)] = PolisRun(run)
        by_protocol.setdefault(protocol, []).append(run)
    in_parallel(lambda rs=rs: run_and_verify(rs, work) for rs in by_protocol.values())
    for entry in out.values():
        run = entry.run
        if run.result is not None:
            entry.report = gic_report(run.session_file, run.ledger, run.result["session"])
    return out


@pytest.mark.parametrize("case", _polis_cases())
def test_statement_protocol_runs_polis(case: str, polis_runs: dict[tuple[str, str], PolisRun]) -> None:
    protocol, name = case.split("|", 1)
    entry = polis_runs[(protocol, name)]
    run = entry.run
    assert not entry.error, entry.error
    assert run.returncode == 0, run.describe()
    assert run.verified, f"accord verify failed:\n{run.verify_output}"
    report = entry.report
    assert report is not None
    sidecar = load_gic_sidecar(run.session_file)
    assert report.chosen is not None, f"{protocol} chose no statement: {report.reason}"
    assert run.result is not None and run.result["agreement"] == {sidecar["issue"]: report.chosen}
    assert report.chosen_gic == sidecar["gic"][report.chosen]
    assert (report.best, report.best_gic) == (sidecar["best"]["option"], sidecar["best"]["gic"])
    assert 0.0 < report.ratio <= 1.0
    assert report.rank is not None and 1 <= report.rank <= report.statements


def test_polis_gic_summary(polis_runs: dict[tuple[str, str], PolisRun]) -> None:
    """Print the chosen statements' GIC next to the best (visible with `pytest -s`)."""
    reports = {k: e.report for k, e in polis_runs.items() if e.report is not None}
    if not reports:
        pytest.skip("no Polis session ran (see the tests above)")
    lines = [
        "",
        "Polis: group-informed consensus (GIC) of the chosen statement vs the best on the agenda",
        f"{'conversation':<28} {'protocol':<9} {'stmts':>5} {'chosen':>7} {'GIC':>8} {'best':>7} "
        f"{'best GIC':>8} {'ratio':>6} {'rank':>5} {'random':>6}",
    ]
    for (protocol, name), r in sorted(reports.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lines.append(
            f"{name:<28} {protocol:<9} {r.statements:>5} {r.chosen or '-':>7} "
            f"{(r.chosen_gic or 0.0):>8.4f} {r.best:>7} {r.best_gic:>8.4f} {r.ratio:>6.3f} "
            f"{r.rank or '-':>5} {r.random_ratio:>6.3f}"
        )
    for protocol in sorted({p for p, _ in reports}):
        mine = [r.ratio for (p, _), r in reports.items() if p == protocol]
        lines.append(f"{protocol}: mean ratio {sum(mine) / len(mine):.3f} over {len(mine)} conversations")
    print("\n".join(lines))
    assert all(0.0 < r.ratio <= 1.0 for r in reports.values())
