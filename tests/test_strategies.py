"""Tit-for-tat, aspiration with an opponent model, and log-rolling: admissibility,
determinism, designed behaviour on hand-made scenarios, and whole sessions."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from accord import plugins
from accord.ledger import verify_entries
from accord.session_file import DelegateSpec, load_session
from accord.session_plan import build_plan, load_plan
from constituencies import Assessment, Constituency, ValueModel
from delegates.aspiration import AspirationOptions, AspirationWithOpponentModel, FrequencyModel
from delegates.base import DelegateView, Strategy
from delegates.log_rolling import LogRolling, LogRollingOptions
from delegates.tit_for_tat import OfferHistory, TitForTat, TitForTatOptions
from protocols.agenda import Agenda, Issue, Option
from protocols.events import Call, Candidate, TableOffer
from protocols.moves import Accept, Critique, Propose, Rank, Votes
from tests.conftest import EXAMPLES, FIXTURES, run
from tests.helpers import moves_of, run_plan

STRATEGIES: list[type[Strategy]] = [TitForTat, AspirationWithOpponentModel, LogRolling]
NAMES = {
    TitForTat: "tit-for-tat",
    AspirationWithOpponentModel: "aspiration",
    LogRolling: "log-rolling",
}
POLICIES = [
    "MOMENTS when a choice is made with care",
    "PLACES where people can meet as equals",
    "SIGNS that what we built will last",
]


# -- a hand-made scenario ------------------------------------------------------------------------
#
# Two issues: `heavy` (h1, h2, h3) and `light` (l1, l2, l3). "us" holds two cards, equally
# supported: one cares a lot about the heavy issue (h1 1.0, h2 0.0, h3 -1.0), the other a
# little about the light one (l1 0.2, l2 0.1, l3 0.0). So the heavy issue carries ten times
# the stake of the light one. "them" wants the opposite options on both.


def card(card_id: str, title: str) -> dict:
    return {"id": card_id, "title": title, "description": "A test card.", "policies": POLICIES}


AGENDA = Agenda(
    issues=[
        Issue(id="heavy", options=[Option(id="h1"), Option(id="h2"), Option(id="h3")]),
        Issue(id="light", options=[Option(id="l1"), Option(id="l2"), Option(id="l3")]),
    ]
)
SCORES = {
    "us-square": {"heavy/h1": 1.0, "heavy/h2": 0.0, "heavy/h3": -1.0},
    "us-quiet": {"light/l1": 0.2, "light/l2": 0.1, "light/l3": 0.0},
    "them-a": {"heavy/h3": 1.0, "heavy/h2": 0.5, "light/l3": 1.0, "light/l2": 0.5},
}


def view(party: str = "us", reservation: float = -1.0, seed: int = 0) -> DelegateView:
    cards = {
        "us": [card("us-square", "Keeping the square open"), card("us-quiet", "Quiet evenings")],
        "them": [card("them-a", "Room to grow")],
    }[party]
    constituency = Constituency(
        id=party,
        cards=cards,
        constituents=[{"id": f"{party}-1", "holds": [c["id"] for c in cards]}],
        mandate={"reservation": reservation},
    )
    assessments = [
        Assessment(option=option, card=c, score=s, by="organizer")
        for c, by_option in SCORES.items()
        for option, s in by_option.items()
    ]
    model = ValueModel(constituency, assessments, AGENDA.issue_contexts)
    return DelegateView.build(party, AGENDA, model, constituency.mandate, seed)


def o(heavy: str, light: str) -> dict[str, str]:
    return {"heavy": heavy, "light": light}


def call(
    round_: int, deadline: int = 20, offer: dict[str, str] | None = None, by: str = "them", **kw
) -> Call:
    allowed = ["accept", "propose"] if offer is not None else ["propose"]
    return Call(
        to="us",
        round=round_,
        deadline_round=deadline,
        allowed=kw.pop("allowed", allowed),
        standing_offer=offer,
        offered_by=by if offer is not None else None,
        **kw,
    )


def test_the_hand_made_scenario_is_what_the_comment_says() -> None:
    v = view()
    assert v.utility(o("h1", "l1")) == pytest.approx(0.3)
    assert v.utility(o("h1", "l3")) == pytest.approx(0.25)
    assert v.utility(o("h2", "l1")) == pytest.approx(0.05)
    assert v.utility(o("h3", "l3")) == pytest.approx(-0.25)


# -- tit-for-tat ----------------------------------------------------------------------------------


def test_tit_for_tat_concedes_after_the_opponent_concedes_and_not_before() -> None:
    v = view(reservation=0.0)
    s = TitForTat(v, TitForTatOptions(mode="absolute"))
    best = v.space.admissible[0][0]
    # The opponent repeats its opening: we hold our best offer (default time floor, early).
    for r in (1, 2, 3):
        move = s.respond(call(r, deadline=100, offer=o("h3", "l3")))
        assert isinstance(move, Propose) and v.utility(move.offer) == pytest.approx(best)
        assert "not conceded to us yet" in move.justification.rationale
    # It concedes 0.25 in our utility (from -0.25 to 0.0): we give back 0.25.
    move = s.respond(call(4, deadline=100, offer=o("h2", "l3")))
    assert s.returned() == pytest.approx(0.25)
    assert s.aspiration(call(4, deadline=100)) == pytest.approx(best - 0.25)
    assert isinstance(move, Propose) and v.utility(move.offer) < best
    assert v.utility(move.offer) >= best - 0.25 - 1e-12
    assert "giving back 0.25" in move.justification.rationale


def test_tit_for_tat_relative_mode_mirrors_the_share_of_the_gap() -> None:
    v = view(reservation=0.0)
    s = TitForTat(v, TitForTatOptions(time_floor=False))  # relative by default
    s.respond(call(1, offer=o("h3", "l3")))  # worth -0.25 to us
    s.respond(call(2, offer=o("h2", "l3")))  # worth 0.0: closed 0.25 of the 0.55 gap to our 0.3
    assert s.shares() == {"them": pytest.approx(0.25 / 0.55)}
    assert s.returned() == pytest.approx(0.25 / 0.55 * (0.3 - 0.0))


def test_tit_for_tat_never_goes_below_the_floor() -> None:
    v = view(reservation=0.0)
    s = TitForTat(v, TitForTatOptions(mode="absolute", factor=2.0, time_floor=False))
    s.respond(call(1, offer=o("h3", "l3")))
    s.respond(call(2, offer=o("h2", "l1")))  # a concession of 0.3: doubled, 0.6
    assert s.aspiration(call(3)) == s.floor == 0.0
    move = s.respond(call(3, offer=o("h3", "l1")))  # below our reservation: never accepted
    assert isinstance(move, Propose) and v.admissible(move.offer)


def test_offer_history_counts_each_offer_once() -> None:
    h = OfferHistory("us")
    assert h.observe(call(1, offer=o("h3", "l3"))) == [("them", o("h3", "l3"))]
    assert h.observe(call(2, offer=o("h3", "l3"))) == []  # the same standing offer again
    assert h.observe(call(3, offer=o("h1", "l1"), by="us")) == []  # our own
    table = [TableOffer(by="x", offer=o("h2", "l2")), TableOffer(by="us", offer=o("h1", "l1"))]
    assert h.observe(call(4, allowed=["votes"], table=table)) == [("x", o("h2", "l2"))]
    assert h.latest() == {"them": o("h3", "l3"), "x": o("h2", "l2")}


# -- aspiration with a frequency opponent model ------------------------------------------------


def test_frequency_model_learns_issue_weights_and_option_values() -> None:
    m = FrequencyModel(AGENDA, learning_rate=0.2)
    for light in ("l1", "l2", "l3"):
        m.update(o("h3", light))
    assert m.weights["heavy"] > m.weights["light"]
    assert sum(m.weights.values()) == pytest.approx(1.0)
    assert m.value("heavy", "h3") == 1.0 and m.value("heavy", "h1") == 0.0
    assert m.value("light", "l2") == 1.0  # each light option asked once
    assert m.utility(o("h3", "l1")) > m.utility(o("h1", "l1"))


def test_aspiration_offers_what_the_opponent_model_values_most_near_the_aspiration() -> None:
    v = view()
    s = AspirationWithOpponentModel(v)
    s.respond(call(7, offer=o("h3", "l2")))
    move = s.respond(call(8, offer=o("h2", "l2")))  # keeps l2: light matters to them, l2 best
    asp = s.aspiration(call(8))  # 0.3 - 0.55 * 0.4 ** 2 = 0.212
    assert 0.05 < asp < 0.25
    # A time-dependent bid would take the lowest outcome above the aspiration (h1, l3: 0.25);
    # in the band above it, the model of "them" rates (h1, l2) highest.
    assert v.space.closest_above(asp)[0][1] == o("h1", "l3")
    assert isinstance(move, Propose) and move.offer == o("h1", "l2")
    assert "our model of them" in move.justification.rationale
    assert s.models["them"].weights["light"] > s.models["them"].weights["heavy"]


def test_aspiration_bids_like_time_dependent_before_seeing_offers() -> None:
    v = view()
    s = AspirationWithOpponentModel(v, AspirationOptions(e=1.0))
    move = s.respond(call(10))
    assert isinstance(move, Propose)
    assert v.utility(move.offer) >= s.aspiration(call(10)) - 1e-12


# -- log-rolling ---------------------------------------------------------------------------------


def test_log_rolling_finds_which_cards_make_which_issue_matter() -> None:
    s = LogRolling(view())
    assert [x.issue for x in s.firm] == ["heavy"] and [x.issue for x in s.flexible] == ["light"]
    heavy = s.stakes["heavy"]
    assert heavy.stake == pytest.approx(0.5) and s.stakes["light"].stake == pytest.approx(0.05)
    assert heavy.best_option == "h1"
    assert next(iter(heavy.cards)) == "us-square" and heavy.cards["us-quiet"] == 0.0


def test_log_rolling_concedes_on_the_low_stakes_issue_first() -> None:
    v = view()
    s = LogRolling(v, LogRollingOptions(e=1.0))
    offers = []
    for r in range(1, 41):
        move = s.respond(call(r, deadline=40))
        assert isinstance(move, Propose)
        offers.append(move.offer)
    assert offers[0] == v.space.admissible[0][1] == o("h1", "l1")
    # The light issue goes first, all the way (l1, l2, l3) with the heavy one held at h1...
    first_change = next(x for x in offers if x != offers[0])
    assert first_change == o("h1", "l2")
    first_heavy = next(n for n, x in enumerate(offers) if x["heavy"] != "h1")
    assert [x["heavy"] for x in offers[:first_heavy]] == ["h1"] * first_heavy
    assert offers[first_heavy - 1] == o("h1", "l3")
    # ...and the heavy issue gives way only when the band holds nothing that keeps it.
    assert offers[first_heavy]["heavy"] == "h2"
    text = s.respond(call(3, deadline=40)).justification.rationale
    assert "holding heavy=h1, which 'Keeping the square open' (0.50) make weigh 0.50" in text
    assert "giving way on light=l2 (stake only 0.05)" in text


def test_log_rolling_gives_the_others_what_they_ask_on_low_stakes_issues() -> None:
    v = view()
    s = LogRolling(v)
    # Without asks, it would go down to (h1, l3); them asking for l2 makes it (h1, l2).
    assert LogRolling(view()).respond(call(8)).offer == o("h1", "l3")
    move = s.respond(call(8, offer=o("h3", "l2")))
    assert isinstance(move, Propose) and move.offer == o("h1", "l2")
    assert "light=l2 as asked" in move.justification.rationale


# -- every strategy --------------------------------------------------------------------------------


def tiny_views(seed: int | None = None) -> list[DelegateView]:
    spec, _ = load_session(FIXTURES / "tiny.yaml")
    if seed is not None:
        spec = spec.model_copy(update={"seed": seed})
    plan = build_plan(spec)
    return [p.delegate.view for p in plan.participants]


def all_kinds_of_calls(me: str, outcomes: list[dict[str, str]], deadline: int = 12) -> list[Call]:
    """Calls of every kind a protocol makes, over the rounds, with varied offers."""
    rng = random.Random(5)
    calls = []
    for r in range(1, deadline + 1):
        standing = rng.choice(outcomes)
        other = rng.choice(outcomes)
        calls += [
            Call(to=me, round=r, deadline_round=deadline, allowed=["propose"]),
            Call(
                to=me,
                round=r,
                deadline_round=deadline,
                allowed=["accept", "propose"],
                standing_offer=standing,
                offered_by="x",
            ),
            Call(
                to=me,
                round=r,
                deadline_round=deadline,
                allowed=["accept", "reject"],
                standing_offer=standing,
            ),
            Call(
                to=me,
                round=r,
                deadline_round=deadline,
                allowed=["accept", "reject"],
                standing_offer=standing,
                compare_to=other,
            ),
            Call(
                to=me,
                round=r,
                deadline_round=deadline,
                allowed=["rank"],
                candidates=[Candidate(id=f"c{n}", outcome=x) for n, x in enumerate(outcomes)],
            ),
            Call(
                to=me,
                round=r,
                deadline_round=deadline,
                allowed=["critique"],
                candidates=[Candidate(id="s1", outcome=standing, text="A statement.")],
            ),
            Call(
                to=me,
                round=r,
                deadline_round=deadline,
                allowed=["votes"],
                table=[
                    TableOffer(by=f"d{n}", offer=x) for n, x in enumerate(rng.sample(outcomes, 3))
                ],
            ),
        ]
    return calls


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda c: c.name)
def test_answers_every_kind_of_call_and_never_proposes_the_inadmissible(
    cls: type[Strategy],
) -> None:
    for v in tiny_views():
        outcomes = list(v.agenda.outcomes())
        s = cls(v)
        kinds = set()
        for c in all_kinds_of_calls(v.delegate_id, outcomes):
            move = s.respond(c)
            kinds.add(move.kind)
            assert move.kind in c.allowed or (move.kind == "votes" and "votes" in c.allowed)
            if isinstance(move, Propose):
                assert v.admissible(move.offer), (v.delegate_id, move.offer)
            if isinstance(move, Accept):
                assert v.admissible(move.offer), (v.delegate_id, move.offer)
            if isinstance(move, Votes):
                assert all(v.admissible(x.offer) for x in move.votes)
            if isinstance(move, Critique) and move.suggestion is not None:
                assert v.admissible(move.suggestion)
            if isinstance(move, Rank):
                by_id = {x.id: x.outcome for x in c.candidates or []}
                flags = [v.admissible(by_id[i]) for i in move.ranking]
                assert flags == sorted(flags, reverse=True)  # the inadmissible last
            # Every move's justification adds up to the model's utility for its outcome.
            cited = sum(x.contribution for x in move.justification.cited)
            assert cited == pytest.approx(move.justification.utility, abs=1e-12)
        assert {"propose", "rank", "critique", "votes"} <= kinds
        assert kinds & {"accept", "reject"}


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda c: c.name)
def test_deterministic_for_a_seed(cls: type[Strategy]) -> None:
    def moves(seed: int) -> list[dict]:
        out = []
        for v in tiny_views(seed):
            s = cls(v)
            out += [
                s.respond(c).model_dump()
                for c in all_kinds_of_calls(v.delegate_id, list(v.agenda.outcomes()))
            ]
        return out

    assert moves(3) == moves(3)


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda c: c.name)
def test_registered_with_options_that_forbid_unknown_keys(cls: type[Strategy]) -> None:
    assert plugins.strategy(NAMES[cls]) is cls
    assert cls.name == NAMES[cls] and cls.description and cls.__doc__
    assert cls.Options.model_config.get("extra") == "forbid"
    with pytest.raises(ValueError):
        cls.Options.model_validate({"no_such_option": 1})


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda c: c.name)
def test_proposals_on_a_larger_domain_stay_admissible(cls: type[Strategy]) -> None:
    plan, _ = load_plan(EXAMPLES[0])
    rng = random.Random(1)
    for p in plan.participants:
        v = p.delegate.view
        s = cls(v)
        outcomes = [x for _, x in v.space.all]
        for r in range(1, 31):
            standing = rng.choice(outcomes)
            move = s.respond(
                Call(
                    to=p.id,
                    round=r,
                    deadline_round=30,
                    allowed=["accept", "propose"],
                    standing_offer=standing,
                    offered_by="x",
                )
            )
            assert v.admissible(move.offer)


# -- whole sessions through the runtime ----------------------------------------------------------

SESSIONS = [FIXTURES / "tiny.yaml", *EXAMPLES]


@pytest.mark.parametrize("name", [NAMES[c] for c in STRATEGIES])
@pytest.mark.parametrize(
    "path", SESSIONS, ids=lambda p: p.parent.name if p.name == "session.yaml" else p.stem
)
def test_sessions_of_the_examples_end_and_verify(path: Path, name: str, tmp_path: Path) -> None:
    spec, _ = load_session(path)
    spec = spec.model_copy(
        update={"delegates": {c.id: DelegateSpec(strategy=name) for c in spec.constituencies}}
    )
    plan = build_plan(spec, str(path))
    assert {p.strategy_name for p in plan.participants} == {name}
    _, result, rows = run(run_plan(plan, tmp_path / "ledger.db"))
    assert result.ended is not None and rows[-1].kind == "session.close"
    report = verify_entries(result.session_id, rows)
    assert report.ok, report.problems
    assert not [r for r in rows if r.kind == "refusal"]  # the mandate never had to step in
    if result.ended.agreement:
        for p in plan.participants:
            u = p.model.utility(result.ended.agreement)
            assert p.constituency.mandate.violation(result.ended.agreement, u) is None


@pytest.mark.parametrize("name", [NAMES[c] for c in STRATEGIES])
def test_same_seed_same_session(name: str, tmp_path: Path) -> None:
    spec, _ = load_session(FIXTURES / "tiny.yaml")
    spec = spec.model_copy(
        update={"delegates": {c.id: DelegateSpec(strategy=name) for c in spec.constituencies}}
    )
    _, first, rows1 = run(run_plan(build_plan(spec), tmp_path / "a.db"))
    _, second, rows2 = run(run_plan(build_plan(spec), tmp_path / "b.db"))
    assert first.ended == second.ended
    assert moves_of(rows1) == moves_of(rows2)
