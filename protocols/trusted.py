"""Building the events and moves of every turn from values our own typed code produced.

A protocol emits a call, and a built-in strategy a move and its justification, on every
turn. Validating what our own code has just built from already validated inputs (the
agenda, the value model, the protocol's state) was a fifth of the time a simulated
negotiation took; pydantic's `model_construct` skips validation but is slower still on
models this small. The builders here make the very instance validation would: every
field in declaration order with its default, an equal `model_fields_set` (one set shared
by every instance of a builder, see below), equal to a validated one and dumping the same
(tests/test_fast_path.py checks each against validation, so a field added to one of these
models fails it until the builder follows).

Only for values whose types are already right. Anything parsed from the bus, the
ledger or a user's file is still validated. Callers pass containers of their own (a copy
of an outcome, a new list), since validation would have copied them.

The mirror image, for what is signed and logged on every turn: `dump_call` and
`dump_move` are `model_dump(mode="json")` made from the fields directly, and
`revalidates` says when validating such a dump would give back the very move it was
made of (so that the busless run need not validate its own delegates' moves, see
`accord.chair.MoveIntake.apply_built`). Both check what they are handed, and leave
anything they do not handle exactly to pydantic (tests/test_trusted_dumps.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

from pydantic import BaseModel

from protocols.events import Call, Candidate, TableOffer
from protocols.moves import (
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

M = TypeVar("M", bound=BaseModel)

_new = object.__new__
# The setters of BaseModel's four slots, called directly: `object.__setattr__(obj, name,
# value)` looks the same descriptors up by name on every call, a fifth of a build's time.
_slots = BaseModel.__dict__
_set_dict = _slots["__dict__"].__set__
_set_fields_set = _slots["__pydantic_fields_set__"].__set__
_set_extra = _slots["__pydantic_extra__"].__set__
_set_private = _slots["__pydantic_private__"].__set__


def _build(cls: type[M], data: dict[str, Any], fields_set: set[str]) -> M:
    obj = _new(cls)
    _set_dict(obj, data)
    _set_fields_set(obj, fields_set)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


# The fields set of every instance a builder below makes: one set shared by all of them,
# not a new one each (three sets a move, and the collections their allocation set off).
# Nothing mutates a model's fields set in place: the models are frozen, and pydantic's
# `model_copy(update=...)` copies the set before adding to it (checked by
# tests/test_fast_path_scoring.py). Never add to a built model's `model_fields_set`.
_JUSTIFICATION_FIELDS = {"utility", "cited", "rationale"}
_MOVE_FIELDS = {"offer", "justification"}

# The builders made on every turn (a justification, a proposal or an acceptance, a turn's
# call) do what `_build` does inline: a call less each, a few per cent of a move.


def justification(utility: float, cited: list[CardCitation], rationale: str) -> Justification:
    """As `Justification(utility=..., cited=..., rationale=...)`; `rationale` non-empty."""
    if not rationale:
        raise ValueError("a justification needs a rationale")
    obj = _new(Justification)
    _set_dict(obj, {"utility": float(utility), "cited": cited, "rationale": rationale})
    _set_fields_set(obj, _JUSTIFICATION_FIELDS)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def propose(offer: dict[str, str], justification: Justification) -> Propose:
    """As `Propose(offer=..., justification=...)`."""
    obj = _new(Propose)
    _set_dict(obj, {"kind": "propose", "offer": offer, "justification": justification})
    _set_fields_set(obj, _MOVE_FIELDS)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def accept(offer: dict[str, str], justification: Justification) -> Accept:
    """As `Accept(offer=..., justification=...)`."""
    obj = _new(Accept)
    _set_dict(obj, {"kind": "accept", "offer": offer, "justification": justification})
    _set_fields_set(obj, _MOVE_FIELDS)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def reject(offer: dict[str, str], justification: Justification) -> Reject:
    """As `Reject(offer=..., justification=...)`."""
    return _build(
        Reject,
        {"kind": "reject", "offer": offer, "justification": justification},
        {"offer", "justification"},
    )


# Shared, as the sets above.
_TURN_CALL_FIELDS = {
    "to", "round", "deadline_round", "allowed", "standing_offer", "offered_by", "note"
}


def turn_call(
    to: str,
    round: int,  # noqa: A002 - the field's name
    deadline_round: int,
    allowed: list[str],
    standing_offer: dict[str, str] | None,
    offered_by: str | None,
    note: str,
) -> Call:
    """As `Call(to=..., round=..., deadline_round=..., allowed=..., standing_offer=...,
    offered_by=..., note=...)`: a turn in an alternating-offers protocol."""
    obj = _new(Call)
    _set_dict(
        obj,
        {
            "kind": "call",
            "to": to,
            "round": round,
            "deadline_round": deadline_round,
            "allowed": allowed,
            "phase": "",
            "standing_offer": standing_offer,
            "offered_by": offered_by,
            "compare_to": None,
            "candidates": None,
            "table": None,
            "note": note,
        },
    )
    _set_fields_set(obj, _TURN_CALL_FIELDS)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


# -- Dumping: the JSON form of a call or a move -----------------------------------------
#
# Every call and every move is dumped (`model_dump(mode="json")`) to be signed and logged;
# pydantic's serializer was most of that time on models this small. `dump_call` and
# `dump_move` make the same dict from the instance's `__dict__` directly: a copy of it
# (pydantic's dump follows its order too), each container in it replaced by a copy (a
# body must not change with its model). They handle only values whose JSON form is the
# value itself: exactly a str (a dict's keys free of lone surrogates, which pydantic's
# JSON mode replaces there), an int, a finite float, None, and the models and containers
# of calls and moves. Anything else (a subclass, an int where a float is declared, a
# tuple, NaN, a field left out or one too many) and pydantic dumps the whole instance,
# as before, warnings and all.


class _Inexact(Exception):
    """Raised inside a direct dump at a value it does not render as pydantic would."""


# Exact strs known to be valid `Id`s, so free of lone surrogates too: the keys of every
# dict dumped and checked here are a few ids of the agenda (its issues), met on every
# move, and so are the options of an offer and the cited cards. Each is matched against
# `Id`'s pattern once. Bounded: cleared when full.
_IDS: set[str] = set()
_IDS_MAX: Final = 1 << 16
# `constituencies.ids.Id`: 1 to 64 characters, this pattern (tests/test_trusted_dumps.py
# checks that `Id` still says so).
_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


def _all_ids(strs: Iterable[str]) -> bool:
    """Whether each of `strs` (exact strs) is a valid `Id`; remembers those that are."""
    fullmatch = _ID.fullmatch
    for s in strs:
        if s not in _IDS:
            if fullmatch(s) is None:
                return False
            if len(_IDS) >= _IDS_MAX:
                _IDS.clear()
            _IDS.add(s)
    return True


def _surrogate_free(s: str) -> bool:
    if s.isascii():
        return True
    try:
        s.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _str_dict(d: object) -> dict[str, str]:
    """A `dict[str, str]` (or `dict[Id, Id]`) field: a copy."""
    if type(d) is not dict:
        raise _Inexact
    for k, v in d.items():
        if type(k) is not str or type(v) is not str:
            raise _Inexact
    if not (_IDS.issuperset(d) or _all_ids(d) or _surrogate_free("".join(d))):
        raise _Inexact
    return d.copy()


def _str_list(items: object) -> list[str]:
    """A `list[str]` (or `list[Id]`) field: a copy."""
    if type(items) is not list:
        raise _Inexact
    for s in items:
        if type(s) is not str:
            raise _Inexact
    return items.copy()


def _fields(model: object, cls: type[BaseModel], n: int) -> dict[str, Any]:
    """The `__dict__` of a nested model: of the declared type (not a subclass), `n` fields."""
    if type(model) is not cls:
        raise _Inexact
    d = model.__dict__
    if len(d) != n:
        raise _Inexact
    return d


def _justification(j: object) -> dict[str, Any]:
    d = _fields(j, Justification, 3)
    utility = d["utility"]
    # `x - x` is 0.0 for a finite float, NaN for NaN and the infinities.
    if type(utility) is not float or utility - utility != 0.0 or type(d["rationale"]) is not str:
        raise _Inexact
    dumped = d.copy()
    dumped["cited"] = _citations(d["cited"])
    return dumped


def _citations(cited: object) -> list[dict[str, Any]]:
    """`Justification.cited`, each citation inline (a call each made this a quarter slower)."""
    if type(cited) is not list:
        raise _Inexact
    dumped = []
    for c in cited:
        if type(c) is not CardCitation:
            raise _Inexact
        d = c.__dict__
        contribution = d["contribution"]
        if (
            len(d) != 2
            or type(d["card"]) is not str
            or type(contribution) is not float
            or contribution - contribution != 0.0
        ):
            raise _Inexact
        dumped.append(d.copy())
    return dumped


def _candidate(c: object) -> dict[str, Any]:
    d = _fields(c, Candidate, 3)
    if type(d["id"]) is not str or type(d["text"]) is not str:
        raise _Inexact
    dumped = d.copy()
    dumped["outcome"] = _str_dict(d["outcome"])
    return dumped


def _table_offer(t: object) -> dict[str, Any]:
    d = _fields(t, TableOffer, 2)
    if type(d["by"]) is not str:
        raise _Inexact
    dumped = d.copy()
    dumped["offer"] = _str_dict(d["offer"])
    return dumped


def _models(items: object, dump: Callable[[object], dict[str, Any]]) -> list[dict[str, Any]]:
    """A list of models (`Call.candidates`, `Call.table`)."""
    if type(items) is not list:
        raise _Inexact
    return [dump(item) for item in items]


def _call(d: dict[str, Any]) -> dict[str, Any]:
    kind, offered_by = d["kind"], d["offered_by"]
    if (
        len(d) != 12
        or type(kind) is not str
        or kind != "call"
        or type(d["to"]) is not str
        or type(d["round"]) is not int
        or type(d["deadline_round"]) is not int
        or type(d["phase"]) is not str
        or (offered_by is not None and type(offered_by) is not str)
        or type(d["note"]) is not str
    ):
        raise _Inexact
    dumped = d.copy()
    dumped["allowed"] = _str_list(d["allowed"])
    # The optional fields are None on most calls: left as they are then.
    standing, compare_to = d["standing_offer"], d["compare_to"]
    candidates, table = d["candidates"], d["table"]
    if standing is not None:
        dumped["standing_offer"] = _str_dict(standing)
    if compare_to is not None:
        dumped["compare_to"] = _str_dict(compare_to)
    if candidates is not None:
        dumped["candidates"] = _models(candidates, _candidate)
    if table is not None:
        dumped["table"] = _models(table, _table_offer)
    return dumped


def dump_call(call: Call) -> dict[str, Any]:
    """`call.model_dump(mode="json")`, sharing no container with `call`."""
    if type(call) is Call:
        try:
            return _call(call.__dict__)
        except (_Inexact, KeyError):  # KeyError: a field left out (`model_construct`)
            pass
    return call.model_dump(mode="json")


def _move_fields(d: dict[str, Any], kind: str, n: int) -> dict[str, Any]:
    """A copy of a move's `__dict__` (`n` fields, `kind` its literal), its justification dumped."""
    found = d["kind"]
    if len(d) != n or type(found) is not str or found != kind:
        raise _Inexact
    dumped = d.copy()
    dumped["justification"] = _justification(d["justification"])
    return dumped


def _offer_move(kind: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The dump of `Propose`, `Accept` or `Reject` (by `kind`), which have the same fields."""

    def dump(d: dict[str, Any]) -> dict[str, Any]:
        dumped = _move_fields(d, kind, 3)
        dumped["offer"] = _str_dict(d["offer"])
        return dumped

    return dump


def _rank(d: dict[str, Any]) -> dict[str, Any]:
    dumped = _move_fields(d, "rank", 3)
    dumped["ranking"] = _str_list(d["ranking"])
    return dumped


def _critique(d: dict[str, Any]) -> dict[str, Any]:
    dumped = _move_fields(d, "critique", 5)
    suggestion = d["suggestion"]
    if type(d["candidate"]) is not str or type(d["text"]) is not str:
        raise _Inexact
    if suggestion is not None:
        dumped["suggestion"] = _str_dict(suggestion)
    return dumped


def _vote(v: object) -> dict[str, Any]:
    if type(v) is not Vote:
        raise _Inexact
    d = v.__dict__
    dumped = _move_fields(d, "vote", 5)
    if type(d["min_power"]) is not int or type(d["max_power"]) is not int:
        raise _Inexact
    dumped["offer"] = _str_dict(d["offer"])
    return dumped


def _votes(d: dict[str, Any]) -> dict[str, Any]:
    dumped = _move_fields(d, "votes", 3)
    dumped["votes"] = _models(d["votes"], _vote)
    return dumped


_MOVE_DUMPS: Final[dict[type[BaseModel], Callable[[dict[str, Any]], dict[str, Any]]]] = {
    Propose: _offer_move("propose"),
    Accept: _offer_move("accept"),
    Reject: _offer_move("reject"),
    Rank: _rank,
    Critique: _critique,
    Votes: _votes,
}


def dump_move(move: BaseModel) -> dict[str, Any]:
    """`move.model_dump(mode="json")`, sharing no container with `move`."""
    dump = _MOVE_DUMPS.get(type(move))
    if dump is not None:
        try:
            return dump(move.__dict__)
        except (_Inexact, KeyError):  # KeyError: a field left out (`model_construct`)
            pass
    return move.model_dump(mode="json")


# -- Revalidating: whether validation would give a built move back ----------------------
#
# The chair validates every move it is sent (`accord.chair.MoveIntake`). A move this
# process has just built and dumped itself (the busless run, `accord.local_session`) need
# not be: when validating its dump would give back an equal move of its own type, the
# move itself can go to the protocol (`MoveIntake.apply_built`). `revalidates` says when,
# from the fields and constraints of protocols/moves.py restated here: exact types (no
# subclass, no int for a float: validation would convert them), finite floats (a NaN is
# equal to nothing, and the dumps leave the non-finite ones to pydantic), valid ids,
# non-empty texts free of lone surrogates (pydantic refuses those), powers of at least 1.
# tests/test_trusted_dumps.py pins those models' fields, so a field or a constraint
# changed there fails it until this follows. Not checked: keys in a `__dict__` that are
# no field (pydantic's equality and dumps ignore them), and `__pydantic_extra__` and
# `__pydantic_private__`, None on every instance of these models however made (extra
# fields are forbidden, and there are no private ones) unless set by hand, which would
# be mutating a frozen model.


def _ids_dict(d: object) -> bool:
    """A valid `dict[Id, Id]`."""
    if type(d) is not dict:
        return False
    for k, v in d.items():
        if type(k) is not str or type(v) is not str:
            return False
    known = _IDS.issuperset(d) and _IDS.issuperset(d.values())
    return known or (_all_ids(d) and _all_ids(d.values()))


def _ids_list(items: object) -> bool:
    """A valid `list[Id]`."""
    if type(items) is not list:
        return False
    for s in items:
        if type(s) is not str:
            return False
    return _IDS.issuperset(items) or _all_ids(items)


def _text(s: object) -> bool:
    """A valid `str = Field(min_length=1)`."""
    return type(s) is str and s != "" and _surrogate_free(s)


def _justified(j: object) -> bool:
    """A valid `Justification`, its citations inline (see `_citations`)."""
    if type(j) is not Justification:
        return False
    d = j.__dict__
    utility, cited = d["utility"], d["cited"]
    if (
        type(utility) is not float
        or utility - utility != 0.0
        or type(cited) is not list
        or not _text(d["rationale"])
    ):
        return False
    for c in cited:
        if type(c) is not CardCitation:
            return False
        d = c.__dict__
        card, contribution = d["card"], d["contribution"]
        if (
            type(card) is not str
            or type(contribution) is not float
            or contribution - contribution != 0.0
            or (card not in _IDS and not _all_ids((card,)))
        ):
            return False
    return True


def _is_kind(d: dict[str, Any], kind: str) -> bool:
    found = d["kind"]
    return type(found) is str and found == kind


def _offer_move_valid(kind: str) -> Callable[[dict[str, Any]], bool]:
    """The check of `Propose`, `Accept` or `Reject` (by `kind`), which have the same fields."""

    def valid(d: dict[str, Any]) -> bool:
        return _is_kind(d, kind) and _ids_dict(d["offer"]) and _justified(d["justification"])

    return valid


def _rank_valid(d: dict[str, Any]) -> bool:
    ranking = d["ranking"]
    return (
        _is_kind(d, "rank")
        and _ids_list(ranking)
        and len(ranking) >= 1
        and _justified(d["justification"])
    )


def _critique_valid(d: dict[str, Any]) -> bool:
    candidate, suggestion = d["candidate"], d["suggestion"]
    return (
        _is_kind(d, "critique")
        and type(candidate) is str
        and (candidate in _IDS or _all_ids((candidate,)))
        and _text(d["text"])
        and (suggestion is None or _ids_dict(suggestion))
        and _justified(d["justification"])
    )


def _vote_valid(v: object) -> bool:
    if type(v) is not Vote:
        return False
    d = v.__dict__
    min_power, max_power = d["min_power"], d["max_power"]
    return (
        _is_kind(d, "vote")
        and _ids_dict(d["offer"])
        and type(min_power) is int
        and min_power >= 1
        and type(max_power) is int
        and max_power >= 1
        and _justified(d["justification"])
    )


def _votes_valid(d: dict[str, Any]) -> bool:
    votes = d["votes"]
    return (
        _is_kind(d, "votes")
        and type(votes) is list
        and all(_vote_valid(v) for v in votes)
        and _justified(d["justification"])
    )


_MOVE_CHECKS: Final[dict[type[BaseModel], Callable[[dict[str, Any]], bool]]] = {
    Propose: _offer_move_valid("propose"),
    Accept: _offer_move_valid("accept"),
    Reject: _offer_move_valid("reject"),
    Rank: _rank_valid,
    Critique: _critique_valid,
    Votes: _votes_valid,
}
#: The move types `revalidates` knows (any other: False).
REVALIDATED: Final = frozenset(_MOVE_CHECKS)


def revalidates(move: BaseModel) -> bool:
    """Whether validating `dump_move(move)` as `type(move)` (or as a discriminated union
    of move types that includes it) gives back a model equal to `move`, of its type. False
    for a subclass, a type not in `REVALIDATED`, or any value validation would refuse
    or change (then validate the dump to know what it makes of it)."""
    valid = _MOVE_CHECKS.get(type(move))
    if valid is None:
        return False
    try:
        return valid(move.__dict__)
    except KeyError:  # a field left out (`model_construct`)
        return False
