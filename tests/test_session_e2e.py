"""A session end to end on the embedded default: memory bus, SQLite ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.ledger import verify_entries
from tests.conftest import EXAMPLES, FIXTURES, run
from tests.helpers import moves_of, run_file

SESSIONS = [FIXTURES / "tiny.yaml", *EXAMPLES]


@pytest.mark.parametrize("path", SESSIONS, ids=lambda p: p.parent.name if p.name == "session.yaml" else p.stem)
def test_session_runs_to_an_outcome_and_verifies(path: Path, tmp_path: Path) -> None:
    plan, result, rows = run(run_file(path, tmp_path / "ledger.db"))
    assert result.ended is not None
    assert rows[0].kind == "session.open" and rows[-1].kind == "session.close"
    assert any(r.kind == "ended" for r in rows)
    report = verify_entries(result.session_id, rows)
    assert report.ok, report.problems
    assert report.signatures_checked == len(rows)
    if result.ended.agreement:
        # An agreement is only ever on an outcome every delegate's mandate allows.
        for p in plan.participants:
            u = p.model.utility(result.ended.agreement)
            assert p.constituency.mandate.violation(result.ended.agreement, u) is None


@pytest.mark.parametrize("path", SESSIONS, ids=lambda p: p.parent.name if p.name == "session.yaml" else p.stem)
def test_same_seed_same_moves_and_outcome(path: Path, tmp_path: Path) -> None:
    _, first, rows1 = run(run_file(path, tmp_path / "a.db"))
    _, second, rows2 = run(run_file(path, tmp_path / "b.db"))
    assert first.ended == second.ended
    assert moves_of(rows1) == moves_of(rows2)


def test_every_move_cites_real_cards_and_adds_up(tmp_path: Path) -> None:
    for path in SESSIONS:
        plan, _, rows = run(run_file(path, tmp_path / f"{path.parent.name}.db"))
        moves = [r for r in rows if r.kind == "move"]
        assert moves
        for row in moves:
            model = plan.participant(row.actor).model
            own_cards = {c.id for c in model.constituency.cards}
            just = row.body["move"]["justification"]
            cited = just["cited"]
            assert {c["card"] for c in cited} <= own_cards, row.body
            assert sum(c["contribution"] for c in cited) == pytest.approx(just["utility"], abs=1e-12)
            # ...and the claimed utility is the value model's own figure for the offer.
            assert just["utility"] == pytest.approx(model.utility(row.body["move"]["offer"]), abs=1e-12)
            assert row.body["value_model"] == model.hash


def test_a_different_seed_can_change_tie_breaks_but_still_verifies(tmp_path: Path) -> None:
    from accord.session_file import load_session
    from accord.session_plan import build_plan
    from tests.helpers import run_plan

    spec, _ = load_session(FIXTURES / "tiny.yaml")
    plan = build_plan(spec.model_copy(update={"seed": 99}))
    _, result, rows = run(run_plan(plan, tmp_path / "l.db"))
    assert verify_entries(result.session_id, rows).ok
