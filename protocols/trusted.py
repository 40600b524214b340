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
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from protocols.events import Call
from protocols.moves import Accept, CardCitation, Justification, Propose, Reject

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
