"""The single-negotiation-text state machine on its own, then end to end through the runtime."""

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
from protocols.single_text import SingleNegotiationText, SingleTextParams
from tests.conftest import EXAMPLES, FIXTURES, ROOT, run
from tests.helpers import moves_of, run_plan

AGENDA = Agenda(
    issues=[
        Issue(id="x", options=[Option(id="a"), Option(id="b")]),
        Issue(id="y", options=[Option(id="c"), Option(id="d")]),
    ]
)
WIDE = Agenda(
    issues=[
        Issue(id=name, options=[Option(id=f"{name}{k}") for k in range(3)]) for name in ("x", "y", "z")
    ]
)
J = Justification(utility=0.0, cited=[], rationale="test")
START = {"x": "a", "y": "c"}
PEOPLE = ["p", "q", "r"]


def st(
    participants: list[str] = PEOPLE, agenda: Agenda = AGENDA, seed: int = 0, **kw: object
) -> SingleNegotiationText:
    kw.setdefault("start", START)
    kw.setdefault("deadline_rounds", 3)
    return SingleNegotiationText(participants, agenda, SingleTextParams(**kw), seed=seed)


def call_to(proto: SingleNegotiationText, who: str) -> Call:
    [call] = [c for c in proto.pending if c.to == who]
    return call


def vote(proto: SingleNegotiationText, who: str, accept: bool = True) -> list[ChairEvent]:
    text = call_to(proto, who).standing_offer
    assert text is not None
    cls = Accept if accept else Reject
    return proto.receive(who, cls(offer=text, justification=J))


def round_of(proto: SingleNegotiationText, ayes: set[str]) -> list[ChairEvent]:
    """Every open call answered: accept by `ayes`, reject by the rest."""
    events: list[ChairEvent] = []
    for call in list(proto.pending):
        events = vote(proto, call.to, call.to in ayes)
    return events


# -- the opening -------------------------------------------------------------------------


def test_opening_calls_every_delegate_at_once_with_an_amendment_of_the_text() -> None:
    proto = st()
    calls = proto.start()
    assert [c.to for c in calls] == PEOPLE and all(isinstance(c, Call) for c in calls)
    for call in calls:
        assert call.allowed == ["accept", "reject"] and call.phase == "amendment"
        assert call.round == 1 and call.deadline_round == 3
        assert call.compare_to == START
        assert call.standing_offer is not None
        changed = [i for i in START if call.standing_offer[i] != START[i]]
        assert len(changed) == 1
    assert len({str(c.standing_offer) for c in calls}) == 1
    assert proto.pending == calls


def test_without_a_start_the_opening_text_is_a_seeded_random_outcome() -> None:
    texts = set()
    for seed in range(12):
        proto = SingleNegotiationText(PEOPLE, WIDE, SingleTextParams(), seed=seed)
        assert WIDE.problem_with(proto.text) is None
        again = SingleNegotiationText(PEOPLE, WIDE, SingleTextParams(), seed=seed)
        assert again.text == proto.text
        texts.add(WIDE.describe(proto.text))
    assert len(texts) > 1


def test_more_mutations_change_more_issues() -> None:
    proto = st(agenda=WIDE, start={"x": "x0", "y": "y0", "z": "z0"}, mutations=2)
    [call, *_] = proto.start()
    assert call.standing_offer is not None and call.compare_to is not None
    assert sum(call.standing_offer[i] != call.compare_to[i] for i in "xyz") == 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mutations": 3}, "mutations"),
        ({"start": {"x": "z", "y": "c"}}, "unknown option"),
        ({"start": {"x": "a"}}, "no option chosen"),
        ({"weights": {"mallory": 2.0}}, "not a participant"),
    ],
)
def test_parameters_that_do_not_fit_the_session_are_refused(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        st(**params)


def test_params_forbid_unknown_fields_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        SingleTextParams(rounds=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        SingleTextParams(variant="plurality")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SingleTextParams(majority=1.0)
    with pytest.raises(ValidationError):
        SingleTextParams(weights={"p": 0.0})
    assert SingleTextParams().variant == "veto" and SingleTextParams().deadline_rounds == 30


def test_needs_two_distinct_participants() -> None:
    with pytest.raises(ValueError):
        st(participants=["p"])
    with pytest.raises(ValueError):
        st(participants=["p", "p"])


def test_class_declares_its_name_moves_and_source() -> None:
    assert SingleNegotiationText.name == "single-text"
    assert SingleNegotiationText.moves == (Accept, Reject)
    assert "Raiffa" in SingleNegotiationText.citation and "Klein" in SingleNegotiationText.citation
    assert SingleNegotiationText.Params is SingleTextParams
    assert "Raiffa" in (sys.modules[SingleNegotiationText.__module__].__doc__ or "")


# -- adoption under each variant ---------------------------------------------------------


def test_veto_adopts_an_amendment_only_when_everyone_accepts() -> None:
    proto = st()
    proto.start()
    amended = dict(proto.amended or {})
    vote(proto, "p")
    vote(proto, "q")
    assert proto.text == START  # not resolved until every vote is in
    calls = vote(proto, "r")
    assert proto.text == amended and proto.adopted_rounds == [1]
    assert [c.to for c in calls] == PEOPLE and all(c.round == 2 and c.compare_to == amended for c in calls)

    before = dict(proto.text)
    round_of(proto, {"p", "q"})
    assert proto.text == before and proto.adopted_rounds == [1]


@pytest.mark.parametrize(
    ("ayes", "params", "adopted"),
    [
        ({"p", "q"}, {}, True),
        ({"p"}, {}, False),
        ({"p"}, {"weights": {"p": 3.0}}, True),  # 3 of 5 > 0.5
        ({"q", "r"}, {"weights": {"p": 3.0}}, False),  # 2 of 5
        ({"p", "q"}, {"majority": 0.7}, False),  # 2/3 is not more than 0.7
    ],
)
def test_hill_climbing_adopts_on_a_strict_weighted_majority(ayes: set[str], params: dict, adopted: bool) -> None:
    proto = st(variant="hill-climbing", **params)
    proto.start()
    amended = dict(proto.amended or {})
    round_of(proto, ayes)
    assert (proto.text == amended) is adopted


def test_hill_climbing_majority_is_strict() -> None:
    proto = st(participants=["p", "q", "r", "s"], variant="hill-climbing")
    proto.start()
    round_of(proto, {"p", "q"})
    assert proto.text == START
    round_of(proto, {"p", "q", "r"})
    assert proto.text != START


def test_weights_do_not_matter_under_veto() -> None:
    proto = st(weights={"p": 10.0})
    proto.start()
    round_of(proto, {"p"})
    assert proto.text == START


# -- amendments drafted ------------------------------------------------------------------


def test_no_amendment_is_put_twice_while_others_remain() -> None:
    # 3 issues of 3 options: 6 single-issue amendments of a text.
    proto = st(agenda=WIDE, start={"x": "x0", "y": "y0", "z": "z0"}, deadline_rounds=12)
    proto.start()
    put = []
    for _ in range(6):
        put.append(WIDE.describe(proto.amended or {}))
        round_of(proto, set())  # everyone rejects: the text stays
    assert len(set(put)) == 6
    # Every amendment of this text has been voted on: one may be put again.
    assert WIDE.describe(proto.amended or {}) in put


def test_a_rejected_amendment_is_not_put_again_while_another_remains() -> None:
    for seed in range(8):
        proto = st(seed=seed)
        proto.start()
        first = dict(proto.amended or {})
        round_of(proto, set())
        assert proto.amended != first  # the text has two amendments; the other comes next
        round_of(proto, set(PEOPLE))
        assert proto.text != START


# -- ratification and the deadline -------------------------------------------------------


def test_after_the_deadline_every_delegate_is_asked_to_ratify_the_final_text() -> None:
    proto = st(deadline_rounds=2)
    proto.start()
    round_of(proto, set(PEOPLE))
    text = dict(proto.text)
    calls = round_of(proto, set())
    assert proto.text == text
    assert [c.to for c in calls] == PEOPLE
    for call in calls:
        assert isinstance(call, Call) and call.phase == "ratification" and call.round == 2
        assert call.standing_offer == text and call.compare_to is None
    vote(proto, "p")
    vote(proto, "q")
    [ended] = vote(proto, "r")
    assert isinstance(ended, Ended) and ended.agreement == text and ended.round == 2
    assert ended.accepted_by == PEOPLE and "ratified by every delegate" in ended.reason
    assert proto.done and proto.pending == []


def test_a_single_rejection_at_ratification_means_no_agreement() -> None:
    proto = st(deadline_rounds=1)
    proto.start()
    round_of(proto, set(PEOPLE))
    events = round_of(proto, {"p", "r"})
    [ended] = events
    assert isinstance(ended, Ended) and ended.agreement is None
    assert "not ratified" in ended.reason and "q" in ended.reason and ended.round == 1


def test_exactly_deadline_rounds_amendments_are_put() -> None:
    proto = st(deadline_rounds=4)
    proto.start()
    rounds = []
    while proto.pending and proto.pending[0].phase == "amendment":
        rounds.append(proto.pending[0].round)
        round_of(proto, set())
    assert rounds == [1, 2, 3, 4]
    assert proto.pending[0].phase == "ratification"


# -- illegal moves -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "move", "reason"),
    [
        ("p", Propose(offer=START, justification=J), "a propose is not allowed"),
        ("p", Rank(ranking=["a"], justification=J), "a rank is not allowed"),
        ("p", Accept(offer={"x": "z", "y": "c"}, justification=J), "unknown option 'z'"),
        ("p", Accept(offer={"x": "a"}, justification=J), "no option chosen"),
        ("p", Accept(offer={"x": "a", "y": "c", "w": "e"}, justification=J), "unknown issue"),
        ("p", Accept(offer=START, justification=J), "votes on a stale text"),
        ("p", Reject(offer=START, justification=J), "votes on a stale text"),
    ],
)
def test_illegal_votes_are_rejected_and_the_delegate_is_called_again(sender, move, reason) -> None:  # noqa: ANN001
    proto = st()
    proto.start()
    amended = dict(proto.amended or {})
    events = proto.receive(sender, move)
    assert [type(e) for e in events] == [Rejection, Call]
    assert events[0].to == sender and reason in events[0].reason
    assert events[1].to == sender and reason in events[1].note
    # Nothing changed: same text, same amendment, every call still open.
    assert proto.text == START and proto.amended == amended
    assert sorted(c.to for c in proto.pending) == PEOPLE
    round_of(proto, set(PEOPLE))
    assert proto.text == amended


def test_non_participants_are_refused_without_a_call() -> None:
    proto = st()
    proto.start()
    [rejection] = proto.receive("mallory", Accept(offer=proto.amended or {}, justification=J))
    assert isinstance(rejection, Rejection) and "not a participant" in rejection.reason
    assert len(proto.pending) == 3


def test_a_duplicate_vote_is_refused_and_the_first_one_stands() -> None:
    proto = st()
    proto.start()
    amended = dict(proto.amended or {})
    vote(proto, "p", accept=True)
    [rejection] = proto.receive("p", Reject(offer=amended, justification=J))
    assert isinstance(rejection, Rejection) and "duplicate vote" in rejection.reason
    vote(proto, "q")
    vote(proto, "r")
    assert proto.text == amended


def test_a_vote_on_the_amendment_during_ratification_is_stale() -> None:
    proto = st(deadline_rounds=1)
    proto.start()
    amended = dict(proto.amended or {})
    round_of(proto, set())  # rejected: the text stays START, ratification opens
    events = proto.receive("p", Accept(offer=amended, justification=J))
    assert isinstance(events[0], Rejection) and "stale" in events[0].reason
    assert isinstance(events[1], Call) and events[1].phase == "ratification"


def test_moves_before_the_start_and_after_the_end_are_refused() -> None:
    proto = st(deadline_rounds=1)
    [rejection] = proto.receive("p", Accept(offer=START, justification=J))
    assert "not started" in rejection.reason
    proto.start()
    round_of(proto, set())
    round_of(proto, set(PEOPLE))
    assert proto.done
    [rejection] = proto.receive("p", Accept(offer=START, justification=J))
    assert "ended" in rejection.reason
    assert proto.start() == [] and proto.timeout("p") == []


def test_repeated_illegal_moves_count_as_a_missed_vote() -> None:
    proto = st(strikes=2)
    proto.start()
    stale = Accept(offer=START, justification=J)
    proto.receive("p", stale)
    events = proto.receive("p", stale)
    assert [type(e) for e in events] == [Rejection, Absence]
    assert "counted as a rejection" in events[1].consequence and "2 illegal moves" in events[1].consequence
    assert [c.to for c in proto.pending] == ["q", "r"]
    round_of(proto, {"q", "r"})
    assert proto.text == START  # veto: the missed vote is a rejection


# -- timeouts and absence ----------------------------------------------------------------


def test_a_missed_vote_is_a_rejection_under_veto() -> None:
    proto = st()
    proto.start()
    vote(proto, "p")
    vote(proto, "r")
    events = proto.timeout("q")
    assert isinstance(events[0], Absence) and events[0].delegate == "q" and events[0].round == 1
    assert "counted as a rejection" in events[0].consequence
    assert all(isinstance(e, Call) and e.round == 2 for e in events[1:])
    assert proto.text == START
    late = proto.receive("q", Accept(offer=events[1].compare_to or {}, justification=J))
    assert isinstance(late[0], Rejection)


def test_a_late_vote_after_a_timeout_is_refused_as_too_late() -> None:
    proto = st()
    proto.start()
    amended = dict(proto.amended or {})
    proto.timeout("q")
    [rejection] = proto.receive("q", Accept(offer=amended, justification=J))
    assert "too late" in rejection.reason


def test_timeout_for_someone_without_an_open_call_is_ignored() -> None:
    proto = st()
    assert proto.timeout("p") == []
    proto.start()
    vote(proto, "p")
    assert proto.timeout("p") == []
    assert proto.timeout("mallory") == []


def test_absence_ends_a_veto_session_without_agreement() -> None:
    proto = st(absence_limit=2, deadline_rounds=5)
    proto.start()
    proto.timeout("q")
    round_of(proto, set(PEOPLE))
    vote(proto, "p")  # round 2: q misses again
    events = proto.timeout("q")
    assert isinstance(events[0], Absence) and "absent" in events[0].consequence
    [ended] = events[1:]
    assert isinstance(ended, Ended) and ended.agreement is None and "q is absent" in ended.reason


def test_a_vote_in_between_resets_the_count_of_missed_votes() -> None:
    proto = st(absence_limit=2, deadline_rounds=5)
    proto.start()
    proto.timeout("q")
    round_of(proto, set(PEOPLE))  # round 1 resolves; round 2 opens
    round_of(proto, set(PEOPLE))  # q votes in round 2
    events = proto.timeout("q")  # a single miss again
    assert isinstance(events[0], Absence) and "counted as a rejection" in events[0].consequence
    assert not proto.done


def test_hill_climbing_goes_on_without_an_absent_delegate() -> None:
    proto = st(variant="hill-climbing", absence_limit=1, deadline_rounds=2)
    proto.start()
    amended = dict(proto.amended or {})
    vote(proto, "p")
    events = proto.timeout("q")
    assert isinstance(events[0], Absence) and "goes on without it" in events[0].consequence
    assert proto.absent == ["q"]
    calls = vote(proto, "r", accept=False)
    # Of the present p and r, only p accepted: 1 of 2 is not a strict majority.
    assert proto.text == START
    assert [(c.to, c.round) for c in calls] == [("p", 2), ("r", 2)]
    [rejection] = proto.receive("q", Accept(offer=amended, justification=J))
    assert "absent" in rejection.reason
    round_of(proto, {"p", "r"})
    calls = proto.pending
    assert [c.to for c in calls] == ["p", "r"] and calls[0].phase == "ratification"
    [ended] = round_of(proto, {"p", "r"})
    assert isinstance(ended, Ended) and ended.agreement == proto.text
    assert ended.accepted_by == ["p", "r"]
    assert "every present delegate" in ended.reason and "absent: q" in ended.reason


def test_hill_climbing_ends_when_fewer_than_two_delegates_remain() -> None:
    proto = st(participants=["p", "q"], variant="hill-climbing", absence_limit=1)
    proto.start()
    events = proto.timeout("q")
    assert isinstance(events[-1], Ended) and events[-1].agreement is None
    assert "fewer than two" in events[-1].reason


def test_a_missed_ratification_vote_is_a_rejection() -> None:
    proto = st(variant="hill-climbing", deadline_rounds=1)
    proto.start()
    round_of(proto, set(PEOPLE))
    vote(proto, "p")
    vote(proto, "q")
    events = proto.timeout("r")
    assert isinstance(events[0], Absence)
    assert isinstance(events[1], Ended) and events[1].agreement is None
    assert "r (missed)" in events[1].reason


# -- determinism -------------------------------------------------------------------------


Policy = Callable[[Call], bool]


def drive(proto: SingleNegotiationText, likes: Policy) -> list[ChairEvent]:
    """Run to the end, each delegate accepting what `likes`; every event in order."""
    log: list[ChairEvent] = list(proto.start())
    while not proto.done:
        for call in list(proto.pending):
            cls = Accept if likes(call) else Reject
            log.extend(proto.receive(call.to, cls(offer=call.standing_offer or {}, justification=J)))
    return log


def _likes(call: Call) -> bool:
    text = call.standing_offer or {}
    return call.phase == "ratification" or (text.get("x") == "x2") != (call.to == "q")


def test_same_seed_same_events_and_different_seeds_differ() -> None:
    def run(seed: int) -> list[ChairEvent]:
        proto = SingleNegotiationText(PEOPLE, WIDE, SingleTextParams(deadline_rounds=8, variant="hill-climbing"), seed=seed)
        return drive(proto, _likes)

    assert run(3) == run(3)
    assert any(run(3) != run(s) for s in range(4, 10))
    [ended] = [e for e in run(3) if isinstance(e, Ended)]
    assert ended.agreement is not None


# -- end to end, through the runtime -----------------------------------------------------

SESSIONS = [FIXTURES / "tiny.yaml", *EXAMPLES]


def _ids(path: Path) -> str:
    return path.parent.name if path.name == "session.yaml" else path.stem


def _plan(path: Path, variant: str):  # noqa: ANN202
    spec, _ = load_session(path)
    spec = spec.model_copy(
        update={"protocol": ProtocolSpec(name="single-text", deadline_rounds=12, variant=variant)}
    )
    return build_plan(spec)


@pytest.mark.parametrize("variant", ["veto", "hill-climbing"])
@pytest.mark.parametrize("path", SESSIONS, ids=_ids)
def test_runs_end_to_end_verifies_respects_mandates_and_repeats(path: Path, variant: str, tmp_path: Path) -> None:
    plan, result, rows = run(run_plan(_plan(path, variant), tmp_path / "a.db"))
    assert plan.protocol_cls is SingleNegotiationText
    ended = result.ended
    assert ended is not None and any(r.kind == "ended" for r in rows)
    report = verify_entries(result.session_id, rows)
    assert report.ok, report.problems
    votes = [r for r in rows if r.kind == "move"]
    assert votes and {r.body["move"]["kind"] for r in votes} <= {"accept", "reject"}
    for row in votes:
        model = plan.participant(row.actor).model
        just = row.body["move"]["justification"]
        assert just["utility"] == pytest.approx(model.utility(row.body["move"]["offer"]), abs=1e-12)
    if ended.agreement:
        assert ended.accepted_by == [p.id for p in plan.participants]
        for p in plan.participants:
            u = p.model.utility(ended.agreement)
            assert p.constituency.mandate.violation(ended.agreement, u) is None
    _, again, rows2 = run(run_plan(_plan(path, variant), tmp_path / "b.db"))
    assert again.ended == ended
    assert moves_of(rows) == moves_of(rows2)


def test_the_cli_runs_a_single_text_session(tmp_path: Path) -> None:
    raw = yaml.safe_load((FIXTURES / "tiny.yaml").read_text())
    raw["protocol"] = {"name": "single-text", "deadline_rounds": 6, "variant": "hill-climbing"}
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
    assert "Outcome" in out.stdout or "agreement" in out.stdout.lower()
    verified = subprocess.run(
        [*command, "verify", "latest", "--ledger", str(ledger)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
