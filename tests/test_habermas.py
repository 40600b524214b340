"""The Habermas state machine and the offline drafter on their own, then end to end."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path

import pytest

from accord.ledger import verify_entries
from accord.session_file import ProtocolSpec, load_session
from accord.session_plan import build_plan
from protocols.agenda import Agenda, Issue, Option
from protocols.drafting import Drafter, OfflineDrafter, drafters, statement
from protocols.events import Absence, Call, Candidate, Ended, Rejection
from protocols.habermas import HabermasConsensus, HabermasParams
from protocols.moves import Critique, Justification, Propose, Rank, Votes
from tests.conftest import EXAMPLES, FIXTURES, run
from tests.helpers import moves_of, run_plan

AGENDA = Agenda(
    issues=[
        Issue(id="x", description="Issue X", options=[Option(id="a"), Option(id="b"), Option(id="e")]),
        Issue(id="y", options=[Option(id="c", description="see"), Option(id="d")]),
    ]
)
J = Justification(utility=0.0, cited=[], rationale="test")
PEOPLE = ["p", "q", "r"]
POSITIONS = {"p": {"x": "a", "y": "c"}, "q": {"x": "a", "y": "d"}, "r": {"x": "b", "y": "d"}}


def propose(offer: dict[str, str]) -> Propose:
    return Propose(offer=offer, justification=J)


def rank(*ids: str) -> Rank:
    return Rank(ranking=list(ids), justification=J)


def critique(cid: str, suggestion: dict[str, str] | None = None) -> Critique:
    return Critique(candidate=cid, text="change it", suggestion=suggestion, justification=J)


def habermas(drafter: Drafter | None = None, **params) -> HabermasConsensus:  # noqa: ANN003
    proto = HabermasConsensus(PEOPLE, AGENDA, HabermasParams(**params), seed=1, drafter=drafter)
    proto.start()
    return proto


def to_ranking(proto: HabermasConsensus) -> list[Call]:
    events = []
    for who in PEOPLE:
        events = proto.receive(who, propose(POSITIONS[who]))
    return events


# -- the offline drafter ------------------------------------------------------------------


def positions(offers: Mapping[str, dict[str, str]]) -> dict[str, Propose]:
    return {who: propose(o) for who, o in offers.items()}


def test_offline_draft_starts_from_the_most_proposed_options() -> None:
    drafted = OfflineDrafter().draft(AGENDA, positions(POSITIONS), 4, random.Random(0))
    outcomes = [c.outcome for c in drafted]
    # Most proposed: x=a (2 of 3), y=d (2 of 3); then that with a runner-up switched in.
    assert outcomes[0] == {"x": "a", "y": "d"}
    assert outcomes[1:3] == [{"x": "b", "y": "d"}, {"x": "a", "y": "c"}]
    assert len(outcomes) == 4 and len({tuple(o.items()) for o in outcomes}) == 4
    assert drafted[0].text.startswith("We agree on the following. Issue X: a; y: d.")
    assert "y: see." in drafted[2].text


def test_offline_draft_fills_up_to_n_deterministically() -> None:
    same = positions({"p": {"x": "a", "y": "c"}, "q": {"x": "a", "y": "c"}})
    first = OfflineDrafter().draft(AGENDA, same, 5, random.Random(3))
    assert first == OfflineDrafter().draft(AGENDA, same, 5, random.Random(3))
    assert len(first) == 5 and all(AGENDA.problem_with(c.outcome) is None for c in first)
    assert len(OfflineDrafter().draft(AGENDA, same, 50, random.Random(3))) == AGENDA.size


def test_offline_revision_keeps_the_winner_and_applies_requested_changes() -> None:
    winner = Candidate(id="s1", outcome={"x": "a", "y": "c"}, text="w")
    critiques = {
        "p": critique("s1", {"x": "b", "y": "c"}),
        "q": critique("s1", {"x": "b", "y": "c"}),
        "r": critique("s1", {"x": "a", "y": "d"}),
    }
    revised = OfflineDrafter().revise(AGENDA, winner, critiques, 4, random.Random(0))
    assert revised[0] == winner
    assert [c.outcome for c in revised[1:]] == [
        {"x": "b", "y": "c"},  # asked twice
        {"x": "a", "y": "d"},  # asked once
        {"x": "b", "y": "d"},  # both changes together
    ]
    assert "x to b, as 2 of 3 critiques asked" in revised[1].text
    assert OfflineDrafter().revise(AGENDA, winner, {"p": critique("s1")}, 4, random.Random(0)) == [winner]


def test_statement_text_for_a_one_issue_agenda_is_the_option() -> None:
    polis = Agenda(issues=[Issue(id="s", options=[Option(id="o1", description="Parks matter"), Option(id="o2")])])
    assert statement(polis, {"s": "o1"}) == "We agree that: Parks matter."
    assert "offline" in drafters()


# -- the protocol -------------------------------------------------------------------------


def test_full_run_positions_ranking_critique_revision_final_ranking() -> None:
    proto = HabermasConsensus(PEOPLE, AGENDA, HabermasParams(), seed=1)
    calls = proto.start()
    assert [c.to for c in calls] == PEOPLE
    assert all(c.allowed == ["propose"] and c.phase == "positions" and c.round == 1 for c in calls)
    assert calls[0].deadline_round == 4

    ranking = to_ranking(proto)
    assert [c.to for c in ranking] == PEOPLE and ranking[0].allowed == ["rank"] and ranking[0].round == 2
    slate = [c.id for c in ranking[0].candidates or []]
    assert slate == ["s1", "s2", "s3", "s4"]

    proto.receive("p", rank("s2", "s1", "s3", "s4"))
    proto.receive("q", rank("s2", "s3", "s1", "s4"))
    critique_calls = proto.receive("r", rank("s1", "s2", "s4", "s3"))
    assert critique_calls[0].allowed == ["critique"] and critique_calls[0].round == 3
    [winner] = critique_calls[0].candidates or []
    assert winner.id == "s2" and proto.winner == winner

    proto.receive("p", critique("s2", {**winner.outcome, "x": "e"}))
    proto.receive("q", critique("s2"))
    final_calls = proto.receive("r", critique("s2", {**winner.outcome, "x": "e"}))
    final = [c.id for c in final_calls[0].candidates or []]
    assert final[0] == "s2" and final[1] == "s5" and len(final) <= 4
    assert (final_calls[0].candidates or [])[1].outcome["x"] == "e"

    proto.receive("p", rank(*final[1:], "s2"))
    proto.receive("q", rank("s2", *final[1:]))
    [ended] = proto.receive("r", rank(*final[1:], "s2"))
    assert isinstance(ended, Ended) and ended.chosen == "s5"
    assert ended.agreement == (final_calls[0].candidates or [])[1].outcome
    assert "final ranking: schulze winner s5" in ended.reason and "1 revision round" in ended.reason
    assert ended.round == 4 and proto.pending == []


def test_zero_rounds_ends_with_the_first_ranking() -> None:
    proto = habermas(rounds=0)
    to_ranking(proto)
    for who in PEOPLE:
        events = proto.receive(who, rank("s3", "s1", "s2", "s4"))
    [ended] = events
    assert ended.chosen == "s3" and ended.round == 2


def test_no_suggested_change_means_the_winner_stands() -> None:
    proto = habermas()
    to_ranking(proto)
    for who in PEOPLE:
        proto.receive(who, rank("s1", "s2", "s3", "s4"))
    for who in PEOPLE:
        events = proto.receive(who, critique("s1"))
    [ended] = events
    assert ended.chosen == "s1" and "stands" in ended.reason


def test_weights_count_in_the_rankings() -> None:
    for weights, winner in (({}, "s1"), ({"r": 3}, "s4")):
        proto = habermas(rounds=0, weights=weights)
        to_ranking(proto)
        proto.receive("p", rank("s1", "s2", "s3", "s4"))
        proto.receive("q", rank("s1", "s2", "s3", "s4"))
        [ended] = proto.receive("r", rank("s4", "s3", "s2", "s1"))
        assert ended.chosen == winner


class Sloppy(Drafter):
    """Drafts one bad outcome, a repeat, and good ones; revises into the incumbent again."""

    name = "sloppy"

    def draft(self, agenda, positions, n, rng):  # noqa: ANN001, ANN201
        return [
            Candidate(id="x1", outcome={"x": "zz", "y": "c"}),
            Candidate(id="x2", outcome={"x": "a", "y": "c"}, text="one"),
            Candidate(id="x3", outcome={"x": "a", "y": "c"}, text="one"),
            Candidate(id="x4", outcome={"x": "b", "y": "c"}, text="two"),
        ]

    def revise(self, agenda, winner, critiques, n, rng):  # noqa: ANN001, ANN201
        return [winner, Candidate(id=winner.id, outcome={"x": "e", "y": "d"}, text="new")]


def test_the_protocol_checks_what_a_drafter_returns() -> None:
    proto = habermas(drafter=Sloppy())
    [call, *_] = to_ranking(proto)
    assert [(c.id, c.text) for c in call.candidates or []] == [("s1", "one"), ("s2", "two")]
    assert "left out: unknown option 'zz'" in call.note
    for who in PEOPLE:
        proto.receive(who, rank("s2", "s1"))
    for who in PEOPLE:
        events = proto.receive(who, critique("s2"))
    # The incumbent keeps its id and comes first; the drafter's reuse of its id is renumbered.
    assert [c.id for c in events[0].candidates or []] == ["s2", "s3"]


@pytest.mark.parametrize(
    ("phase", "move", "reason"),
    [
        ("positions", rank("s1"), "positions phase accepts only propose, not rank"),
        ("positions", propose({"x": "a"}), "no option chosen"),
        ("ranking", propose({"x": "a", "y": "c"}), "ranking phase accepts only rank"),
        ("ranking", rank("s1", "s2", "s3"), "leaves out s4"),
        ("ranking", rank("s1", "s2", "s3", "s4", "s9"), "unknown candidate(s): s9"),
        ("critique", critique("s3"), "the statement under critique is 's1'"),
        ("critique", critique("s1", {"x": "a", "y": "q"}), "suggestion: unknown option 'q'"),
        ("critique", Votes(votes=[], justification=J), "critique phase accepts only critique, not votes"),
    ],
)
def test_illegal_moves_are_refused_with_a_reason_and_change_nothing(phase, move, reason) -> None:  # noqa: ANN001
    proto = habermas()
    if phase != "positions":
        to_ranking(proto)
    if phase == "critique":
        for who in PEOPLE:
            proto.receive(who, rank("s1", "s2", "s3", "s4"))
    before = (proto.phase, proto.step, [c.to for c in proto.pending])
    events = proto.receive("p", move)
    assert isinstance(events[0], Rejection) and reason in events[0].reason
    assert isinstance(events[1], Call) and events[1].to == "p" and reason in events[1].note
    assert (proto.phase, proto.step, [c.to for c in proto.pending]) == before


def test_duplicates_strangers_stale_ballots_and_late_moves_are_refused() -> None:
    proto = habermas(rounds=0)
    proto.receive("p", propose(POSITIONS["p"]))
    [dup] = proto.receive("p", propose(POSITIONS["p"]))
    assert "duplicate" in dup.reason
    [stranger] = proto.receive("mallory", propose(POSITIONS["p"]))
    assert "not a participant" in stranger.reason
    proto.receive("q", propose(POSITIONS["q"]))
    proto.receive("r", propose(POSITIONS["r"]))
    for who in PEOPLE:
        events = proto.receive(who, rank("s1", "s2", "s3", "s4"))
    assert isinstance(events[-1], Ended)
    [late] = proto.receive("p", rank("s1", "s2", "s3", "s4"))
    assert "has ended" in late.reason


def test_absent_delegates_are_skipped_phase_by_phase() -> None:
    proto = habermas()
    proto.receive("p", propose(POSITIONS["p"]))
    [absence] = proto.timeout("q")
    assert isinstance(absence, Absence) and "no position" in absence.consequence
    events = proto.receive("r", propose(POSITIONS["r"]))
    # q is called again in the next phase.
    assert [c.to for c in events] == PEOPLE and events[0].phase == "ranking"
    assert "absent: q" in proto.history[0]


def test_no_position_at_all_is_no_agreement() -> None:
    proto = habermas()
    events = [e for who in PEOPLE for e in proto.timeout(who)]
    assert isinstance(events[-1], Ended) and events[-1].agreement is None and "no delegate" in events[-1].reason


def test_no_ballot_in_the_final_ranking_keeps_the_previous_winner() -> None:
    proto = habermas()
    to_ranking(proto)
    for who in PEOPLE:
        proto.receive(who, rank("s2", "s1", "s3", "s4"))
    proto.receive("p", critique("s2", {"x": "e", "y": "c"}))
    proto.receive("q", critique("s2"))
    proto.receive("r", critique("s2"))
    events = [e for who in PEOPLE for e in proto.timeout(who)]
    assert isinstance(events[-1], Ended) and events[-1].chosen == "s2" and "stands" in events[-1].reason


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown drafter"):
        HabermasParams(drafter="oracle")
    with pytest.raises(ValueError):
        HabermasParams(candidates=1)
    with pytest.raises(ValueError, match="not a participant"):
        HabermasConsensus(PEOPLE, AGENDA, HabermasParams(weights={"zed": 1}), seed=0)


def test_same_seed_same_events() -> None:
    def script() -> list:
        proto = HabermasConsensus(PEOPLE, AGENDA, HabermasParams(candidates=5), seed=9)
        out = proto.start()
        for who in PEOPLE:
            out += proto.receive(who, propose({"x": "a", "y": "c"}))
        ids = [c.id for c in proto.slate]
        for who in PEOPLE:
            out += proto.receive(who, rank(*ids))
        return [e.model_dump() for e in out]

    assert script() == script()


# -- end to end ---------------------------------------------------------------------------

SESSIONS = [FIXTURES / "tiny.yaml", *EXAMPLES]


def _plan(path: Path, **params):  # noqa: ANN003, ANN202
    spec, _ = load_session(path)
    return build_plan(spec.model_copy(update={"protocol": ProtocolSpec(name="habermas", **params)}))


@pytest.mark.parametrize("path", SESSIONS, ids=lambda p: p.parent.name if p.name == "session.yaml" else p.stem)
def test_habermas_end_to_end_ends_verifies_and_repeats(path: Path, tmp_path: Path) -> None:
    _, first, rows1 = run(run_plan(_plan(path, rounds=2), tmp_path / "a.db"))
    _, second, rows2 = run(run_plan(_plan(path, rounds=2), tmp_path / "b.db"))
    assert first.ended.chosen is not None and first.ended.agreement is not None
    report = verify_entries(first.session_id, rows1)
    assert report.ok, report.problems
    kinds = [r.body["move"]["kind"] for r in rows1 if r.kind == "move"]
    assert {"propose", "rank", "critique"} <= set(kinds)
    assert first.ended == second.ended
    assert moves_of(rows1) == moves_of(rows2)
