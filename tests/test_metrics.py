"""Session metrics: hand-computed values, properties, the examples, and from a ledger."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.metrics_report import metrics_for_session, metrics_from_entries
from accord.session_plan import load_plan
from constituencies import Assessment, Constituency, ValueModel
from protocols.agenda import Agenda, Issue, Option
from protocols.events import Ended, PartialAgreement
from protocols.metrics import (
    ScenarioStats,
    SessionMetrics,
    compute_metrics,
    dominates,
    gini,
    pareto_front,
    scenario_stats,
    session_metrics,
    shifted_gini,
)
from tests.conftest import EXAMPLES, FIXTURES, run
from tests.helpers import run_file

POLICIES = [
    "MOMENTS when a choice is made with care",
    "PLACES where people can meet as equals",
    "SIGNS that what we built will last",
]


def card(card_id: str) -> dict:
    return {
        "id": card_id,
        "title": f"Card {card_id}",
        "description": "A test card.",
        "policies": POLICIES,
    }


def model(
    party: str,
    agenda: Agenda,
    scores: dict[str, dict[str, float]],
    *,
    people: dict[str, list[str]] | None = None,
    reservation: float = -1.0,
    red_lines: list[dict[str, str]] | None = None,
) -> ValueModel:
    """A value model from {card: {"issue/option": score}}."""
    people = people or {f"{party}-1": list(scores)}
    constituency = Constituency(
        id=party,
        cards=[card(c) for c in scores],
        constituents=[{"id": p, "holds": holds} for p, holds in people.items()],
        mandate={"reservation": reservation, "red_lines": red_lines or []},
    )
    assessments = [
        Assessment(option=option, card=c, score=s, by="organizer")
        for c, by_option in scores.items()
        for option, s in by_option.items()
    ]
    return ValueModel(constituency, assessments, agenda.issue_contexts)


def agenda_of(**issues: list[str]) -> Agenda:
    return Agenda(
        issues=[Issue(id=i, options=[Option(id=o) for o in opts]) for i, opts in issues.items()]
    )


# -- a two-party, two-issue scenario, computed by hand ------------------------------------------
#
# Each party holds one card; each issue is half of its utility, so u = (s_x + s_y) / 2.
#
#   card a (party A): x1 1.0  x2 0.8  x3 0.3 | y1 1.0  y2 0.3  y3 0.2
#   card b (party B): x1 0.3  x2 0.4  x3 0.6 | y1 0.0  y2 0.5  y3 0.6
#
#   outcome  u_A   u_B  | Nash: (u_A-.1)(u_B-.1)  Kalai: min gain  KS: min(gA/.9, gB/.5)  sum
#   x1 y1    1.00  0.15 |   .0450                  .05               .100                  1.15
#   x1 y2    0.65  0.40 |   .1650                  .30               .600  <- KS           1.05
#   x1 y3    0.60  0.45 |   .1750  <- Nash         .35               .556                  1.05
#   x2 y1    0.90  0.20 |   .0800                  .10               .200                  1.10
#   x2 y2    0.55  0.45 |   .1575                  .35               .500                  1.00
#   x2 y3    0.50  0.50 |   .1600                  .40  <- Kalai     .444                  1.00
#   x3 y1    0.65  0.30 |   .1100                  .20               .400                   .95
#   x3 y2    0.30  0.55 |   .0900                  .20               .222                   .85
#   x3 y3    0.25  0.60 |   .0750                  .15               .167                   .85
#
# Reservations (disagreement) 0.1 each, so every outcome is individually rational; the
# ideal point is (1.0, 0.6). x2y2 is dominated by x1y3 and x3y1 by x1y2; the other seven
# outcomes are the Pareto frontier. Utilitarian optimum x1y1 (1.15); egalitarian optimum
# (the highest lowest utility) x2y3 (0.5).

HAND_A = {"a": {"x/x1": 1.0, "x/x2": 0.8, "x/x3": 0.3, "y/y1": 1.0, "y/y2": 0.3, "y/y3": 0.2}}
HAND_B = {"b": {"x/x1": 0.3, "x/x2": 0.4, "x/x3": 0.6, "y/y1": 0.0, "y/y2": 0.5, "y/y3": 0.6}}


def hand_scenario(
    red_lines: list[dict[str, str]] | None = None,
) -> tuple[Agenda, dict[str, ValueModel]]:
    agenda = agenda_of(x=["x1", "x2", "x3"], y=["y1", "y2", "y3"])
    models = {
        "A": model(
            "A",
            agenda,
            HAND_A,
            people={"a1": ["a"], "a2": ["a"]},
            reservation=0.1,
            red_lines=red_lines,
        ),
        "B": model("B", agenda, HAND_B, reservation=0.1),
    }
    return agenda, models


def o(x: str, y: str) -> dict[str, str]:
    return {"x": x, "y": y}


def test_hand_computed_frontier_and_solutions() -> None:
    agenda, models = hand_scenario()
    stats = ScenarioStats(agenda, models)
    assert stats.disagreement == (0.1, 0.1)
    assert stats.point_of(o("x1", "y3")) == (0.6, 0.45)
    frontier = [stats.outcome(i) for i in stats.frontier]
    assert frontier == [
        o("x1", "y1"),
        o("x1", "y2"),
        o("x1", "y3"),
        o("x2", "y1"),
        o("x2", "y3"),
        o("x3", "y2"),
        o("x3", "y3"),
    ]
    assert len(stats.individually_rational) == 9
    assert stats.ideal == (1.0, 0.6)
    assert stats.outcome(stats.nash) == o("x1", "y3")
    assert stats.outcome(stats.kalai) == o("x2", "y3")
    assert stats.outcome(stats.kalai_smorodinsky) == o("x1", "y2")
    assert stats.outcome(stats.utilitarian) == o("x1", "y1")
    assert stats.outcome(stats.egalitarian) == o("x2", "y3")


def test_hand_computed_metrics_of_a_dominated_agreement() -> None:
    agenda, models = hand_scenario()
    ended = Ended(agreement=o("x2", "y2"), reason="all delegates accepted", round=4)
    m = compute_metrics(agenda, models, ended, messages=9)
    assert m.agreement and not m.partial and m.rounds == 4 and m.messages == 9
    assert [p.utility for p in m.parties] == [0.55, 0.45]
    assert m.party("A").gain == 0.45 and m.party("B").gain == 0.35
    assert not m.pareto.optimal
    assert m.pareto.distance == pytest.approx(0.05)  # to x1y3 (0.6, 0.45)
    assert m.pareto.frontier_outcomes == 7
    assert m.nash is not None and m.nash.outcome == o("x1", "y3")
    assert m.nash.value == pytest.approx(0.175)
    assert m.nash.distance == pytest.approx(0.05)
    assert m.kalai is not None and m.kalai.value == pytest.approx(0.4)
    assert m.kalai.distance == pytest.approx(math.hypot(0.05, 0.05))  # to (0.5, 0.5)
    assert m.kalai_smorodinsky is not None and m.kalai_smorodinsky.outcome == o("x1", "y2")
    assert m.kalai_smorodinsky.value == pytest.approx(0.6)
    assert m.kalai_smorodinsky.distance == pytest.approx(math.hypot(0.1, 0.05))  # to (0.65, 0.4)
    assert m.welfare.utilitarian == 1.0 and m.welfare.utilitarian_optimum == 1.15
    assert m.welfare.egalitarian == 0.45 and m.welfare.egalitarian_optimum == 0.5
    assert m.welfare.egalitarian_outcome == o("x2", "y3")
    # Gini of (1.55, 1.45): |1.55 - 1.45| / (2 (1.55 + 1.45)) = 1/60.
    assert m.fairness.gini_constituencies == pytest.approx(1 / 60)
    # Constituents a1, a2 (0.55 each), b-1 (0.45): shifted (1.55, 1.55, 1.45);
    # sum over ordered pairs |xi - xj| = 0.4; / (2 * 9 * 4.55/3) = 4/273.
    assert m.party("A").constituents == {"a1": 0.55, "a2": 0.55}
    assert m.fairness.gini_constituents == pytest.approx(4 / 273)
    # Card a ranges over [0.25, 1.0] and kept (0.55 - 0.25)/0.75 = 0.4; card b over
    # [0.15, 0.6] and kept (0.45 - 0.15)/0.45 = 2/3.
    (card_a,) = m.party("A").cards
    assert (card_a.min, card_a.max, card_a.contribution) == (0.25, 1.0, 0.55)
    assert card_a.preservation == pytest.approx(0.4)
    assert m.party("B").cards[0].preservation == pytest.approx(2 / 3)
    assert m.party("A").satisfaction == pytest.approx((0.55 - 0.25) / 0.75)


def test_hand_computed_agreement_at_the_nash_point() -> None:
    agenda, models = hand_scenario()
    m = compute_metrics(
        agenda, models, Ended(agreement=o("x1", "y3"), reason="ok", round=2), messages=3
    )
    assert m.pareto.optimal and m.pareto.distance == 0.0
    assert m.nash is not None and m.nash.reached and m.nash.distance == 0.0
    assert m.kalai is not None and not m.kalai.reached


def test_no_agreement_puts_everyone_at_the_disagreement_point() -> None:
    agenda, models = hand_scenario()
    m = compute_metrics(
        agenda, models, Ended(agreement=None, reason="deadline", round=30), messages=60
    )
    assert not m.agreement and not m.partial and m.outcome is None
    assert [p.utility for p in m.parties] == [0.1, 0.1]
    assert all(p.gain == 0 and p.cards == [] and p.constituents == {} for p in m.parties)
    assert not m.pareto.optimal
    assert m.pareto.distance == pytest.approx(math.hypot(0.2, 0.45))  # to x3y2 (0.3, 0.55)
    assert m.nash is not None and m.nash.distance == pytest.approx(math.hypot(0.5, 0.35))
    assert m.fairness.gini_constituencies == 0.0 and m.fairness.gini_constituents is None


def test_red_lines_shrink_the_agreement_space() -> None:
    agenda, models = hand_scenario(red_lines=[{"x": "x1"}])
    stats = ScenarioStats(agenda, models)
    assert len(stats.agreement_space) == 6
    # Without x1, none of the remaining six outcomes dominates another.
    assert [stats.outcome(i)["x"] for i in stats.frontier] == ["x2"] * 3 + ["x3"] * 3
    assert stats.outcome(stats.nash) == o("x2", "y3")  # 0.4 * 0.4 = 0.16
    m = session_metrics(stats, Ended(agreement=o("x2", "y2"), reason="ok", round=1), messages=2)
    assert m.pareto.optimal and m.pareto.distance == 0.0
    # An explicit empty set of red lines takes the whole space again.
    assert len(ScenarioStats(agenda, models, red_lines={}).agreement_space) == 9


def test_explicit_disagreement_overrides_the_reservation() -> None:
    agenda, models = hand_scenario()
    stats = ScenarioStats(agenda, models, disagreement={"A": 0.5, "B": 0.1})
    # Individually rational: u_A >= 0.5: x1y1..x1y3, x2y1, x2y2, x2y3, x3y1 (7 outcomes).
    assert len(stats.individually_rational) == 7
    # Nash: (u_A - .5)(u_B - .1) is .045 at x1y2, ahead of x2y1 (.04) and x1y3 (.035).
    assert stats.outcome(stats.nash) == o("x1", "y2")


def test_partial_agreements_give_coalition_members_their_outcome() -> None:
    agenda = agenda_of(x=["x1", "x2", "x3"], y=["y1", "y2", "y3"])
    models = {
        "A": model("A", agenda, HAND_A, reservation=0.1),
        "B": model("B", agenda, HAND_B, reservation=0.1),
        "C": model("C", agenda, {"c": {"x/x3": 1.0, "y/y3": 1.0}}, reservation=-0.2),
    }
    ended = Ended(
        agreement=None,
        reason="coalitions formed",
        round=3,
        partial=[PartialAgreement(parties=["A", "B"], outcome=o("x1", "y3"))],
    )
    m = compute_metrics(agenda, models, ended, messages=12)
    assert not m.agreement and m.partial
    assert [p.utility for p in m.parties] == [0.6, 0.45, -0.2]
    assert m.party("C").outcome is None and m.party("C").cards == []
    assert m.party("A").outcome == o("x1", "y3")
    assert m.fairness.gini_constituents is not None  # A's and B's people
    assert m.fairness.gini_constituencies == pytest.approx(shifted_gini([0.6, 0.45, -0.2]))


def test_metrics_serialise_to_json_and_back() -> None:
    agenda, models = hand_scenario()
    m = compute_metrics(
        agenda, models, Ended(agreement=o("x2", "y2"), reason="ok", round=4), messages=9
    )
    data = json.loads(m.model_dump_json())
    assert data["pareto"]["optimal"] is False
    assert SessionMetrics.model_validate(data) == m


def test_scenario_stats_are_cached() -> None:
    agenda, models = hand_scenario()
    assert scenario_stats(agenda, models) is scenario_stats(agenda, models)
    assert scenario_stats(agenda, models) is not scenario_stats(
        agenda, models, {"A": 0.0, "B": 0.0}
    )


def test_an_outcome_outside_the_agenda_is_refused() -> None:
    agenda, models = hand_scenario()
    with pytest.raises(ValueError, match="unknown option"):
        compute_metrics(
            agenda, models, Ended(agreement=o("x9", "y1"), reason="?", round=1), messages=0
        )


def test_gini_by_hand() -> None:
    assert gini([1.0, 1.0, 1.0]) == 0.0
    assert gini([0.0, 0.0, 1.0]) == pytest.approx(2 / 3)
    assert gini([0.0, 0.0]) == 0.0
    with pytest.raises(ValueError):
        gini([-0.5, 1.0])


def test_pareto_front_for_many_parties_by_hand() -> None:
    points = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.5, 0), (0.4, 0.4, 0), (1, 0, 0)]
    assert pareto_front(points) == [0, 1, 2, 3, 5]  # equal points do not dominate each other


# -- properties -------------------------------------------------------------------------------

SCORES = st.sampled_from([-1.0, -0.5, -0.2, 0.0, 0.1, 0.3, 0.5, 0.8, 1.0])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Agenda, dict[str, ValueModel]]:
    n_issues = draw(st.integers(1, 3))
    agenda = agenda_of(
        **{f"i{k}": [f"o{j}" for j in range(draw(st.integers(2, 4)))] for k in range(n_issues)}
    )
    models = {}
    for p in range(draw(st.integers(2, 4))):
        cards = {
            f"p{p}c{c}": {
                f"{issue.id}/{opt.id}": draw(SCORES)
                for issue in agenda.issues
                for opt in issue.options
            }
            for c in range(draw(st.integers(1, 2)))
        }
        red_lines = []
        if draw(st.booleans()):
            issue = agenda.issues[0]
            red_lines = [{issue.id: draw(st.sampled_from([x.id for x in issue.options]))}]
        models[f"p{p}"] = model(
            f"p{p}",
            agenda,
            cards,
            reservation=draw(st.sampled_from([-1.0, -0.2, 0.0, 0.1])),
            red_lines=red_lines,
        )
    return agenda, models


def brute_front(points: list[tuple[float, ...]]) -> list[int]:
    return [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]


PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(scenarios())
def test_frontier_matches_brute_force(scenario: tuple[Agenda, dict[str, ValueModel]]) -> None:
    agenda, models = scenario
    stats = ScenarioStats(agenda, models)
    space = stats.agreement_space
    expected = [space[j] for j in brute_front([stats.utilities[i] for i in space])]
    assert stats.frontier == expected


@PROPS
@given(scenarios())
def test_nash_kalai_ks_are_optimal_and_on_the_frontier(
    scenario: tuple[Agenda, dict[str, ValueModel]],
) -> None:
    agenda, models = scenario
    stats = ScenarioStats(agenda, models)
    ir = stats.individually_rational
    for index, objective in (
        (stats.nash, stats.nash_product),
        (stats.kalai, stats.kalai_value),
        (stats.kalai_smorodinsky, stats.ks_value),
    ):
        if not ir:
            assert index is None
            continue
        assert index in stats.frontier
        assert index in ir
        assert objective(stats.utilities[index]) == max(objective(stats.utilities[i]) for i in ir)
    if not stats.agreement_space:  # red lines forbid everything
        assert stats.frontier == [] and stats.utilitarian is None and stats.egalitarian is None
        m = session_metrics(stats, Ended(agreement=None, reason="x", round=1), messages=0)
        assert m.pareto.distance is None and m.pareto.optimal
        return
    assert stats.utilitarian in stats.frontier and stats.egalitarian in stats.frontier
    assert sum(stats.utilities[stats.utilitarian]) == pytest.approx(
        max(sum(stats.utilities[i]) for i in stats.agreement_space)
    )


@PROPS
@given(scenarios())
def test_distance_is_zero_iff_on_the_frontier(
    scenario: tuple[Agenda, dict[str, ValueModel]],
) -> None:
    agenda, models = scenario
    stats = ScenarioStats(agenda, models)
    frontier = set(stats.frontier)
    for i in stats.agreement_space:
        m = session_metrics(
            stats, Ended(agreement=stats.outcome(i), reason="x", round=1), messages=1
        )
        assert (m.pareto.distance == 0.0) == (i in frontier) == m.pareto.optimal
        assert 0.0 <= m.fairness.gini_constituencies <= 1.0
        assert (
            m.fairness.gini_constituents is not None and 0.0 <= m.fairness.gini_constituents <= 1.0
        )
        for p in m.parties:
            assert all(0.0 <= c.preservation <= 1.0 for c in p.cards)


@PROPS
@given(scenarios())
def test_card_ranges_match_brute_force(scenario: tuple[Agenda, dict[str, ValueModel]]) -> None:
    agenda, models = scenario
    stats = ScenarioStats(agenda, models)
    outcomes = list(agenda.outcomes())
    for party, m in models.items():
        for c in m.constituency.cards:
            values = [
                next(x.contribution for x in m.breakdown(o).contributions if x.card == c.id)
                for o in outcomes
            ]
            low, high = stats.card_ranges[party][c.id]
            assert low == pytest.approx(min(values), abs=1e-9)
            assert high == pytest.approx(max(values), abs=1e-9)
        # The one-pass utilities are the model's own.
        k = stats.parties.index(party)
        for n, o in enumerate(outcomes):
            assert stats.utilities[n][k] == pytest.approx(m.utility(o), abs=1e-9)
            assert stats.index_of(o) == n and stats.outcome(n) == o


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 2, allow_nan=False), min_size=1, max_size=12))
def test_gini_is_in_the_unit_interval(values: list[float]) -> None:
    assert 0.0 <= gini(values) <= 1.0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(*[st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])] * 3), min_size=1, max_size=40
    )
)
def test_skyline_matches_brute_force(points: list[tuple[float, float, float]]) -> None:
    assert pareto_front(points) == brute_front(points)
    two = [p[:2] for p in points]
    assert pareto_front(two) == brute_front(two)


def test_additive_shortcut_agrees_with_a_generic_model() -> None:
    """A model that only offers utility() is evaluated outcome by outcome; same answers."""
    agenda, models = hand_scenario()

    class Plain:
        def __init__(self, inner: ValueModel) -> None:
            self.inner = inner

        def utility(self, outcome: dict[str, str]) -> float:
            return self.inner.utility(outcome)

    plain = {p: Plain(m) for p, m in models.items()}
    a = ScenarioStats(agenda, models)
    b = ScenarioStats(agenda, plain, disagreement={"A": 0.1, "B": 0.1}, red_lines={})
    assert a.utilities == b.utilities and a.frontier == b.frontier and a.nash == b.nash
    assert b.card_ranges == {"A": {}, "B": {}}


# -- the examples ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [FIXTURES / "tiny.yaml", *EXAMPLES],
    ids=lambda p: p.parent.name if p.name == "session.yaml" else p.stem,
)
def test_metrics_on_the_examples(path: Path) -> None:
    plan, _ = load_plan(path)
    models = {p.id: p.model for p in plan.participants}
    stats = scenario_stats(plan.agenda, models)
    assert stats.disagreement == tuple(
        p.constituency.mandate.reservation for p in plan.participants
    )
    assert stats.frontier and set(stats.individually_rational) <= set(stats.agreement_space)
    for p in plan.participants:
        # The agreement space is what no mandate's red line forbids.
        assert all(
            p.constituency.mandate.crosses_red_line(stats.outcome(i)) is None
            for i in stats.agreement_space
        )
    assert stats.nash is not None
    nash = stats.outcome(stats.nash)
    m = session_metrics(stats, Ended(agreement=nash, reason="x", round=1), messages=1)
    assert m.pareto.optimal and m.pareto.distance == 0.0 and m.nash is not None and m.nash.reached
    for party in m.parties:
        assert party.utility >= party.disagreement
        assert party.utility == pytest.approx(
            plan.participant(party.id).model.utility(nash), abs=1e-9
        )
        assert {c.card for c in party.cards} == {
            c.id for c in plan.participant(party.id).constituency.cards
        }
    assert m.welfare.utilitarian <= m.welfare.utilitarian_optimum + 1e-12
    assert m.welfare.egalitarian <= m.welfare.egalitarian_optimum + 1e-12
    SessionMetrics.model_validate_json(m.model_dump_json())


# -- from the ledger -------------------------------------------------------------------------------


def test_metrics_from_the_ledger_of_a_real_session(tmp_path: Path) -> None:
    from accord.ledger import Ledger

    plan, result, rows = run(run_file(FIXTURES / "tiny.yaml", tmp_path / "ledger.db"))

    async def read() -> SessionMetrics:
        ledger = await Ledger.open(tmp_path / "ledger.db", create=False)
        try:
            return await metrics_for_session(ledger, result.session_id)
        finally:
            await ledger.close()

    m = run(read())
    assert m.session_id == result.session_id
    assert m.agreement == (result.ended.agreement is not None)
    assert m.outcome == result.ended.agreement and m.reason == result.ended.reason
    assert m.rounds == result.ended.round
    assert m.messages == sum(1 for r in rows if r.kind == "move") > 0
    expected = compute_metrics(
        plan.agenda,
        {p.id: p.model for p in plan.participants},
        result.ended,
        messages=m.messages,
        session_id=result.session_id,
    )
    assert m == expected
    for r in result.delegates:
        if r.breakdown is not None:
            assert m.party(r.delegate).utility == pytest.approx(r.breakdown.utility, abs=1e-9)
    assert metrics_from_entries(result.session_id, rows) == m


def test_metrics_cli_renders_a_session(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from accord.cli_metrics import metrics_app

    _, result, _ = run(run_file(FIXTURES / "tiny.yaml", tmp_path / "ledger.db"))
    app = typer.Typer()

    @app.command()
    def other() -> None:  # a second command, so `metrics` is mounted as in the real CLI
        """Nothing."""

    app.add_typer(metrics_app, name="metrics")
    runner = CliRunner()
    out = runner.invoke(
        app,
        ["metrics", result.session_id, "--ledger", str(tmp_path / "ledger.db")],
        terminal_width=160,
    )
    assert out.exit_code == 0, out.output
    assert "Nash" in out.output and "Pareto frontier" in out.output and "Gini" in out.output
    out = runner.invoke(app, ["metrics", "latest", "--json", "-l", str(tmp_path / "ledger.db")])
    assert out.exit_code == 0, out.output
    assert SessionMetrics.model_validate_json(out.output).session_id == result.session_id
    out = runner.invoke(app, ["metrics", "nope", "-l", str(tmp_path / "ledger.db")])
    assert out.exit_code == 2
    out = runner.invoke(app, ["metrics", "latest", "-l", str(tmp_path / "absent.db")])
    assert out.exit_code == 2 and not (tmp_path / "absent.db").exists()


def test_brute_force_nash_on_tiny_by_enumeration() -> None:
    """The tiny fixture, checked against a plain enumeration of the definitions."""
    plan, _ = load_plan(FIXTURES / "tiny.yaml")
    models = {p.id: p.model for p in plan.participants}
    stats = scenario_stats(plan.agenda, models)
    d = stats.disagreement
    allowed = [
        o
        for o in plan.agenda.outcomes()
        if all(p.constituency.mandate.crosses_red_line(o) is None for p in plan.participants)
    ]
    rational = [
        o
        for o in allowed
        if all(round(m.utility(o), 12) >= di for m, di in zip(models.values(), d, strict=True))
    ]
    best = max(
        math.prod(round(m.utility(o), 12) - di for m, di in zip(models.values(), d, strict=True))
        for o in rational
    )
    assert stats.nash_product(stats.utilities[stats.nash]) == pytest.approx(best)
    assert len(list(itertools.chain(allowed))) == len(stats.agreement_space)
