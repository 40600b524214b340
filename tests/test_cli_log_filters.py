"""`accord log SESSION --card / --delegate / --constituency`: served by the ledger's
indexes (`entries_by_card`, `entries_by_actor`), with clear errors for unknown names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli import app
from accord.cli_ledger import log_entries
from accord.ledger import Ledger, LedgerError
from tests.conftest import FIXTURES, run
from tests.helpers import run_file

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("log")
    _, result, _ = run(run_file(FIXTURES / "tiny.yaml", base / "l.db"))
    return base / "l.db", result.session_id


def _log(ledger: Path, session: str, *args: str) -> list[dict]:
    out = runner.invoke(app, ["log", session, "--json", "--ledger", str(ledger), *args])
    assert out.exit_code == 0, out.output
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_log_by_card_shows_exactly_the_moves_citing_it(tiny_ledger: tuple[Path, str]) -> None:
    ledger, session = tiny_ledger

    async def expected() -> tuple[dict[str, int], list[int]]:
        async with await Ledger.open(ledger, create=False) as store:
            return await store.cards(session), [e.idx for e in await store.entries_by_card(session, "n-quiet")]

    counts, indexes = run(expected())
    assert counts.get("n-quiet", 0) > 0
    items = _log(ledger, session, "--card", "n-quiet")
    assert [i["idx"] for i in items] == indexes
    assert all(i["kind"] == "move" and "n-quiet" in [c["card"] for c in i["cited"]] for i in items)
    # Card titles still resolve (session.open is read too).
    assert all(c["title"] != "(unknown card)" for i in items for c in i["cited"])


def test_log_by_delegate_and_constituency(tiny_ledger: tuple[Path, str]) -> None:
    ledger, session = tiny_ledger
    by_delegate = _log(ledger, session, "--delegate", "neighbours")
    assert by_delegate and all(i["actor"] == "neighbours" for i in by_delegate)
    assert _log(ledger, session, "--constituency", "neighbours") == by_delegate
    both = _log(ledger, session, "--constituency", "shops", "--card", "s-trade")
    assert both and all(i["actor"] == "shops" for i in both)
    assert _log(ledger, session, "--delegate", "neighbours", "--card", "s-trade") == []


def test_unknown_card_or_delegate_is_a_clear_error(tiny_ledger: tuple[Path, str]) -> None:
    ledger, session = tiny_ledger
    out = runner.invoke(app, ["log", session, "--ledger", str(ledger), "--card", "no-such-card"])
    assert out.exit_code == 2
    assert "no-such-card" in out.output and session in out.output and "n-quiet" in out.output
    out = runner.invoke(app, ["log", session, "--ledger", str(ledger), "--delegate", "nobody"])
    assert out.exit_code == 2 and "nobody" in out.output and "participants" in out.output
    out = runner.invoke(app, ["log", session, "--ledger", str(ledger), "--delegate", "a", "--constituency", "b"])
    assert out.exit_code == 2 and "different" in out.output

    async def direct() -> None:
        async with await Ledger.open(ledger, create=False) as store:
            with pytest.raises(LedgerError, match="cites card 'x'"):
                await log_entries(store, session, card="x")

    run(direct())
