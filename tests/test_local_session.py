"""The busless signed run (`accord run --bus none`) writes the ledger a memory-bus run
writes: the same entries (actor, sequence number, kind, body) in the same order, the
same outcome, a ledger that verifies; and so it does when a ledger process
(`LedgerWorker`) signs, chains and stores the entries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import accord.chair
from accord.cli import app
from accord.ledger import Entry, Ledger
from accord.local_session import LocalSessionError, run_local
from accord.session import SessionResult, run_session
from accord.session_plan import SessionPlan, load_plan
from accord.ledger_worker import LedgerWorker
from protocols.events import Call
from protocols.moves import Accept, Justification, Move, Reject
from tests.conftest import EXAMPLES, FIXTURES, run

TINY = FIXTURES / "tiny.yaml"
PROTOCOLS: list[dict[str, Any]] = [
    {"name": "stacked-alternating-offers", "deadline_rounds": 12},
    {"name": "single-text", "deadline_rounds": 8},
    {"name": "single-text", "deadline_rounds": 8, "variant": "hill-climbing"},
    {"name": "mopac", "deadline_rounds": 8},
    {"name": "voting"},
    {"name": "habermas"},
    {"name": "zeuthen", "deadline_rounds": 12},
]


_WORKER: list[LedgerWorker] = []


@pytest.fixture(scope="module", autouse=True)
def ledger_worker() -> Iterator[None]:
    """One ledger process for the module's sessions, as a benchmark or a batch of
    sessions shares one."""
    with LedgerWorker() as worker:
        _WORKER.append(worker)
        yield
        _WORKER.clear()
        assert not worker.broken


def _said(rows: list[Entry]) -> list[tuple[str, int, str, Any]]:
    """Each entry without its clock and signature; the opening without the session id
    and the keys, which differ from run to run."""
    out = []
    for r in rows:
        body = r.body
        if r.kind == "session.open":
            body = {k: v for k, v in body.items() if k not in ("session_id", "keys")}
        out.append((r.actor, r.seq, r.kind, body))
    return out


async def _both(make_plan: Any, tmp_path: Path) -> tuple[SessionResult, list[Entry], SessionResult, list[Entry]]:
    ledger = await Ledger.open(tmp_path / "ledger.db")
    try:
        bus = await run_session(make_plan(), ledger)
        local = await run_local(make_plan(), ledger)
        bus_rows = await ledger.entries(bus.session_id)
        local_rows = await ledger.entries(local.session_id)
        # Signed and stored by the ledger process: the same entries, checkpoints and
        # outcome, and a ledger that verifies.
        if _WORKER:
            signed_apart = await run_local(make_plan(), ledger, worker=_WORKER[0])
        else:  # called from another module
            with LedgerWorker() as worker:
                signed_apart = await run_local(make_plan(), ledger, worker=worker)
        assert signed_apart.ended == local.ended and signed_apart.entries == local.entries
        assert _said(await ledger.entries(signed_apart.session_id)) == _said(local_rows)
        apart_report = await ledger.verify(signed_apart.session_id)
        assert apart_report.ok, apart_report
        apart_checkpoints = await ledger.checkpoints(signed_apart.session_id)
        assert [(c.size, len(c.signatures)) for c in apart_checkpoints] == [
            (c.size, len(c.signatures)) for c in await ledger.checkpoints(local.session_id)
        ]
        report = await ledger.verify(local.session_id)
        assert report.ok, report
        checkpoints = await ledger.checkpoints(local.session_id)
        assert [c.size for c in checkpoints] == [c.size for c in await ledger.checkpoints(bus.session_id)]
        assert len(checkpoints[-1].signatures) == 1 + len(make_plan().participants)  # chair + witnesses
        sessions = {s.id: s for s in await ledger.sessions()}
        assert sessions[local.session_id].status == "ended"
        assert sessions[local.session_id].outcome == sessions[bus.session_id].outcome
        assert sessions[signed_apart.session_id].status == "ended"
        assert sessions[signed_apart.session_id].outcome == sessions[bus.session_id].outcome
    finally:
        await ledger.close()
    return bus, bus_rows, local, local_rows


def _assert_same(make_plan: Any, tmp_path: Path) -> list[Entry]:
    bus, bus_rows, local, local_rows = run(_both(make_plan, tmp_path))
    assert _said(local_rows) == _said(bus_rows)
    assert local.ended == bus.ended
    assert local.entries == bus.entries == len(local_rows)
    assert [(d.delegate, d.breakdown) for d in local.delegates] == [(d.delegate, d.breakdown) for d in bus.delegates]
    return local_rows


def _variant(tmp_path: Path, base: Path, **changes: Any) -> Path:
    doc = yaml.safe_load(base.read_text())
    doc.update(changes)
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.parametrize("path", [TINY, *EXAMPLES], ids=lambda p: p.parent.name if p.name == "session.yaml" else p.stem)
def test_the_examples_make_the_same_ledger(path: Path, tmp_path: Path) -> None:
    _assert_same(lambda: load_plan(path)[0], tmp_path)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p["name"] + ("-" + p["variant"] if "variant" in p else ""))
@pytest.mark.parametrize("grouped", [False, True], ids=["calls", "grouped"])
def test_every_protocol_makes_the_same_ledger(
    protocol: dict[str, Any], grouped: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if grouped:  # one `calls` envelope for the delegates called at once, as from 16 delegates on
        monkeypatch.setattr(accord.chair, "GROUP_CALLS_FROM", 2)
    doc = yaml.safe_load(TINY.read_text())
    strategies = ["aspiration", "tit-for-tat", "log-rolling"]
    delegates = {d: {"strategy": s} for d, s in zip(doc["delegates"], strategies, strict=True)}
    path = _variant(tmp_path, TINY, protocol=protocol, delegates=delegates)
    rows = _assert_same(lambda: load_plan(path)[0], tmp_path)
    if not grouped:
        assert not any(r.kind == "calls" for r in rows)
    elif protocol["name"] in ("single-text", "voting", "habermas", "mopac"):  # they call everyone at once
        assert any(r.kind == "calls" for r in rows)


@pytest.mark.parametrize("decision", [None, "approve", "reject"])
def test_ratifications_make_the_same_ledger(decision: str | None, tmp_path: Path) -> None:
    doc = yaml.safe_load(TINY.read_text())
    doc["constituencies"][1]["mandate"]["ratification"] = [
        {"outcomes": [{"hours": "late"}], "reason": "late hours mean staff working nights"}
    ]
    if decision is not None:
        doc["ratifications"] = [{"delegate": "shops", "outcome": {"hours": "late"}, "decision": decision, "by": ["sh-1"]}]
    path = tmp_path / "ratified.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    rows = _assert_same(lambda: load_plan(path)[0], tmp_path)
    assert any(r.kind == "ratification" for r in rows)


class _Erratic:
    """Every `period`-th call a move the protocol cannot parse (a `reject` where only
    offers and acceptances are moves), two calls later an acceptance of something not on
    the table; otherwise the wrapped strategy. Deterministic, like every strategy."""

    def __init__(self, inner: Any, period: int) -> None:
        self.inner, self.period, self.calls = inner, period, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def respond(self, call: Call) -> Move:
        self.calls += 1
        why = Justification(utility=0.0, cited=[], rationale="erratic on purpose")
        if self.calls % self.period == 0:
            return Reject(offer=call.standing_offer or {}, justification=why)
        if self.calls % self.period == 2:
            return Accept(offer=self.inner.view.space.admissible[-1][1], justification=why)
        return self.inner.respond(call)

    def observe_rejection(self, reason: str) -> None:
        self.inner.observe_rejection(reason)


@pytest.mark.parametrize("protocol", ["stacked-alternating-offers", "single-text", "zeuthen"])
@pytest.mark.parametrize("grouped", [False, True], ids=["calls", "grouped"])
def test_rejections_and_absences_make_the_same_ledger(
    protocol: str, grouped: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused and malformed moves, strikes and absences (announced to everyone while
    calls go out): the order in which delegates then act is the memory bus's."""
    if grouped:
        monkeypatch.setattr(accord.chair, "GROUP_CALLS_FROM", 2)
    path = _variant(tmp_path, TINY, protocol={"name": protocol, "deadline_rounds": 8, "strikes": 1, "absence_limit": 2})

    def plan() -> SessionPlan:
        built = load_plan(path)[0]
        for p, period in zip(built.participants, [0, 4, 5], strict=True):
            if period:
                p.delegate.strategy = _Erratic(p.delegate.strategy, period)  # type: ignore[assignment]
        return built

    rows = _assert_same(plan, tmp_path)
    assert any(r.kind == "rejection" for r in rows) and any(r.kind == "absence" for r in rows)


def test_a_strategy_that_answers_asynchronously_is_refused(tmp_path: Path) -> None:
    plan = load_plan(TINY)[0]

    class Thinking:
        async def respond_async(self, call: Call) -> Move:  # a language model does this
            raise AssertionError("never called")

    plan.participants[0].delegate.strategy = Thinking()  # type: ignore[assignment]

    async def go() -> None:
        ledger = await Ledger.open(tmp_path / "l.db")
        try:
            with pytest.raises(LocalSessionError, match="asynchronously"):
                await run_local(plan, ledger)
            assert await ledger.sessions() == []  # refused before anything is written
        finally:
            await ledger.close()

    run(go())


@pytest.mark.parametrize("signing", [[], ["--ledger-process"]], ids=["signed-here", "ledger-process"])
def test_accord_run_without_a_bus_then_accord_verify(signing: list[str], tmp_path: Path) -> None:
    runner = CliRunner()
    ledger = str(tmp_path / "accord.db")
    ran = runner.invoke(app, ["run", str(TINY), "--bus", "none", "--ledger", ledger, "--json", *signing])
    assert ran.exit_code == 0, ran.output
    assert '"entries"' in ran.output
    checked = runner.invoke(app, ["verify", "latest", "--ledger", ledger])
    assert checked.exit_code == 0, checked.output
    assert "chain intact" in checked.output
    # The keys are kept as for a bus run (beside the ledger), and the log reads as one.
    assert list((tmp_path / "accord.keys").glob("*.json"))
    log = runner.invoke(app, ["log", "latest", "--ledger", ledger])
    assert log.exit_code == 0 and "ended" in log.output


def test_a_ledger_process_is_for_busless_runs_only(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["run", str(TINY), "--ledger-process", "--ledger", str(tmp_path / "l.db")])
    assert out.exit_code != 0 and "--ledger-process is for --bus none" in out.output
    assert not (tmp_path / "l.db").exists()


def test_an_unknown_bus_is_one_error(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["run", str(TINY), "--bus", "local://", "--ledger", str(tmp_path / "l.db")])
    assert out.exit_code == 2 and "or none" in " ".join(out.output.split())


def test_progress_sees_every_entry_as_it_is_recorded(tmp_path: Path) -> None:
    from accord.progress import SessionEvent

    seen: list[SessionEvent] = []

    async def go() -> tuple[SessionResult, list[Entry]]:
        ledger = await Ledger.open(tmp_path / "l.db")
        try:
            result = await run_local(load_plan(TINY)[0], ledger, progress=seen.append)
            return result, await ledger.entries(result.session_id)
        finally:
            await ledger.close()

    result, rows = run(go())
    assert [e.idx for e in seen] == list(range(len(rows))) and len(rows) == result.entries
    assert [(e.actor, e.kind, e.body) for e in seen] == [(r.actor, r.kind, r.body) for r in rows]


def test_bus_schemes_are_case_insensitive_as_open_bus_reads_them(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["run", str(TINY), "--bus", "Memory://", "--ledger", str(tmp_path / "l.db"), "--json"])
    assert out.exit_code == 0, out.output
