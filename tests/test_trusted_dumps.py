"""The direct dumps and the revalidation of `protocols.trusted` do what pydantic does.

`dump_call` and `dump_move` return what `model_dump(mode="json")` returns (the same
values of the same types, keys in the same order, the same warnings or error), sharing
no container with the model: for every call and move of sessions of every built-in
protocol, and for models made by validation, by the trusted builders and by
`model_construct` with odd values (where pydantic has to dump them). A move that
`trusted.revalidates` validates back to itself, and `MoveIntake.apply_built` gives the
events, and leaves the protocol in the state, that `apply` does, valid moves or not.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from annotated_types import Ge, MinLen
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError
from pydantic_core import PydanticUndefined

from accord.chair import MALFORMED_LIMIT, MoveIntake
from accord.delegate_runner import answer_bodies
from accord.session_plan import SessionPlan, load_plan
from accord.simulate import simulate
from constituencies.ids import Id
from delegates.delegate import Decision
from protocols import trusted
from protocols.base import Protocol
from protocols.events import Call, Candidate, ChairEvent, TableOffer
from protocols.moves import (
    MOVE_TYPES,
    Accept,
    CardCitation,
    Critique,
    Justification,
    Propose,
    Rank,
    Reject,
    Vote,
    Votes,
)
from protocols.stacked_alternating_offers import StackedAlternatingOffers
from tests.conftest import EXAMPLES, FIXTURES
from tests.test_local_session import PROTOCOLS, _Erratic

TINY = FIXTURES / "tiny.yaml"
M = TypeVar("M", bound=BaseModel)

# -- sessions of every built-in protocol -------------------------------------------------


def _tiny(tmp: Path, protocol: dict[str, Any]) -> Path:
    """The tiny session under `protocol`, its delegates' strategies varied."""
    doc = yaml.safe_load(TINY.read_text())
    strategies = ["aspiration", "tit-for-tat", "log-rolling"]
    doc["delegates"] = {d: {"strategy": s} for d, s in zip(doc["delegates"], strategies, strict=True)}
    doc["protocol"] = protocol
    path = tmp / f"session-{len(list(tmp.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class _Session:
    """A session's plan (a path, and whether its delegates are erratic) and what its
    protocol emitted and received when simulated."""

    path: Path
    erratic: bool
    calls: list[Call]
    moves: list[tuple[str, BaseModel]]

    def plan(self) -> SessionPlan:
        plan = load_plan(self.path)[0]
        if self.erratic:  # now and then a move the protocol refuses (see test_local_session)
            for p, period in zip(plan.participants, [0, 4, 5], strict=True):
                if period:
                    strategy = _Erratic(p.delegate.strategy, period)
                    p.delegate.strategy = strategy  # type: ignore[assignment]
        return plan

    def new_protocol(self) -> Protocol:
        return self.plan().new_protocol()


def _simulated(path: Path, erratic: bool = False) -> _Session:
    """The session of `path` simulated, every call and move of its protocol noted."""
    session = _Session(path, erratic, [], [])
    plan = session.plan()
    protocol = plan.new_protocol()
    start, receive = protocol.start, protocol.receive

    def noted(events: list[ChairEvent]) -> list[ChairEvent]:
        session.calls.extend(e for e in events if isinstance(e, Call))
        return events

    def received(actor: str, move: Any) -> list[ChairEvent]:
        session.moves.append((actor, move))
        return noted(receive(actor, move))

    protocol.start = lambda: noted(start())  # type: ignore[method-assign]
    protocol.receive = received  # type: ignore[method-assign]
    plan.new_protocol = lambda: protocol  # type: ignore[method-assign]
    simulate(plan)
    return session


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> list[_Session]:
    tmp = tmp_path_factory.mktemp("sessions")
    found = [_simulated(_tiny(tmp, protocol)) for protocol in PROTOCOLS]
    found += [_simulated(path) for path in EXAMPLES]
    for name in ("stacked-alternating-offers", "single-text", "zeuthen"):
        protocol = {"name": name, "deadline_rounds": 8, "strikes": 1, "absence_limit": 2}
        found.append(_simulated(_tiny(tmp, protocol), erratic=True))
    names = {s.new_protocol().name for s in found}
    assert names == {"stacked-alternating-offers", "single-text", "mopac", "voting", "habermas", "zeuthen"}
    assert {type(m) for s in found for _, m in s.moves} == set(MOVE_TYPES)
    calls = [c for s in found for c in s.calls]
    assert any(c.candidates for c in calls) and any(c.table for c in calls)
    return found


# -- comparing dumps ----------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Equal, and alike in everything `==` overlooks: types (1 and 1.0, a str and a
    subclass of it), key order, the sign of a zero, NaN."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        keys = [(type(k), k) for k in a]
        return keys == [(type(k), k) for k in b] and all(_same(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is float:
        return (a == b and math.copysign(1, a) == math.copysign(1, b)) or (a != a and b != b)
    return bool(a == b)


def _outcome(dump: Callable[[], Any]) -> tuple[Any, ...]:
    """What a dump gives: its value or its error, and the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value: tuple[Any, ...] = ("value", dump())
        except Exception as exc:  # noqa: BLE001 - compared, not handled
            value = ("error", type(exc), str(exc))
    return (*value, [(w.category, str(w.message)) for w in caught])


def _containers(obj: Any, into: dict[int, Any] | None = None) -> dict[int, Any]:
    """Every dict and list reachable from `obj`, through models too, by id."""
    found = {} if into is None else into
    if isinstance(obj, BaseModel):
        _containers(obj.__dict__, found)  # the model's own dict is no field, its contents are
        return found
    if isinstance(obj, dict):
        found[id(obj)] = obj
        for k, v in obj.items():
            _containers(k, found)
            _containers(v, found)
    elif isinstance(obj, (list, tuple)):
        if isinstance(obj, list):
            found[id(obj)] = obj
        for v in obj:
            _containers(v, found)
    return found


def _assert_dumps_alike(dump: Callable[[Any], dict[str, Any]], model: BaseModel) -> None:
    ours, pydantics = _outcome(lambda: dump(model)), _outcome(lambda: model.model_dump(mode="json"))
    assert ours[0] == pydantics[0], (ours, pydantics)
    if ours[0] == "error":
        assert ours == pydantics
        return
    assert _same(ours[1], pydantics[1]), (ours[1], pydantics[1])
    assert ours[2] == pydantics[2]  # the same warnings (none when the dump is direct)
    shared = _containers(ours[1]).keys() & (_containers(model).keys() | {id(model.__dict__)})
    assert not shared, "the dump shares a container with the model"


# -- dumps of real sessions' calls and moves ------------------------------------------


def test_every_call_and_move_of_every_protocol_dumps_as_pydantic_dumps_it(
    sessions: list[_Session],
) -> None:
    for session in sessions:
        for call in session.calls:
            _assert_dumps_alike(trusted.dump_call, call)
            # Validated from its dump (as a delegate on a bus gets it), and with its
            # fields in another order (which pydantic's dump follows).
            _assert_dumps_alike(trusted.dump_call, Call.model_validate(call.model_dump(mode="json")))
            reordered = Call.model_construct()
            reordered.__dict__.clear()
            reordered.__dict__.update(reversed(call.__dict__.items()))
            _assert_dumps_alike(trusted.dump_call, reordered)
        for _, move in session.moves:
            _assert_dumps_alike(trusted.dump_move, move)
            validated = type(move).model_validate(move.model_dump(mode="json"))
            _assert_dumps_alike(trusted.dump_move, validated)


def test_the_trusted_builders_dump_as_validation_does() -> None:
    cited = [CardCitation(card="a", contribution=0.25), CardCitation(card="b", contribution=-0.0)]
    j = trusted.justification(0, list(cited), "because")
    offer = {"heavy": "h1", "light": "l2"}
    for build in (trusted.propose, trusted.accept, trusted.reject):
        _assert_dumps_alike(trusted.dump_move, build(dict(offer), j))
    for standing, by in ((None, None), (offer, "them")):
        standing = standing and dict(standing)
        call = trusted.turn_call("us", 3, 30, ["accept", "propose"], standing, by, "a note")
        _assert_dumps_alike(trusted.dump_call, call)


def test_a_moves_body_holds_its_dump(sessions: list[_Session]) -> None:
    call = sessions[0].calls[0]
    for _, move in sessions[0].moves[:5]:
        ((kind, body),) = answer_bodies(call, Decision(move), "hash", object())
        assert kind == "move" and _same(body["move"], move.model_dump(mode="json"))
        assert not _containers(body["move"]).keys() & _containers(move).keys()


# -- odd models, which pydantic dumps ------------------------------------------------------


class _Str(str):
    """A str by inheritance: validation would make it a plain str, a dump might too."""


class _SubPropose(Propose):
    pass


class _SubJustification(Justification):
    pass


def _with_stray_key(model: M) -> M:
    """`model` with a key in its `__dict__` that is no field (pydantic's dump leaves it out)."""
    model.__dict__["stray"] = [1]
    return model


def _odd_justifications(j: Justification) -> Iterator[Any]:
    fields = dict(j.__dict__)
    card = CardCitation(card="c-1", contribution=0.5)
    for change in (
        {"rationale": ""},
        {"rationale": "half a pair \ud83d"},
        {"rationale": _Str("a subclass")},
        {"rationale": 7},
        {"utility": math.nan},
        {"utility": math.inf},
        {"utility": -math.inf},
        {"utility": 1},
        {"utility": True},
        {"utility": "0.5"},
        {"cited": tuple(fields["cited"])},
        {"cited": [card.model_dump()]},
        {"cited": [CardCitation.model_construct(card="not an id!", contribution=0.5)]},
        {"cited": [CardCitation.model_construct(card="x" * 65, contribution=0.5)]},
        {"cited": [CardCitation.model_construct(card="ends-in-a-newline\n", contribution=0.5)]},
        {"cited": [CardCitation.model_construct(card=_Str("c-1"), contribution=0.5)]},
        {"cited": [CardCitation.model_construct(card="c-1", contribution=math.nan)]},
        {"cited": [CardCitation.model_construct(card="c-1", contribution=2)]},
        {"cited": [CardCitation.model_construct(card="c-1")]},
        {"cited": [card, _with_stray_key(CardCitation(card="c-2", contribution=0.5))]},
    ):
        yield Justification.model_construct(**(fields | change))
    yield Justification.model_construct(utility=fields["utility"], cited=fields["cited"])  # no rationale
    yield _SubJustification.model_construct(**fields)
    yield j.model_dump()


def _odd_moves(move: BaseModel) -> Iterator[BaseModel]:
    """`move` made wrong in every way the checks know of, each by `model_construct`."""
    cls, fields = type(move), dict(move.__dict__)
    kinds = {"propose", "accept", "reject", "rank", "critique", "votes", "vote", "haggle"}
    for kind in sorted(kinds - {fields["kind"]}):
        yield cls.model_construct(**(fields | {"kind": kind}))
    yield cls.model_construct(**(fields | {"kind": _Str(fields["kind"])}))
    for j in _odd_justifications(fields["justification"]):
        yield cls.model_construct(**(fields | {"justification": j}))
    yield cls.model_construct(**{k: v for k, v in fields.items() if k != "justification"})
    yield _with_stray_key(cls.model_construct(**fields))
    stray = _with_stray_key(Justification(**fields["justification"].__dict__))
    yield cls.model_construct(**(fields | {"justification": stray}))
    if "offer" in fields:
        offer = fields["offer"]
        first = next(iter(offer), "k")
        for odd in (
            {**offer, "not an id": "x"},
            {**offer, first: ""},
            {**offer, first: 3},
            {**offer, first: _Str(offer.get(first, "v"))},
            {**offer, "\ud800": "v"},
            {**offer, "é": "v"},
            tuple(offer.items()),
        ):
            yield cls.model_construct(**(fields | {"offer": odd}))
    if cls is Propose:
        yield _SubPropose.model_construct(**fields)
    if cls is Rank:
        for ranking in ([], ["not an id"], tuple(fields["ranking"]), [*fields["ranking"], 5]):
            yield cls.model_construct(**(fields | {"ranking": ranking}))
    if cls is Critique:
        for change in (
            {"text": ""},
            {"text": "\udfff"},
            {"candidate": "not an id"},
            {"candidate": 1},
            {"suggestion": {"a": "not an id"}},
            {"suggestion": {"é": "b"}},
        ):
            yield cls.model_construct(**(fields | change))
    if cls is Votes:
        vote = fields["votes"][0] if fields["votes"] else None
        yield cls.model_construct(**(fields | {"votes": []}))
        yield cls.model_construct(**(fields | {"votes": tuple(fields["votes"])}))
        if vote is not None:
            v = dict(vote.__dict__)
            for change in (
                {"min_power": 0},
                {"min_power": True},
                {"max_power": "3"},
                {"max_power": 2.0},
                {"kind": "votes"},
                {"offer": {"a": 1}},
                {"justification": Justification.model_construct(utility=0.0, cited=[], rationale="")},
            ):
                yield cls.model_construct(**(fields | {"votes": [Vote.model_construct(**(v | change))]}))
            yield cls.model_construct(**(fields | {"votes": [v]}))


def _one_of_each_type(sessions: list[_Session]) -> list[tuple[_Session, int]]:
    """For each session, the first move of each type it received (by index)."""
    picked = []
    for session in sessions:
        seen: set[type] = set()
        for i, (_, move) in enumerate(session.moves):
            if type(move) not in seen:
                seen.add(type(move))
                picked.append((session, i))
    return picked


def test_odd_moves_are_dumped_by_pydantic(sessions: list[_Session]) -> None:
    for session, i in _one_of_each_type(sessions):
        for odd in _odd_moves(session.moves[i][1]):
            _assert_dumps_alike(trusted.dump_move, odd)


def _odd_calls(call: Call) -> Iterator[Call]:
    fields = dict(call.__dict__)
    offer = {"park": "garden", "hours": "day"}
    for change in (
        {"kind": "calls"},
        {"kind": _Str("call")},
        {"to": _Str(fields["to"])},
        {"round": True},
        {"round": 1.0},
        {"deadline_round": "30"},
        {"allowed": tuple(fields["allowed"])},
        {"allowed": [*fields["allowed"], 3]},
        {"phase": None},
        {"note": b"bytes"},
        {"offered_by": 5},
        {"standing_offer": offer | {"\ud800": "x"}},
        {"standing_offer": offer | {"é": "ü", "hours": "\ud800"}},
        {"standing_offer": offer | {"park": 1}},
        {"standing_offer": tuple(offer.items())},
        {"compare_to": {_Str("park"): "lot"}},
        {"candidates": [Candidate(id="a", outcome=offer).model_dump()]},
        {"candidates": (Candidate(id="a", outcome=offer),)},
        {"candidates": [Candidate.model_construct(id="a", outcome=offer | {"x": None}, text="")]},
        {"candidates": [Candidate.model_construct(id="a", outcome=offer)]},  # no text
        {"table": [TableOffer.model_construct(by=3, offer=offer)]},
        {"table": [TableOffer(by="a", offer=offer), TableOffer.model_construct(by="b", offer=[])]},
    ):
        yield Call.model_construct(**(fields | change))
    yield Call.model_construct(**{k: v for k, v in fields.items() if k != "to"})
    yield _with_stray_key(Call.model_construct(**fields))

    class _SubCall(Call):
        pass

    yield _SubCall.model_construct(**fields)


def test_odd_calls_are_dumped_by_pydantic(sessions: list[_Session]) -> None:
    calls = [sessions[0].calls[0], sessions[0].calls[-1]]
    calls += [next(c for s in sessions for c in s.calls if getattr(c, f)) for f in ("candidates", "table")]
    for call in calls:
        for odd in _odd_calls(call):
            _assert_dumps_alike(trusted.dump_call, odd)


# -- apply_built does what apply does --------------------------------------------------------


def _events(events: list[ChairEvent]) -> list[tuple[type, dict[str, Any]]]:
    return [(type(e), e.model_dump(mode="json")) for e in events]


class _Twins:
    """Two intakes over two protocols of one plan, fed the same: one by `apply`, the other
    by `apply_built`; each step asserts they said the same and kept the same count."""

    def __init__(self, protocol: Callable[[], Protocol]) -> None:
        self.plain, self.built = MoveIntake(protocol()), MoveIntake(protocol())
        assert _events(self.plain.protocol.start()) == _events(self.built.protocol.start())
        self.fast = 0  # moves `apply_built` took without validating

    @property
    def done(self) -> bool:
        return self.plain.protocol.done

    def feed(self, actor: str, move: BaseModel) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the odd moves' dumps warn: compared above
            try:
                data = trusted.dump_move(move)
            except Exception:  # noqa: BLE001 - a move that cannot be dumped is never sent
                return
        validated = self.plain.apply
        taken = self.built.protocol.receive

        def watched(sender: str, received: Any) -> list[ChairEvent]:
            self.fast += received is move
            return taken(sender, received)

        self.built.protocol.receive = watched  # type: ignore[method-assign]
        try:
            said = _events(validated(actor, data))
            assert _events(self.built.apply_built(actor, move, data)) == said, (actor, move)
        finally:
            del self.built.protocol.receive
        assert self.plain._malformed == self.built._malformed
        assert self.plain.protocol.pending == self.built.protocol.pending
        assert self.plain.protocol.ended == self.built.protocol.ended


def test_apply_built_takes_what_apply_takes_in_every_session(sessions: list[_Session]) -> None:
    for session in sessions:
        twins = _Twins(session.new_protocol)
        accepted = type(twins.built.protocol).moves
        assert twins.built._built_types == set(accepted)
        for actor, move in session.moves:
            assert trusted.revalidates(move), move  # every move a strategy here makes
            twins.feed(actor, move)
        # Every move of a type the protocol takes went through unvalidated. (The erratic
        # delegates' moves of other types: `simulate` handed them to the protocol as they
        # were, the intakes refuse them, so those sessions went on otherwise.)
        assert twins.fast == sum(type(m) in accepted for _, m in session.moves)
        assert twins.done or session.erratic


def test_apply_built_refuses_what_apply_refuses(sessions: list[_Session]) -> None:
    """Each odd move in the middle of a session (on its own, then `MALFORMED_LIMIT`
    times in a row, which is a timeout), and the session played on after it."""
    for session, i in _one_of_each_type(sessions):
        actor, move = session.moves[i]
        others = [m for t in MOVE_TYPES if t is not type(move) for m in _of_type(sessions, t)[:1]]
        for odd in [*_odd_moves(move), *others]:
            for repeats in (1, MALFORMED_LIMIT):
                twins = _Twins(session.new_protocol)
                for a, m in session.moves[:i]:
                    twins.feed(a, m)
                for _ in range(repeats):
                    twins.feed(actor, odd)
                for a, m in session.moves[i:]:
                    if twins.done:
                        break
                    twins.feed(a, m)


def _of_type(sessions: list[_Session], cls: type) -> list[BaseModel]:
    return [m for s in sessions for _, m in s.moves if type(m) is cls]


class _OwnAdapter(StackedAlternatingOffers):
    """A plug-in with an adapter of its own: strict, so it refuses what the standard one takes."""

    @classmethod
    def move_adapter(cls) -> TypeAdapter[Any]:
        return TypeAdapter(Propose | Accept, config={"strict": True})  # type: ignore[arg-type]


class _OwnMove(Propose):
    kind: Literal["counter"] = "counter"  # type: ignore[assignment]


class _OwnMoves(StackedAlternatingOffers):
    moves = (Propose, Accept, _OwnMove)


def test_protocols_with_adapters_or_moves_of_their_own_validate_every_move(
    sessions: list[_Session],
) -> None:
    session = sessions[0]
    assert session.new_protocol().name == "stacked-alternating-offers"
    for cls in (_OwnAdapter, _OwnMoves):

        def protocol(cls: type[Protocol] = cls) -> Protocol:
            plan = session.plan()
            ids = [p.id for p in plan.participants]
            return cls(ids, plan.agenda, plan.protocol_params, plan.spec.seed)

        twins = _Twins(protocol)
        assert twins.built._built_types == frozenset()
        for actor, move in session.moves:
            twins.feed(actor, move)
        assert twins.fast == 0


# -- property tests: odd values of every kind, however the model was made -------------------

_ID_TEXT = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,8}", fullmatch=True)
_IDS = st.one_of(
    st.sampled_from(["park", "hours", "garden", "lot", "day", "late", "n-quiet", "s-trade", "a" * 64]),
    _ID_TEXT,
)
_ODD_IDS = st.one_of(
    st.sampled_from(["", "not an id", "a" * 65, "-lead", "trail\n", "é", "\ud800", "ok.\udc00"]),
    st.text(max_size=6),
    _ID_TEXT.map(_Str),
    st.integers(-2, 2),
    st.none(),
)
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_ODD_FLOATS = st.one_of(st.floats(), st.integers(-3, 3), st.booleans(), st.just("0.5"), st.none())
_TEXTS = st.text(min_size=1, max_size=20)
_ODD_TEXTS = st.one_of(
    st.sampled_from(["", "\ud800", "a\udfffb"]), st.text(max_size=3).map(_Str), st.integers()
)
_POWERS = st.integers(1, 5)
_ODD_POWERS = st.one_of(st.integers(-1, 0), _ODD_FLOATS)


def _maybe(draw: st.DrawFn, good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any], oddness: float) -> Any:
    """A value of `good`, or (by `oddness`) of `odd`."""
    return draw(odd) if draw(st.floats(0, 1)) < oddness else draw(good)


def _make(
    draw: st.DrawFn,
    cls: type[BaseModel],
    fields: dict[str, Any],
    oddness: float,
    trusted_build: Callable[..., Any] | None = None,
) -> Any:
    """`cls` of `fields`: validated, built by the trusted builder, or constructed (if
    neither works); now and then (by `oddness`) constructed with a field left out, or a
    plain dict where a model is declared."""
    if draw(st.floats(0, 1)) < oddness:
        left_out = draw(st.sampled_from([None, *fields]))
        if left_out is None:
            return fields
        return cls.model_construct(**{k: v for k, v in fields.items() if k != left_out})
    how = draw(st.sampled_from(["validate", "trusted", "construct"]))
    if how == "validate":
        try:
            return cls(**fields)
        except ValidationError:
            pass
    if how == "trusted" and trusted_build is not None:
        try:
            return trusted_build(**fields)
        except (ValueError, TypeError):
            pass
    return cls.model_construct(**fields)


@st.composite
def _offers(draw: st.DrawFn, oddness: float) -> Any:
    offer = draw(st.dictionaries(_IDS, _IDS, max_size=4))
    if draw(st.floats(0, 1)) < oddness:
        odd = draw(st.sampled_from(["key", "value", "tuple", "list"]))
        if odd == "key":
            offer[draw(_ODD_IDS)] = "v"
        elif odd == "value":
            offer[draw(_IDS)] = draw(_ODD_IDS)
        elif odd == "tuple":
            return tuple(offer.items())
        else:
            return list(offer)
    return offer


@st.composite
def _justifications(draw: st.DrawFn, oddness: float) -> Any:
    cited = []
    for _ in range(draw(st.integers(0, 4))):
        fields = {
            "card": _maybe(draw, _IDS, _ODD_IDS, oddness),
            "contribution": _maybe(draw, _FLOATS, _ODD_FLOATS, oddness),
        }
        cited.append(_make(draw, CardCitation, fields, oddness))
    fields = {
        "utility": _maybe(draw, _FLOATS, _ODD_FLOATS, oddness),
        "cited": tuple(cited) if draw(st.floats(0, 1)) < oddness / 4 else cited,
        "rationale": _maybe(draw, _TEXTS, _ODD_TEXTS, oddness),
    }
    return _make(draw, Justification, fields, oddness, trusted.justification)


@st.composite
def _moves(draw: st.DrawFn, oddness: float = 0.1) -> Any:
    cls = draw(st.sampled_from([*MOVE_TYPES, _SubPropose]))
    j = draw(_justifications(oddness))
    fields: dict[str, Any] = {}
    if cls in (Propose, Accept, Reject, _SubPropose):
        fields["offer"] = draw(_offers(oddness))
    elif cls is Rank:
        fields["ranking"] = draw(st.lists(_IDS, min_size=1, max_size=3))
        if draw(st.floats(0, 1)) < oddness:
            fields["ranking"] = draw(st.sampled_from([[], [*fields["ranking"], draw(_ODD_IDS)]]))
    elif cls is Critique:
        fields["candidate"] = _maybe(draw, _IDS, _ODD_IDS, oddness)
        fields["text"] = _maybe(draw, _TEXTS, _ODD_TEXTS, oddness)
        fields["suggestion"] = draw(st.one_of(st.none(), _offers(oddness)))
    else:
        votes = []
        for _ in range(draw(st.integers(0, 2))):
            vote = {
                "offer": draw(_offers(oddness)),
                "min_power": _maybe(draw, _POWERS, _ODD_POWERS, oddness),
                "max_power": _maybe(draw, _POWERS, _ODD_POWERS, oddness),
                "justification": draw(_justifications(oddness)),
            }
            votes.append(_make(draw, Vote, vote, oddness))
        fields["votes"] = votes
    fields["justification"] = j
    if draw(st.floats(0, 1)) < oddness:
        fields["kind"] = draw(st.sampled_from(["propose", "accept", "reject", "rank", "votes", "x"]))
    builders = {Propose: trusted.propose, Accept: trusted.accept, Reject: trusted.reject}
    move = _make(draw, cls, fields, oddness, builders.get(cls))
    return move if isinstance(move, BaseModel) else cls.model_construct(**fields)


@st.composite
def _calls(draw: st.DrawFn, oddness: float = 0.1) -> Any:
    def optional(strategy: st.SearchStrategy[Any]) -> Any:
        return draw(st.one_of(st.none(), strategy))

    def candidate() -> Any:
        fields = {
            "id": _maybe(draw, _IDS, _ODD_IDS, oddness),
            "outcome": draw(_offers(oddness)),
            "text": draw(st.text(max_size=5)),
        }
        return _make(draw, Candidate, fields, oddness)

    def table_offer() -> Any:
        fields = {"by": _maybe(draw, _IDS, _ODD_IDS, oddness), "offer": draw(_offers(oddness))}
        return _make(draw, TableOffer, fields, oddness)

    rounds = st.integers(1, 100)
    fields = {
        "to": _maybe(draw, _IDS, _ODD_IDS, oddness),
        "round": _maybe(draw, rounds, _ODD_FLOATS, oddness),
        "deadline_round": _maybe(draw, rounds, _ODD_FLOATS, oddness),
        "allowed": draw(st.lists(st.sampled_from(["propose", "accept", "votes"]), max_size=2)),
        "phase": draw(st.sampled_from(["", "offer", "vote"])),
        "standing_offer": optional(_offers(oddness)),
        "offered_by": optional(_IDS),
        "compare_to": optional(_offers(oddness)),
        "candidates": [candidate() for _ in range(draw(st.integers(0, 2)))] if draw(st.booleans()) else None,
        "table": [table_offer() for _ in range(draw(st.integers(0, 2)))] if draw(st.booleans()) else None,
        "note": _maybe(draw, st.text(max_size=10), _ODD_TEXTS, oddness),
    }
    if draw(st.floats(0, 1)) < oddness:
        fields["kind"] = draw(st.sampled_from(["calls", "call", _Str("call")]))
    if draw(st.booleans()):
        fields = {k: fields[k] for k in draw(st.permutations(list(fields)))}  # another order
    call = _make(draw, Call, fields, oddness)
    return call if isinstance(call, BaseModel) else Call.model_construct(**fields)


_PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_ANY_MOVE = st.one_of(_moves(oddness=0.0), _moves(oddness=0.05), _moves(oddness=0.2))
_ANY_CALL = st.one_of(_calls(oddness=0.0), _calls(oddness=0.05), _calls(oddness=0.2))


@_PROPERTY
@given(move=_ANY_MOVE)
def test_any_move_dumps_as_pydantic_dumps_it(move: BaseModel) -> None:
    _assert_dumps_alike(trusted.dump_move, move)


@_PROPERTY
@given(call=_ANY_CALL)
def test_any_call_dumps_as_pydantic_dumps_it(call: Call) -> None:
    _assert_dumps_alike(trusted.dump_call, call)


@_PROPERTY
@given(move=_ANY_MOVE)
def test_a_move_that_revalidates_validates_back_to_itself(move: BaseModel) -> None:
    if not trusted.revalidates(move):
        return
    data = trusted.dump_move(move)
    adapters = [TypeAdapter(type(move))]
    for cls in _protocol_classes():
        if type(move) in cls.moves:
            adapters.append(cls.move_adapter())
    for adapter in adapters:
        validated = adapter.validate_python(data)
        assert type(validated) is type(move) and validated == move
        assert _same(_fields_of(validated), _fields_of(move))


@_PROPERTY
@given(move=_moves(oddness=0.0), call=_calls(oddness=0.0))
def test_sound_moves_revalidate_and_sound_models_dump_directly(move: BaseModel, call: Call) -> None:
    """Not too careful either: what validation would take as it is, the checks take."""
    if type(move) is not _SubPropose:
        assert trusted.revalidates(move), move
        trusted._MOVE_DUMPS[type(move)](move.__dict__)  # no fallback
    trusted._call(call.__dict__)


def _fields_of(model: Any) -> Any:
    """A model's fields, nested models too, as plain data of their very types."""
    if isinstance(model, BaseModel):
        return {k: _fields_of(v) for k, v in model.__dict__.items()}
    if isinstance(model, list):
        return [_fields_of(v) for v in model]
    return model


def _protocol_classes() -> list[type[Protocol]]:
    from accord import plugins

    return list(plugins.protocols().values())


@settings(max_examples=200, deadline=None)
@given(move=_ANY_MOVE, which=st.integers(0, len(PROTOCOLS) - 1))
def test_apply_built_is_apply_for_any_move(sessions: list[_Session], move: BaseModel, which: int) -> None:
    """Any move, as the opening move of a session of any protocol."""
    session = sessions[which]  # the sessions of `PROTOCOLS` come first
    twins = _Twins(session.new_protocol)
    called = twins.plain.protocol.pending
    twins.feed(called[0].to if called else session.moves[0][0], move)


def test_validated_moves_revalidate(sessions: list[_Session]) -> None:
    for session in sessions:
        for _, move in session.moves:
            assert trusted.revalidates(type(move).model_validate(move.model_dump(mode="json")))


# -- what the checks assume of the models -----------------------------------------------------


def test_the_checks_know_the_models_as_they_are() -> None:
    """`trusted`'s dumps and `revalidates` restate these models' fields and constraints:
    a change here needs a change there (then update this test)."""
    (rule,) = Id.__metadata__  # type: ignore[attr-defined]
    assert Id.__origin__ is str  # type: ignore[attr-defined]
    assert rule == StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    at_least_1, nonempty, none = [Ge(ge=1)], [MinLen(min_length=1)], PydanticUndefined
    expected: dict[type[BaseModel], list[tuple[str, Any, list[Any], Any]]] = {
        CardCitation: [("card", str, [rule], none), ("contribution", float, [], none)],
        Justification: [
            ("utility", float, [], none),
            ("cited", list[CardCitation], [], none),
            ("rationale", str, nonempty, none),
        ],
        **{
            cls: [
                ("kind", Literal[kind], [], kind),  # type: ignore[valid-type]
                ("offer", dict[Id, Id], [], none),
                ("justification", Justification, [], none),
            ]
            for cls, kind in ((Propose, "propose"), (Accept, "accept"), (Reject, "reject"))
        },
        Rank: [
            ("kind", Literal["rank"], [], "rank"),
            ("ranking", list[Id], nonempty, none),
            ("justification", Justification, [], none),
        ],
        Critique: [
            ("kind", Literal["critique"], [], "critique"),
            ("candidate", str, [rule], none),
            ("text", str, nonempty, none),
            ("suggestion", dict[Id, Id] | None, [], None),
            ("justification", Justification, [], none),
        ],
        Vote: [
            ("kind", Literal["vote"], [], "vote"),
            ("offer", dict[Id, Id], [], none),
            ("min_power", int, at_least_1, 2),
            ("max_power", int, at_least_1, 1_000_000),
            ("justification", Justification, [], none),
        ],
        Votes: [
            ("kind", Literal["votes"], [], "votes"),
            ("votes", list[Vote], [], none),
            ("justification", Justification, [], none),
        ],
        Candidate: [("id", str, [rule], none), ("outcome", dict[str, str], [], none), ("text", str, [], "")],
        TableOffer: [("by", str, [rule], none), ("offer", dict[str, str], [], none)],
        Call: [
            ("kind", Literal["call"], [], "call"),
            ("to", str, [rule], none),
            ("round", int, at_least_1, none),
            ("deadline_round", int, at_least_1, none),
            ("allowed", list[str], [], none),
            ("phase", str, [], ""),
            ("standing_offer", dict[str, str] | None, [], None),
            ("offered_by", Id | None, [], None),
            ("compare_to", dict[str, str] | None, [], None),
            ("candidates", list[Candidate] | None, [], None),
            ("table", list[TableOffer] | None, [], None),
            ("note", str, [], ""),
        ],
    }
    for cls, fields in expected.items():
        assert cls.model_config == {"extra": "forbid", "frozen": True}, cls
        assert not cls.__private_attributes__, cls
        decorators = cls.__pydantic_decorators__
        assert not (
            decorators.validators or decorators.field_validators or decorators.root_validators
            or decorators.model_validators or decorators.field_serializers or decorators.model_serializers
        ), cls
        found = [(n, f.annotation, f.metadata, f.default) for n, f in cls.model_fields.items()]
        assert found == fields, cls
        assert all(f.default_factory is None for f in cls.model_fields.values()), cls
