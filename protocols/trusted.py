"""Building the events and moves of every turn from values our own typed code produced.

A protocol emits a call, and a built-in strategy a move and its justification, on every
turn. Validating what our own code has just built from already validated inputs (the
agenda, the value model, the protocol's state) was a fifth of the time a simulated
negotiation took; pydantic's `model_construct` skips validation but is slower still on
models this small. The builders here make the very instance validation would: every
field in declaration order with its default, the same `model_fields_set`, equal to a
validated one and dumping the same (tests/test_fast_path.py checks each against
validation, so a field added to one of these models fails it until the builder follows).

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
_setattr = object.__setattr__


def _build(cls: type[M], data: dict[str, Any], fields_set: set[str]) -> M:
    obj = _new(cls)
    _setattr(obj, "__dict__", data)
    _setattr(obj, "__pydantic_fields_set__", fields_set)
    _setattr(obj, "__pydantic_extra__", None)
    _setattr(obj, "__pydantic_private__", None)
    return obj


def justification(utility: float, cited: list[CardCitation], rationale: str) -> Justification:
    """As `Justification(utility=..., cited=..., rationale=...)`; `rationale` non-empty."""
    if not rationale:
        raise ValueError("a justification needs a rationale")
    return _build(
        Justification,
        {"utility": float(utility), "cited": cited, "rationale": rationale},
        {"utility", "cited", "rationale"},
    )


def propose(offer: dict[str, str], justification: Justification) -> Propose:
    """As `Propose(offer=..., justification=...)`."""
    return _build(
        Propose,
        {"kind": "propose", "offer": offer, "justification": justification},
        {"offer", "justification"},
    )


def accept(offer: dict[str, str], justification: Justification) -> Accept:
    """As `Accept(offer=..., justification=...)`."""
    return _build(
        Accept,
        {"kind": "accept", "offer": offer, "justification": justification},
        {"offer", "justification"},
    )


def reject(offer: dict[str, str], justification: Justification) -> Reject:
    """As `Reject(offer=..., justification=...)`."""
    return _build(
        Reject,
        {"kind": "reject", "offer": offer, "justification": justification},
        {"offer", "justification"},
    )


_TURN_CALL_FIELDS = frozenset(
    {"to", "round", "deadline_round", "allowed", "standing_offer", "offered_by", "note"}
)


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
    return _build(
        Call,
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
        set(_TURN_CALL_FIELDS),
    )
