"""The I/O-free simulation makes the same moves as a real session on the memory bus."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.session_plan import load_plan
from accord.simulate import simulate
from tests.conftest import EXAMPLES, FIXTURES, run
from tests.helpers import run_plan

SESSIONS = [FIXTURES / "tiny.yaml", *EXAMPLES]


@pytest.mark.parametrize("path", SESSIONS, ids=lambda p: p.parent.name if p.name == "session.yaml" else p.stem)
def test_simulation_equals_the_bus_run(path: Path, tmp_path: Path) -> None:
    simulated = simulate(load_plan(path)[0])
    _, result, rows = run(run_plan(load_plan(path)[0], tmp_path / "l.db"))
    assert simulated.ended == result.ended
    recorded = [(r.actor, r.body["move"]) for r in rows if r.kind == "move"]
    assert [(a, m.model_dump(mode="json")) for a, m in simulated.moves] == recorded
