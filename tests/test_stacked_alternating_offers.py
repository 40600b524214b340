"""The SAO state machine on its own: no bus, no ledger."""

from __future__ import annotations

import pytest

from protocols.agenda import Agenda, Issue, Option
from protocols.events import Absence, Call, Ended, Rejection
from protocols.moves import Accept, Justification, Propose
from protocols.stacked_alternating_offers import SAOParams, StackedAlternatingOffers

AGENDA = Agenda(
    issues=[
        Issue(id="x", options=[Option(id="a"), Option(id="b")]),
        Issue(id="y", options=[Option(id="c"), Option(id="d")]),
    ]
)
J = Justification(utility=0.0, cited=[], rationale="test")
OFFER = {"x": "a", "y": "c"}


def sao(deadline: int = 3, **kw: int) -> StackedAlternatingOffers:
    return StackedAlternatingOffers(["p", "q", "r"], AGENDA, SAOParams(deadline_rounds=deadline, **kw), seed=0)


def test_first_call_goes_to_first_participant_and_allows_only_proposals() -> None:
    proto = sao()
    [call] = proto.start()
    assert isinstance(call, Call) and call.to == "p" and call.allowed == ["propose"]


def test_agreement_when_all_others_accept() -> None:
    proto = sao()
    proto.start()
    [call] = proto.receive("p", Propose(offer=OFFER, justification=J))
    assert call.to == "q" and call.standing_offer == OFFER and call.allowed == ["accept", "propose"]
    [call] = proto.receive("q", Accept(offer=OFFER, justification=J))
    assert call.to == "r"
    [ended] = proto.receive("r", Accept(offer=OFFER, justification=J))
    assert isinstance(ended, Ended) and ended.agreement == OFFER
    assert ended.accepted_by == ["p", "q", "r"] and proto.done


def test_counter_offer_resets_acceptances() -> None:
    proto = sao()
    proto.start()
    proto.receive("p", Propose(offer=OFFER, justification=J))
    proto.receive("q", Accept(offer=OFFER, justification=J))
    other = {"x": "b", "y": "d"}
    [call] = proto.receive("r", Propose(offer=other, justification=J))
    assert call.to == "p" and call.round == 2 and call.standing_offer == other
    [call] = proto.receive("p", Accept(offer=other, justification=J))
    assert not proto.done
    [ended] = proto.receive("q", Accept(offer=other, justification=J))
    assert ended.agreement == other


def test_deadline_without_agreement_is_an_outcome() -> None:
    proto = sao(deadline=2)
    proto.start()
    events = []
    for _ in range(2):
        for who in ("p", "q", "r"):
            events = proto.receive(who, Propose(offer={"x": "a", "y": "c" if who != "q" else "d"}, justification=J))
    [ended] = events
    assert isinstance(ended, Ended) and ended.agreement is None and "deadline" in ended.reason
    assert ended.round == 2


@pytest.mark.parametrize(
    ("sender", "move", "reason"),
    [
        ("q", Propose(offer=OFFER, justification=J), "out of turn"),
        ("p", Propose(offer={"x": "z", "y": "c"}, justification=J), "unknown option 'z'"),
        ("p", Propose(offer={"x": "a"}, justification=J), "no option chosen"),
        ("p", Propose(offer={"x": "a", "y": "c", "w": "a"}, justification=J), "unknown issue"),
        ("p", Accept(offer=OFFER, justification=J), "no standing offer"),
        ("mallory", Propose(offer=OFFER, justification=J), "not a participant"),
    ],
)
def test_illegal_moves_are_rejected_with_a_reason_and_change_nothing(sender, move, reason) -> None:  # noqa: ANN001
    proto = sao()
    proto.start()
    events = proto.receive(sender, move)
    rejection = events[0]
    assert isinstance(rejection, Rejection) and rejection.to == sender
    assert reason in rejection.reason
    assert proto.standing_offer is None and not proto.done
    assert proto.current == "p"


def test_stale_acceptance_is_rejected() -> None:
    proto = sao()
    proto.start()
    proto.receive("p", Propose(offer=OFFER, justification=J))
    events = proto.receive("q", Accept(offer={"x": "b", "y": "c"}, justification=J))
    assert isinstance(events[0], Rejection) and "not the standing one" in events[0].reason
    # The turn stays with q, who is called again.
    assert isinstance(events[1], Call) and events[1].to == "q"


def test_repeated_illegal_moves_forfeit_the_turn() -> None:
    proto = sao(strikes=2)
    proto.start()
    bad = Propose(offer={"x": "z", "y": "c"}, justification=J)
    proto.receive("p", bad)
    events = proto.receive("p", bad)
    assert [type(e) for e in events] == [Rejection, Absence, Call]
    assert events[2].to == "q"


def test_timeouts_skip_then_make_absent() -> None:
    proto = sao(absence_limit=2)
    proto.start()
    proto.receive("p", Propose(offer=OFFER, justification=J))
    events = proto.timeout("q")
    assert isinstance(events[0], Absence) and "skipped" in events[0].consequence
    assert events[1].to == "r"
    proto.receive("r", Accept(offer=OFFER, justification=J))
    proto.receive("p", Propose(offer=OFFER, justification=J))
    events = proto.timeout("q")
    assert isinstance(events[-1], Ended) and events[-1].agreement is None
    assert "q is absent" in events[-1].reason


def test_timeout_for_someone_not_called_is_ignored() -> None:
    proto = sao()
    proto.start()
    assert proto.timeout("r") == []


def test_needs_two_distinct_participants() -> None:
    with pytest.raises(ValueError):
        StackedAlternatingOffers(["p"], AGENDA, SAOParams(), seed=0)
    with pytest.raises(ValueError):
        StackedAlternatingOffers(["p", "p"], AGENDA, SAOParams(), seed=0)
