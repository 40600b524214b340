"""The voting state machine on its own, then end to end through the runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.ledger import verify_entries
from accord.session_file import ProtocolSpec, load_session
from accord.session_plan import build_plan
from protocols.agenda import Agenda, Issue, Option
from protocols.events import Absence, Call, Ended, Rejection
from protocols.moves import Critique, Justification, Propose, Rank
from protocols.voting import Voting, VotingParams, ballot_weights, default_candidates, outcome_at
from tests.conftest import EXAMPLES, FIXTURES, run
from tests.helpers import moves_of, run_plan

AGENDA = Agenda(
    issues=[
        Issue(id="x", options=[Option(id="a", description="Option A"), Option(id="b")]),
        Issue(id="y", options=[Option(id="c"), Option(id="d")]),
    ]
)
J = Justification(utility=0.0, cited=[], rationale="test")
PEOPLE = ["p", "q", "r"]


def vote(**params) -> Voting:  # noqa: ANN003
    proto = Voting(PEOPLE, AGENDA, VotingParams(**params), seed=0)
    proto.start()
    return proto


def rank(*ids: str) -> Rank:
    return Rank(ranking=list(ids), justification=J)


# -- candidates ---------------------------------------------------------------------------


def test_a_small_space_offers_every_outcome_with_ids_in_list_order() -> None:
    proto = Voting(PEOPLE, AGENDA, VotingParams(), seed=0)
    assert [c.id for c in proto.candidates] == ["c1", "c2", "c3", "c4"]
    assert [c.outcome for c in proto.candidates] == list(AGENDA.outcomes())
    assert proto.candidates[0].text == "x: Option A; y: c"


def test_a_large_space_is_sampled_by_seed() -> None:
    big = Agenda(issues=[Issue(id=f"i{k}", options=[Option(id=f"o{j}") for j in range(5)]) for k in range(6)])
    first = default_candidates(big, 40, seed=3)
    assert first == default_candidates(big, 40, seed=3)
    assert first != default_candidates(big, 40, seed=4)
    assert len(first) == 40 and len({tuple(o.items()) for o in first}) == 40
    assert all(big.problem_with(o) is None for o in first)
    everything = list(big.outcomes())
    assert [everything.index(o) for o in first] == sorted(everything.index(o) for o in first)
    proto = Voting(PEOPLE, big, VotingParams(max_candidates=40), seed=3)
    assert proto.candidates[0].id == "c01" and proto.candidates[-1].id == "c40"


def test_outcome_at_matches_the_agenda_order() -> None:
    assert [outcome_at(AGENDA, i) for i in range(AGENDA.size)] == list(AGENDA.outcomes())


def test_a_one_issue_agenda_offers_every_option_whatever_the_limit() -> None:
    polis = Agenda(
        issues=[Issue(id="s", options=[Option(id=f"st{k}", description=f"Statement {k}") for k in range(12)])]
    )
    proto = Voting(PEOPLE, polis, VotingParams(max_candidates=2), seed=0)
    assert len(proto.candidates) == 12 and proto.candidates[0].id == "c01"
    assert proto.candidates[3].text == "Statement 3"


def test_candidates_from_params_are_checked() -> None:
    proto = Voting(PEOPLE, AGENDA, VotingParams(candidates=[{"x": "b", "y": "d"}, {"x": "a", "y": "c"}]), seed=0)
    assert [c.outcome for c in proto.candidates] == [{"x": "b", "y": "d"}, {"x": "a", "y": "c"}]
    with pytest.raises(ValueError, match=r"candidates\[1\]: unknown option 'z'"):
        Voting(PEOPLE, AGENDA, VotingParams(candidates=[{"x": "a", "y": "c"}, {"x": "z", "y": "c"}]), seed=0)
    with pytest.raises(ValueError, match=r"candidates\[1\]: repeats candidate 0"):
        Voting(PEOPLE, AGENDA, VotingParams(candidates=[{"x": "a", "y": "c"}, {"x": "a", "y": "c"}]), seed=0)
    with pytest.raises(ValueError, match="not a participant: mallory"):
        Voting(PEOPLE, AGENDA, VotingParams(weights={"mallory": 2}), seed=0)


def test_params_are_validated() -> None:
    with pytest.raises(ValueError):
        VotingParams(rule="dictator")
    with pytest.raises(ValueError):
        VotingParams(weights={"p": 0})
    with pytest.raises(ValueError):
        VotingParams(candidates=[{"x": "a", "y": "c"}])
    with pytest.raises(ValueError):
        VotingParams(unknown=1)


# -- the vote -----------------------------------------------------------------------------


def test_everyone_is_called_at_once_to_rank_every_candidate() -> None:
    proto = Voting(PEOPLE, AGENDA, VotingParams(), seed=0)
    calls = proto.start()
    assert [c.to for c in calls] == PEOPLE
    assert all(isinstance(c, Call) and c.allowed == ["rank"] and len(c.candidates or []) == 4 for c in calls)
    assert proto.pending == calls


def test_the_schulze_winner_is_chosen_and_is_the_agreement() -> None:
    proto = vote()
    assert proto.receive("p", rank("c2", "c1", "c3", "c4")) == []
    assert [c.to for c in proto.pending] == ["q", "r"]
    proto.receive("q", rank("c2", "c3", "c1", "c4"))
    [ended] = proto.receive("r", rank("c1", "c2", "c4", "c3"))
    assert isinstance(ended, Ended) and ended.chosen == "c2"
    assert ended.agreement == {"x": "a", "y": "d"}
    assert "schulze winner c2" in ended.reason and "beatpath margin" in ended.reason
    assert proto.done and proto.pending == []


def test_weights_decide_between_two_camps() -> None:
    for weights, winner in (({}, "c1"), ({"r": 2.5}, "c4")):
        proto = vote(weights=weights)
        proto.receive("p", rank("c1", "c2", "c3", "c4"))
        proto.receive("q", rank("c1", "c2", "c3", "c4"))
        [ended] = proto.receive("r", rank("c4", "c3", "c2", "c1"))
        assert ended.chosen == winner
        assert f"total weight {3 if not weights else 4.5}" in ended.reason


def test_a_tie_goes_to_the_lowest_id_and_says_so() -> None:
    proto = vote()
    proto.receive("p", rank("c3", "c2", "c1", "c4"))
    proto.receive("q", rank("c2", "c1", "c3", "c4"))
    [ended] = proto.receive("r", rank("c1", "c3", "c2", "c4"))
    assert ended.chosen == "c1" and "tie went to the first listed" in ended.reason


def test_another_rule_can_be_chosen() -> None:
    pytest.importorskip("pref_voting")
    proto = vote(rule="plurality")
    proto.receive("p", rank("c3", "c1", "c2", "c4"))
    proto.receive("q", rank("c3", "c1", "c2", "c4"))
    [ended] = proto.receive("r", rank("c1", "c2", "c3", "c4"))
    assert ended.chosen == "c3" and "plurality winner c3" in ended.reason


@pytest.mark.parametrize(
    ("sender", "move", "reason"),
    [
        ("p", Propose(offer={"x": "a", "y": "c"}, justification=J), "accepts only a ranking (rank), not propose"),
        ("p", Critique(candidate="c1", text="hm", justification=J), "not critique"),
        ("p", rank("c1", "c2", "c3", "c9"), "unknown candidate(s): c9"),
        ("p", rank("c1", "c2", "c3", "c3"), "ranks c3 more than once"),
        ("p", rank("c1", "c2", "c3"), "leaves out c4"),
        ("mallory", rank("c1", "c2", "c3", "c4"), "not a participant"),
    ],
)
def test_illegal_moves_are_refused_with_a_reason_and_change_nothing(sender, move, reason) -> None:  # noqa: ANN001
    proto = vote()
    events = proto.receive(sender, move)
    assert isinstance(events[0], Rejection) and events[0].to == sender and reason in events[0].reason
    assert not proto.done and [c.to for c in proto.pending] == PEOPLE
    if sender in PEOPLE:
        # Called again, with the reason.
        assert isinstance(events[1], Call) and events[1].to == sender and reason in events[1].note


def test_a_second_ballot_is_refused_as_a_duplicate() -> None:
    proto = vote()
    proto.receive("p", rank("c1", "c2", "c3", "c4"))
    [rejection] = proto.receive("p", rank("c4", "c3", "c2", "c1"))
    assert isinstance(rejection, Rejection) and "duplicate" in rejection.reason
    proto.receive("q", rank("c4", "c3", "c2", "c1"))
    [ended] = proto.receive("r", rank("c1", "c4", "c2", "c3"))
    assert ended.chosen == "c1"  # p's first ballot stood


def test_moves_after_the_end_are_refused() -> None:
    proto = vote()
    for who in PEOPLE:
        proto.receive(who, rank("c1", "c2", "c3", "c4"))
    [rejection] = proto.receive("p", rank("c1", "c2", "c3", "c4"))
    assert "has ended" in rejection.reason
    assert proto.timeout("q") == []


def test_repeated_bad_ballots_make_a_delegate_absent() -> None:
    proto = vote(strikes=2)
    proto.receive("p", rank("c1"))
    events = proto.receive("p", rank("c1"))
    assert [type(e) for e in events] == [Rejection, Absence]
    assert [c.to for c in proto.pending] == ["q", "r"]


def test_a_late_delegate_is_absent_and_the_vote_proceeds() -> None:
    proto = vote()
    proto.receive("p", rank("c4", "c3", "c2", "c1"))
    [absence] = proto.timeout("q")
    assert isinstance(absence, Absence) and absence.delegate == "q" and "proceeds" in absence.consequence
    assert proto.timeout("q") == [] and proto.timeout("p") == []
    [rejection] = proto.receive("q", rank("c1", "c2", "c3", "c4"))
    assert "lapsed" in rejection.reason
    [ended] = proto.receive("r", rank("c4", "c1", "c2", "c3"))
    assert ended.chosen == "c4" and "2 ballot(s)" in ended.reason and "absent: q" in ended.reason


def test_no_ballot_at_all_is_no_agreement() -> None:
    proto = vote()
    events = [e for who in PEOPLE for e in proto.timeout(who)]
    assert isinstance(events[-1], Ended) and events[-1].agreement is None
    assert "no ballot" in events[-1].reason


def test_same_seed_same_events() -> None:
    def script(seed: int) -> list:
        big = Agenda(issues=[Issue(id=f"i{k}", options=[Option(id=f"o{j}") for j in range(4)]) for k in range(4)])
        proto = Voting(PEOPLE, big, VotingParams(max_candidates=8), seed=seed)
        out = proto.start()
        ids = [c.id for c in proto.candidates]
        for k, who in enumerate(PEOPLE):
            out += proto.receive(who, rank(*ids[k:], *ids[:k]))
        return [e.model_dump() for e in out]

    assert script(5) == script(5)


def test_ballot_weights_count_constituents() -> None:
    spec, _ = load_session(FIXTURES / "tiny.yaml")
    assert ballot_weights(spec.constituencies) == {"neighbours": 3.0, "shops": 2.0, "parents": 2.0}


# -- end to end ---------------------------------------------------------------------------

SESSIONS = [FIXTURES / "tiny.yaml", *EXAMPLES]


def _plan(path: Path, **params):  # noqa: ANN003, ANN202
    spec, _ = load_session(path)
    return build_plan(spec.model_copy(update={"protocol": ProtocolSpec(name="voting", **params)}))


@pytest.mark.parametrize("path", SESSIONS, ids=lambda p: p.parent.name if p.name == "session.yaml" else p.stem)
def test_voting_end_to_end_ends_verifies_and_repeats(path: Path, tmp_path: Path) -> None:
    spec, _ = load_session(path)
    weights = ballot_weights(spec.constituencies)
    _, first, rows1 = run(run_plan(_plan(path, weights=weights), tmp_path / "a.db"))
    _, second, rows2 = run(run_plan(_plan(path, weights=weights), tmp_path / "b.db"))
    assert first.ended.chosen is not None and first.ended.agreement is not None
    report = verify_entries(first.session_id, rows1)
    assert report.ok, report.problems
    assert [r.kind for r in rows1].count("move") == len(spec.constituencies)
    assert first.ended == second.ended
    assert moves_of(rows1) == moves_of(rows2)
