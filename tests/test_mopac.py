"""The MOPAC state machine and its coalition rule on their own, then end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.ledger import verify_entries
from accord.session_file import ProtocolSpec, load_session
from accord.session_plan import build_plan
from protocols.agenda import Agenda, Issue, Option
from protocols.events import Absence, Call, Ended, Rejection, TableOffer
from protocols.moves import Accept, Justification, Propose, Rank, Vote, Votes
from protocols.mopac import Mopac, MopacParams, form_coalitions, largest_coalition
from tests.conftest import EXAMPLES, FIXTURES, run
from tests.helpers import moves_of, run_plan

AGENDA = Agenda(
    issues=[
        Issue(id="x", options=[Option(id="a"), Option(id="b")]),
        Issue(id="y", options=[Option(id="c"), Option(id="d")]),
    ]
)
J = Justification(utility=0.0, cited=[], rationale="test")
A = {"x": "a", "y": "c"}
B = {"x": "b", "y": "d"}
C = {"x": "a", "y": "d"}
PEOPLE = ["p", "q", "r", "s"]


def v(offer: dict[str, str], lo: int = 2, hi: int = 1_000_000) -> Vote:
    return Vote(offer=offer, min_power=lo, max_power=hi, justification=J)


def votes(*vs: Vote) -> Votes:
    return Votes(votes=list(vs), justification=J)


def propose(offer: dict[str, str]) -> Propose:
    return Propose(offer=offer, justification=J)


def mopac(people: list[str] = PEOPLE, **params) -> Mopac:  # noqa: ANN003
    proto = Mopac(people, AGENDA, MopacParams(**params), seed=0)
    proto.start()
    return proto


def offers(proto: Mopac, table: dict[str, dict[str, str]]) -> list:
    events = []
    for who, offer in table.items():
        events = proto.receive(who, propose(offer))
    return events


def cast(proto: Mopac, ballots: dict[str, Votes]) -> list:
    events = []
    for who, move in ballots.items():
        events = proto.receive(who, move)
    return events


# -- coalitions ---------------------------------------------------------------------------


def test_largest_coalition_respects_everyone_s_bounds() -> None:
    assert largest_coalition([("p", v(A)), ("q", v(A)), ("r", v(A))]) == ["p", "q", "r"]
    assert largest_coalition([("p", v(A))]) == []
    # r wants at least 4: without it, p and q still agree.
    assert largest_coalition([("p", v(A)), ("q", v(A)), ("r", v(A, 4))]) == ["p", "q"]
    # Everyone wants exactly 2: the first two listed form it (a drop-loop would find none).
    assert largest_coalition([("p", v(A, 2, 2)), ("q", v(A, 2, 2)), ("r", v(A, 2, 2))]) == ["p", "q"]
    # p wants at least 3 and at most 3; q and r accept any size from 2.
    assert largest_coalition([("p", v(A, 3, 3)), ("q", v(A)), ("r", v(A))]) == ["p", "q", "r"]
    assert largest_coalition([("p", v(A, 3)), ("q", v(A, 3))]) == []


def test_the_largest_coalition_wins_and_ties_go_to_the_earliest_offer() -> None:
    table = [TableOffer(by="p", offer=A), TableOffer(by="r", offer=B)]
    ballots = {"p": [v(A)], "q": [v(A), v(B)], "r": [v(B)], "s": [v(B)]}
    [agreement] = form_coalitions(table, ballots, PEOPLE)
    assert agreement.parties == ["q", "r", "s"] and agreement.outcome == B
    tie = {"p": [v(A)], "q": [v(A)], "r": [v(B)], "s": [v(B)]}
    assert [a.outcome for a in form_coalitions(table, tie, PEOPLE)] == [A]
    assert [a.outcome for a in form_coalitions(table, tie, PEOPLE, loop=True)] == [A, B]


# -- the protocol -------------------------------------------------------------------------


def test_offer_voting_and_opt_in_phases_in_order() -> None:
    proto = Mopac(PEOPLE, AGENDA, MopacParams(), seed=0)
    calls = proto.start()
    assert [c.to for c in calls] == PEOPLE
    assert all(c.allowed == ["propose"] and c.phase == "offer" and c.round == 1 for c in calls)
    calls = offers(proto, {"s": A, "q": B, "p": A, "r": C})
    # The table: distinct offers in session order of their proposers, whatever the arrival.
    assert calls[0].phase == "voting" and calls[0].allowed == ["votes"]
    assert calls[0].table == [TableOffer(by="p", offer=A), TableOffer(by="q", offer=B), TableOffer(by="r", offer=C)]
    calls = cast(proto, {"p": votes(v(A)), "q": votes(v(A)), "r": votes(), "s": votes(v(B))})
    assert calls[0].phase == "opt-in" and "q[2+]" in calls[0].note and "no votes" in calls[0].note
    [ended] = cast(proto, {"p": votes(v(A)), "q": votes(v(A)), "r": votes(v(A)), "s": votes(v(B), v(A))})
    assert isinstance(ended, Ended) and ended.agreement == A and ended.accepted_by == PEOPLE
    assert [(a.parties, a.outcome) for a in ended.partial] == [(PEOPLE, A)]
    assert "all 4 delegates agreed" in ended.reason


def test_a_coalition_leaves_and_the_others_go_on() -> None:
    proto = mopac(opt_in=False)
    offers(proto, dict(zip(PEOPLE, [A, A, B, B], strict=True)))
    calls = cast(proto, {"p": votes(v(A)), "q": votes(v(A)), "r": votes(v(A), v(B)), "s": votes(v(B))})
    # p, q, r agreed on A; s alone cannot go on: the session ends.
    [ended] = calls
    assert ended.agreement is None and [(a.parties, a.outcome) for a in ended.partial] == [(["p", "q", "r"], A)]
    assert "without agreement: s" in ended.reason and "fewer than two" in ended.reason


def test_two_coalitions_over_two_rounds() -> None:
    proto = mopac(opt_in=False)
    offers(proto, dict(zip(PEOPLE, [A, A, B, B], strict=True)))
    calls = cast(proto, {"p": votes(v(A)), "q": votes(v(A)), "r": votes(v(B)), "s": votes(v(B))})
    assert [c.to for c in calls] == ["r", "s"] and calls[0].round == 2 and calls[0].phase == "offer"
    [rejection] = proto.receive("p", propose(A))
    assert "has reached a partial agreement" in rejection.reason
    offers(proto, {"r": B, "s": B})
    [ended] = cast(proto, {"r": votes(v(B)), "s": votes(v(B))})
    assert [a.parties for a in ended.partial] == [["p", "q"], ["r", "s"]] and ended.agreement is None
    assert ended.round == 2 and "2 partial agreement(s)" in ended.reason


def test_the_loop_evaluator_forms_several_coalitions_in_one_round() -> None:
    proto = mopac(opt_in=False, evaluator="largest-agreements-loop")
    offers(proto, dict(zip(PEOPLE, [A, A, B, B], strict=True)))
    [ended] = cast(proto, {"p": votes(v(A)), "q": votes(v(A)), "r": votes(v(B)), "s": votes(v(B))})
    assert [a.outcome for a in ended.partial] == [A, B] and ended.round == 1


def test_no_coalition_until_the_deadline() -> None:
    proto = mopac(deadline_rounds=2, opt_in=False)
    for _ in range(2):
        offers(proto, dict(zip(PEOPLE, [A, B, C, A], strict=True)))
        events = cast(proto, {who: votes() for who in PEOPLE})
    [ended] = events
    assert ended.agreement is None and ended.partial == [] and ended.round == 2
    assert "no coalition formed" in ended.reason and "deadline" in ended.reason


def _at_voting(**params) -> Mopac:  # noqa: ANN003
    proto = mopac(**params)
    offers(proto, dict(zip(PEOPLE, [A, A, B, B], strict=True)))
    return proto


@pytest.mark.parametrize(
    ("phase", "move", "reason"),
    [
        ("offer", votes(), "offer phase accepts only propose, not votes"),
        ("offer", propose({"x": "a"}), "no option chosen"),
        ("offer", propose({"x": "z", "y": "c"}), "unknown option 'z'"),
        ("voting", propose(A), "voting phase accepts only votes, not propose"),
        ("voting", votes(v(C)), "votes on an offer not on the table"),
        ("voting", votes(v(A), v(A, 3)), "votes twice on the same offer"),
        ("voting", votes(v(A, 3, 2)), "min_power 3 is above max_power 2"),
        ("opt-in", votes(), "drops or narrows its vote on x=a, y=c"),
        ("opt-in", votes(v(A, 3)), "drops or narrows its vote"),
        ("opt-in", votes(v(A, 2, 5)), "drops or narrows its vote"),
        ("opt-in", votes(v(C)), "votes on an offer not on the table"),
    ],
)
def test_illegal_moves_are_refused_with_a_reason_and_change_nothing(phase, move, reason) -> None:  # noqa: ANN001
    proto = mopac() if phase == "offer" else _at_voting()
    if phase == "opt-in":
        cast(proto, {who: votes(v(A)) for who in PEOPLE})
    before = (proto.phase, proto.round, list(proto.table), dict(proto.votes), [c.to for c in proto.pending])
    events = proto.receive("p", move)
    assert isinstance(events[0], Rejection) and reason in events[0].reason
    assert isinstance(events[1], Call) and events[1].to == "p" and reason in events[1].note
    assert (proto.phase, proto.round, list(proto.table), dict(proto.votes), [c.to for c in proto.pending]) == before


def test_opt_in_may_add_votes_and_widen_bounds() -> None:
    proto = _at_voting()
    cast(proto, {"p": votes(v(A, 3, 4)), "q": votes(), "r": votes(), "s": votes()})
    assert proto.receive("p", votes(v(A, 2, 9), v(B))) == []


def test_duplicates_strangers_and_late_moves_are_refused() -> None:
    proto = mopac()
    proto.receive("p", propose(A))
    [dup] = proto.receive("p", propose(B))
    assert "duplicate" in dup.reason
    [stranger] = proto.receive("mallory", propose(A))
    assert "not a participant" in stranger.reason
    [wrong] = proto.receive("q", Accept(offer=A, justification=J))[:1]
    assert "accepts only propose" in wrong.reason
    [rank] = proto.receive("q", Rank(ranking=["c1"], justification=J))[:1]
    assert "not rank" in rank.reason


def test_missed_calls_cost_an_offer_then_votes_then_membership() -> None:
    proto = mopac(people=["p", "q", "r"], absence_limit=2, opt_in=False)
    proto.receive("p", propose(A))
    proto.receive("q", propose(A))
    [absence, *calls] = proto.timeout("r")
    assert isinstance(absence, Absence) and "no offer" in absence.consequence
    assert calls[0].phase == "voting" and [c.to for c in calls] == ["p", "q", "r"]
    proto.receive("p", votes())
    proto.receive("q", votes())
    [absence, *calls] = proto.timeout("r")
    assert "leaves the negotiation" in absence.consequence
    assert [c.to for c in calls] == ["p", "q"] and calls[0].round == 2
    [gone] = proto.receive("r", propose(A))
    assert "has left" in gone.reason


def test_a_missed_opt_in_keeps_the_voting_phase_votes() -> None:
    proto = mopac(people=["p", "q"])
    offers(proto, {"p": A, "q": B})
    cast(proto, {"p": votes(v(A)), "q": votes(v(A))})
    proto.receive("p", votes(v(A)))
    [absence, ended] = proto.timeout("q")
    assert "votes stand" in absence.consequence and ended.agreement == A


def test_same_seed_same_events() -> None:
    def script() -> list:
        proto = Mopac(PEOPLE, AGENDA, MopacParams(), seed=2)
        out = proto.start()
        out += offers(proto, dict(zip(PEOPLE, [A, B, C, A], strict=True)))
        out += cast(proto, {who: votes(v(A)) for who in PEOPLE})
        return [e.model_dump() for e in out]

    assert script() == script()


# -- end to end ---------------------------------------------------------------------------

SESSIONS = [FIXTURES / "tiny.yaml", *EXAMPLES]


def _plan(path: Path, **params):  # noqa: ANN003, ANN202
    spec, _ = load_session(path)
    return build_plan(spec.model_copy(update={"protocol": ProtocolSpec(name="mopac", **params)}))


@pytest.mark.parametrize("path", SESSIONS, ids=lambda p: p.parent.name if p.name == "session.yaml" else p.stem)
def test_mopac_end_to_end_ends_verifies_and_repeats(path: Path, tmp_path: Path) -> None:
    _, first, rows1 = run(run_plan(_plan(path), tmp_path / "a.db"))
    _, second, rows2 = run(run_plan(_plan(path), tmp_path / "b.db"))
    report = verify_entries(first.session_id, rows1)
    assert report.ok, report.problems
    assert any(r.kind == "ended" for r in rows1)
    kinds = {r.body["move"]["kind"] for r in rows1 if r.kind == "move"}
    assert kinds == {"propose", "votes"}
    # Every partial agreement is on an outcome its members' mandates allow.
    plan = _plan(path)
    for agreement in first.ended.partial:
        for party in agreement.parties:
            p = plan.participant(party)
            assert p.constituency.mandate.violation(agreement.outcome, p.model.utility(agreement.outcome)) is None
    assert first.ended == second.ended
    assert moves_of(rows1) == moves_of(rows2)
