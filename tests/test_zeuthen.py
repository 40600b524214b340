"""The monotonic concession state machine on its own, then end to end through the runtime."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from accord.ledger import verify_entries
from accord.session_file import ProtocolSpec, load_session
from accord.session_plan import build_plan
from protocols.agenda import Agenda, Issue, Option
from protocols.events import Absence, Call, ChairEvent, Ended, Rejection
from protocols.moves import Accept, Justification, Propose, Rank, Reject
from protocols.zeuthen import MonotonicConcession, ZeuthenParams
from tests.conftest import EXAMPLES, FIXTURES, ROOT, run
from tests.helpers import moves_of, run_plan

AGENDA = Agenda(
    issues=[
        Issue(id="x", options=[Option(id="a"), Option(id="b")]),
        Issue(id="y", options=[Option(id="c"), Option(id="d")]),
    ]
)
J = Justification(utility=0.0, cited=[], rationale="test")
AC = {"x": "a", "y": "c"}
AD = {"x": "a", "y": "d"}
BC = {"x": "b", "y": "c"}
BD = {"x": "b", "y": "d"}
PEOPLE = ["p", "q", "r"]


def mcp(participants: list[str] = PEOPLE, seed: int = 0, **kw: int) -> MonotonicConcession:
    kw.setdefault("deadline_rounds", 5)
    return MonotonicConcession(participants, AGENDA, ZeuthenParams(**kw), seed=seed)


def propose(proto: MonotonicConcession, offers: dict[str, dict[str, str]]) -> list[ChairEvent]:
    events: list[ChairEvent] = []
    for who, offer in offers.items():
        events = proto.receive(who, Propose(offer=offer, justification=J))
    return events


def open_call(proto: MonotonicConcession, who: str) -> Call:
    [call] = [c for c in proto.pending if c.to == who]
    return call


def answer(proto: MonotonicConcession, who: str, accept: bool) -> list[ChairEvent]:
    offer = open_call(proto, who).standing_offer or {}
    return proto.receive(who, (Accept if accept else Reject)(offer=offer, justification=J))


def judge_all(proto: MonotonicConcession, likes: Callable[[str, dict[str, str]], bool]) -> list[ChairEvent]:
    """Answer every question of the round; `likes(who, offer)` decides."""
    events: list[ChairEvent] = []
    while proto.pending and proto.pending[0].phase == "judge":
        call = proto.pending[0]
        events = answer(proto, call.to, likes(call.to, call.standing_offer or {}))
    return events


def nobody(who: str, offer: dict[str, str]) -> bool:
    return False


# -- proposals ---------------------------------------------------------------------------


def test_every_delegate_is_called_to_propose_at_once_without_a_table_in_round_one() -> None:
    proto = mcp()
    calls = proto.start()
    assert [c.to for c in calls] == PEOPLE
    for call in calls:
        assert isinstance(call, Call) and call.allowed == ["propose"] and call.phase == "propose"
        assert call.round == 1 and call.table is None and call.standing_offer is None
    assert proto.pending == calls


def test_proposals_are_sealed_until_all_are_in() -> None:
    proto = mcp()
    proto.start()
    assert proto.receive("p", Propose(offer=AC, justification=J)) == []
    assert proto.receive("q", Propose(offer=BD, justification=J)) == []
    assert [c.to for c in proto.pending] == ["r"]


def test_judgement_calls_ask_about_each_other_offer_against_ones_own() -> None:
    proto = mcp()
    proto.start()
    calls = propose(proto, {"p": AC, "q": BD, "r": AD})
    assert [c.to for c in calls] == PEOPLE
    first = {c.to: c for c in calls}
    assert first["p"].standing_offer == BD and first["p"].offered_by == "q"
    assert first["p"].compare_to == AC
    assert first["p"].allowed == ["accept", "reject"] and first["p"].phase == "judge"
    assert [(c.id, c.outcome) for c in first["p"].candidates or []] == [("q", BD), ("r", AD)]
    assert first["q"].standing_offer == AC and first["r"].standing_offer == AC
    # p's second question comes after its first answer.
    [second] = answer(proto, "p", accept=False)
    assert second.to == "p" and second.standing_offer == AD and second.offered_by == "r"
    assert answer(proto, "p", accept=False) == []  # p is done; q and r still have questions
    assert sorted(c.to for c in proto.pending) == ["q", "r"]


def test_agreement_when_an_offer_is_accepted_by_every_other_delegate() -> None:
    proto = mcp()
    proto.start()
    propose(proto, {"p": AC, "q": BD, "r": AD})
    events = judge_all(proto, lambda who, offer: offer == AD)
    [ended] = events
    assert isinstance(ended, Ended) and ended.agreement == AD and ended.round == 1
    assert ended.accepted_by == PEOPLE and "r" in ended.reason
    assert proto.done and proto.pending == []


def test_a_shared_offer_counts_as_accepted_by_those_who_made_it() -> None:
    proto = mcp()
    proto.start()
    calls = propose(proto, {"p": AC, "q": AC, "r": BD})
    asked = {c.to: c.standing_offer for c in calls}
    assert asked == {"p": BD, "q": BD, "r": AC}
    answer(proto, "p", False)
    answer(proto, "q", False)
    [ended] = answer(proto, "r", True)
    assert isinstance(ended, Ended) and ended.agreement == AC and "p, q" in ended.reason


def test_identical_proposals_agree_at_once() -> None:
    proto = mcp()
    proto.start()
    [ended] = propose(proto, {"p": BC, "q": BC, "r": BC})
    assert isinstance(ended, Ended) and ended.agreement == BC and ended.accepted_by == PEOPLE


def test_several_agreed_offers_are_settled_by_a_seeded_lot() -> None:
    chosen = set()
    for seed in range(16):
        proto = mcp(participants=["p", "q"], seed=seed)
        proto.start()
        propose(proto, {"p": AC, "q": BD})
        [ended] = judge_all(proto, lambda who, offer: True)
        assert isinstance(ended, Ended) and "drawn by lot" in ended.reason
        again = mcp(participants=["p", "q"], seed=seed)
        again.start()
        propose(again, {"p": AC, "q": BD})
        [same] = judge_all(again, lambda who, offer: True)
        assert same == ended
        chosen.add(str(ended.agreement))
    assert len(chosen) == 2


def test_without_agreement_the_next_round_shows_last_rounds_offers() -> None:
    proto = mcp()
    proto.start()
    propose(proto, {"p": AC, "q": BD, "r": AD})
    calls = judge_all(proto, nobody)
    assert [c.to for c in calls] == PEOPLE
    for call in calls:
        assert isinstance(call, Call) and call.phase == "propose" and call.round == 2
        assert [(t.by, t.offer) for t in call.table or []] == [("p", AC), ("q", BD), ("r", AD)]


# -- conflict and the deadline -----------------------------------------------------------


def test_conflict_when_nobody_concedes() -> None:
    proto = mcp()
    proto.start()
    propose(proto, {"p": AC, "q": BD, "r": AD})
    judge_all(proto, nobody)
    [ended] = propose(proto, {"p": AC, "q": BD, "r": AD})
    assert isinstance(ended, Ended) and ended.agreement is None and ended.round == 2
    assert "conflict" in ended.reason


def test_one_concession_is_enough_to_go_on() -> None:
    proto = mcp()
    proto.start()
    propose(proto, {"p": AC, "q": BD, "r": AD})
    judge_all(proto, nobody)
    calls = propose(proto, {"p": AC, "q": BC, "r": AD})
    assert calls and all(isinstance(c, Call) and c.phase == "judge" for c in calls)


def test_standstill_rounds_tolerates_rounds_without_concession() -> None:
    proto = mcp(standstill_rounds=2)
    proto.start()
    propose(proto, {"p": AC, "q": BD, "r": AD})
    judge_all(proto, nobody)
    calls = propose(proto, {"p": AC, "q": BD, "r": AD})
    # Nothing moved: no judgements (the table is unchanged), straight to round 3.
    assert all(isinstance(c, Call) and c.phase == "propose" and c.round == 3 for c in calls)
    [ended] = propose(proto, {"p": AC, "q": BD, "r": AD})
    assert isinstance(ended, Ended) and "conflict" in ended.reason and ended.round == 3


def test_a_concession_resets_the_standstill_count() -> None:
    proto = mcp(standstill_rounds=2)
    proto.start()
    propose(proto, {"p": AC, "q": BD, "r": AD})
    judge_all(proto, nobody)
    propose(proto, {"p": AC, "q": BD, "r": AD})  # still (1)
    propose(proto, {"p": BC, "q": BD, "r": AD})  # p moves
    judge_all(proto, nobody)
    calls = propose(proto, {"p": BC, "q": BD, "r": AD})  # still (1 again)
    assert all(isinstance(c, Call) and c.round == 5 for c in calls)


def test_deadline_without_agreement_is_an_outcome() -> None:
    proto = mcp(deadline_rounds=2)
    proto.start()
    propose(proto, {"p": AC, "q": BD, "r": AD})
    judge_all(proto, nobody)
    propose(proto, {"p": BC, "q": BD, "r": AD})
    [ended] = judge_all(proto, nobody)
    assert isinstance(ended, Ended) and ended.agreement is None and "deadline" in ended.reason
    assert ended.round == 2


# -- illegal moves -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("move", "reason"),
    [
        (Accept(offer=AC, justification=J), "out of phase"),
        (Reject(offer=AC, justification=J), "out of phase"),
        (Rank(ranking=["p"], justification=J), "a rank is not allowed"),
        (Propose(offer={"x": "z", "y": "c"}, justification=J), "unknown option 'z'"),
        (Propose(offer={"x": "a"}, justification=J), "no option chosen"),
    ],
)
def test_illegal_proposals_are_rejected_and_the_delegate_called_again(move, reason) -> None:  # noqa: ANN001
    proto = mcp()
    proto.start()
    events = proto.receive("p", move)
    assert [type(e) for e in events] == [Rejection, Call]
    assert reason in events[0].reason and events[1].to == "p" and reason in events[1].note
    assert proto.offers == {} and len(proto.pending) == 3
    propose(proto, {"p": AC, "q": BD, "r": AD})
    assert proto.offers["p"] == AC


@pytest.mark.parametrize(
    ("move", "reason"),
    [
        (Propose(offer=BC, justification=J), "out of phase"),
        (Accept(offer=AD, justification=J), "stale"),  # not the offer asked about
        (Reject(offer=AC, justification=J), "stale"),  # its own offer
        (Accept(offer={"x": "q", "y": "c"}, justification=J), "unknown option"),
        (Rank(ranking=["q"], justification=J), "a rank is not allowed"),
    ],
)
def test_illegal_judgements_are_rejected_and_the_question_put_again(move, reason) -> None:  # noqa: ANN001
    proto = mcp()
    proto.start()
    propose(proto, {"p": AC, "q": BD, "r": AD})
    events = proto.receive("p", move)
    assert [type(e) for e in events] == [Rejection, Call]
    assert reason in events[0].reason
    assert events[1].to == "p" and events[1].standing_offer == BD
    assert proto.verdict("p", BD) is None and proto.offers["p"] == AC


def test_non_participants_are_refused() -> None:
    proto = mcp()
    proto.start()
    [rejection] = proto.receive("mallory", Propose(offer=AC, justification=J))
    assert isinstance(rejection, Rejection) and "not a participant" in rejection.reason
    assert len(proto.pending) == 3


def test_a_second_proposal_in_a_round_is_a_duplicate() -> None:
    proto = mcp()
    proto.start()
    proto.receive("p", Propose(offer=AC, justification=J))
    [rejection] = proto.receive("p", Propose(offer=BD, justification=J))
    assert "duplicate" in rejection.reason and proto.offers["p"] == AC


def test_a_second_answer_about_the_same_offer_is_a_duplicate() -> None:
    proto = mcp(participants=["p", "q"])
    proto.start()
    propose(proto, {"p": AC, "q": BD})
    answer(proto, "p", accept=False)
    [rejection] = proto.receive("p", Accept(offer=BD, justification=J))
    assert "duplicate" in rejection.reason and proto.verdict("p", BD) == "reject"


def test_moves_out_of_turn_are_refused_without_a_call() -> None:
    proto = mcp()
    proto.start()
    propose(proto, {"p": AC, "q": BD, "r": AD})
    answer(proto, "p", False)
    answer(proto, "p", False)  # p has answered everything
    [rejection] = proto.receive("p", Propose(offer=BC, justification=J))
    assert "proposals for round 1 are closed" in rejection.reason
    [rejection] = proto.receive("p", Accept(offer=BC, justification=J))
    assert "out of turn" in rejection.reason


def test_moves_before_the_start_and_after_the_end_are_refused() -> None:
    proto = mcp()
    [rejection] = proto.receive("p", Propose(offer=AC, justification=J))
    assert "not started" in rejection.reason
    proto.start()
    propose(proto, {"p": AC, "q": AC, "r": AC})
    assert proto.done
    [rejection] = proto.receive("p", Propose(offer=AC, justification=J))
    assert "ended" in rejection.reason
    assert proto.start() == [] and proto.timeout("p") == []


def test_repeated_illegal_moves_count_as_a_missed_call() -> None:
    proto = mcp(strikes=2)
    proto.start()
    bad = Accept(offer=AC, justification=J)
    proto.receive("p", bad)
    events = proto.receive("p", bad)
    assert [type(e) for e in events] == [Rejection, Absence]
    assert "2 illegal moves" in events[1].consequence and "no offer" in events[1].consequence


# -- timeouts and absence ----------------------------------------------------------------


def test_a_missed_first_proposal_leaves_the_delegate_without_an_offer() -> None:
    proto = mcp()
    proto.start()
    propose(proto, {"p": AC, "q": BD})
    events = proto.timeout("r")
    assert isinstance(events[0], Absence) and "no offer" in events[0].consequence
    calls = [e for e in events if isinstance(e, Call)]
    assert {c.to: c.standing_offer for c in calls} == {"p": BD, "q": AC, "r": AC}
    assert open_call(proto, "r").compare_to is None
    # r can still make an agreement by accepting.
    answer(proto, "p", True)
    answer(proto, "q", False)
    [next_question] = answer(proto, "r", False)
    assert next_question.standing_offer == BD
    [ended] = answer(proto, "r", True)
    assert isinstance(ended, Ended) and ended.agreement == BD


def test_a_missed_proposal_later_leaves_the_previous_offer_standing() -> None:
    proto = mcp()
    proto.start()
    propose(proto, {"p": AC, "q": BD, "r": AD})
    judge_all(proto, nobody)
    propose(proto, {"p": BC, "q": BD})
    events = proto.timeout("r")
    assert isinstance(events[0], Absence) and "previous offer stands" in events[0].consequence
    assert proto.offers["r"] == AD
    # ... and standing still by missing counts: if nobody else moves, it is conflict.
    judge_all(proto, nobody)
    propose(proto, {"p": BC, "q": BD})
    [absence, ended] = proto.timeout("r")
    assert isinstance(ended, Ended) and "conflict" in ended.reason


def test_a_missed_judgement_rejects_all_that_delegates_remaining_questions() -> None:
    proto = mcp()
    proto.start()
    propose(proto, {"p": AC, "q": BD, "r": AD})
    events = proto.timeout("p")
    assert isinstance(events[0], Absence) and "2 offer(s) count as rejected" in events[0].consequence
    assert proto.verdict("p", BD) == "missed" and proto.verdict("p", AD) == "missed"
    assert "p" not in [c.to for c in proto.pending]
    [rejection] = proto.receive("p", Accept(offer=BD, justification=J))
    assert "too late" in rejection.reason
    # q's and r's offers cannot be agreed without p: the round ends without agreement.
    calls = judge_all(proto, lambda who, offer: offer != AC)
    assert all(isinstance(c, Call) and c.round == 2 for c in calls)


def test_absence_ends_the_session_without_agreement() -> None:
    proto = mcp(absence_limit=2)
    proto.start()
    propose(proto, {"p": AC, "q": BD})
    proto.timeout("r")  # missed its proposal ...
    events = proto.timeout("r")  # ... and then its first question
    assert isinstance(events[0], Absence) and "absent" in events[0].consequence
    assert isinstance(events[1], Ended) and events[1].agreement is None
    assert "r is absent" in events[1].reason


def test_an_answer_in_between_resets_the_count_of_misses() -> None:
    proto = mcp(absence_limit=2)
    proto.start()
    propose(proto, {"p": AC, "q": BD})
    proto.timeout("r")
    judge_all(proto, nobody)  # r answers its questions
    propose(proto, {"p": BC, "q": BD})
    events = proto.timeout("r")
    assert not proto.done and isinstance(events[0], Absence) and "absent" not in events[0].consequence


def test_timeout_for_someone_without_an_open_call_is_ignored() -> None:
    proto = mcp()
    assert proto.timeout("p") == []
    proto.start()
    proto.receive("p", Propose(offer=AC, justification=J))
    assert proto.timeout("p") == [] and proto.timeout("mallory") == []


# -- the class and its parameters --------------------------------------------------------


def test_class_declares_its_name_moves_and_source() -> None:
    assert MonotonicConcession.name == "zeuthen"
    assert MonotonicConcession.moves == (Propose, Accept, Reject)
    for who in ("Zeuthen", "Rosenschein", "Endriss"):
        assert who in MonotonicConcession.citation
        assert who in (sys.modules[MonotonicConcession.__module__].__doc__ or "")
    assert MonotonicConcession.Params is ZeuthenParams


def test_params_forbid_unknown_fields_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        ZeuthenParams(rounds=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        ZeuthenParams(standstill_rounds=0)
    assert ZeuthenParams().deadline_rounds == 30 and ZeuthenParams().standstill_rounds == 1


def test_needs_two_distinct_participants() -> None:
    with pytest.raises(ValueError):
        mcp(participants=["p"])
    with pytest.raises(ValueError):
        mcp(participants=["p", "p"])


# -- determinism -------------------------------------------------------------------------


def drive(proto: MonotonicConcession, bids: dict[str, list[dict[str, str]]], likes) -> list[ChairEvent]:  # noqa: ANN001
    """Run to the end: each delegate bids down its list; `likes` judges."""
    log: list[ChairEvent] = list(proto.start())
    while not proto.done:
        call = proto.pending[0]
        if call.phase == "propose":
            offer = bids[call.to][min(call.round, len(bids[call.to])) - 1]
            log.extend(proto.receive(call.to, Propose(offer=offer, justification=J)))
        else:
            ok = likes(call.to, call.standing_offer or {})
            log.extend(proto.receive(call.to, (Accept if ok else Reject)(offer=call.standing_offer or {}, justification=J)))
    return log


def test_same_seed_same_events() -> None:
    bids = {"p": [AC, AD, BD], "q": [BD, BC, AC], "r": [AD, BC, AC]}

    def likes(who: str, offer: dict[str, str]) -> bool:
        return offer in (AC, BC) and who != "p" or offer == AD

    def run_once(seed: int) -> list[ChairEvent]:
        return drive(mcp(seed=seed, deadline_rounds=6), bids, likes)

    assert run_once(4) == run_once(4)
    [ended] = [e for e in run_once(4) if isinstance(e, Ended)]
    assert ended.agreement is not None


# -- end to end, through the runtime -----------------------------------------------------

SESSIONS = [FIXTURES / "tiny.yaml", *EXAMPLES]


def _ids(path: Path) -> str:
    return path.parent.name if path.name == "session.yaml" else path.stem


def _plan(path: Path, standstill: int):  # noqa: ANN202
    spec, _ = load_session(path)
    protocol = ProtocolSpec(name="zeuthen", deadline_rounds=15, standstill_rounds=standstill)
    return build_plan(spec.model_copy(update={"protocol": protocol}))


@pytest.mark.parametrize("standstill", [1, 4])
@pytest.mark.parametrize("path", SESSIONS, ids=_ids)
def test_runs_end_to_end_verifies_respects_mandates_and_repeats(path: Path, standstill: int, tmp_path: Path) -> None:
    plan, result, rows = run(run_plan(_plan(path, standstill), tmp_path / "a.db"))
    assert plan.protocol_cls is MonotonicConcession
    ended = result.ended
    assert ended is not None and any(r.kind == "ended" for r in rows)
    report = verify_entries(result.session_id, rows)
    assert report.ok, report.problems
    moves = [r for r in rows if r.kind == "move"]
    assert {r.body["move"]["kind"] for r in moves} >= {"propose"}
    for row in moves:
        model = plan.participant(row.actor).model
        just = row.body["move"]["justification"]
        assert just["utility"] == pytest.approx(model.utility(row.body["move"]["offer"]), abs=1e-12)
    if ended.agreement:
        for p in plan.participants:
            u = p.model.utility(ended.agreement)
            assert p.constituency.mandate.violation(ended.agreement, u) is None
    _, again, rows2 = run(run_plan(_plan(path, standstill), tmp_path / "b.db"))
    assert again.ended == ended
    assert moves_of(rows) == moves_of(rows2)


def test_the_cli_runs_a_zeuthen_session(tmp_path: Path) -> None:
    raw = yaml.safe_load((FIXTURES / "tiny.yaml").read_text())
    raw["protocol"] = {"name": "zeuthen", "deadline_rounds": 8}
    session = tmp_path / "session.yaml"
    session.write_text(yaml.safe_dump(raw))
    script = Path(sys.executable).with_name("accord")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "accord.cli"]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    ledger = tmp_path / "x.db"
    out = subprocess.run(
        [*command, "run", str(session), "--quiet", "--ledger", str(ledger)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    verified = subprocess.run(
        [*command, "verify", "latest", "--ledger", str(ledger)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
