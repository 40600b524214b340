"""`Signer.seal` builds an envelope's canonical bytes from its parts and the envelope
without validation when it can prove that gives what validating and serialising gives;
here the two ways are compared on any JSON value, and the shortcuts in
`constituencies.hashing` they rest on are checked against their slow forms."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import accord.ledger.envelope as envelope_module
from accord.ledger import Envelope, Identity, PublicKeys, Signer
from accord.ledger.envelope import ENVELOPE_VERSION
from constituencies import hashing
from constituencies.hashing import canonical_json, canonical_json_fast, json_string
from tests.test_ledger_canonical import json_values, texts

IDENTITY = Identity.generate("residents")
TS = "2026-01-01T00:00:00.000000Z"


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways read the clock; fixed, they must give the very same bytes (Ed25519
    signatures are deterministic)."""
    monkeypatch.setattr(envelope_module, "now_iso", lambda: TS)


def _both(kind: Any, body: Any, *, session: Any = "s-1", actor: Any = None, seq: Any = 7) -> tuple[Any, Any]:
    """(what `seal` gives, what the validating way gives), each an envelope or the type of
    the error raised."""
    identity = IDENTITY if actor is None else Identity(actor, IDENTITY.private_key)
    out = []
    for way in ("seal", "_seal_validated"):
        signer = Signer(identity, session, next_seq=seq)
        try:
            env = signer.seal(kind, body) if way == "seal" else signer._seal_validated(kind, body, seq)
        except Exception as exc:  # noqa: BLE001 - compare failure with failure
            out.append(type(exc))
            continue
        if way == "seal":
            assert signer.next_seq == seq + 1
        out.append(env)
    return out[0], out[1]


def _assert_same(fast: Any, slow: Any) -> None:
    if isinstance(slow, type):
        assert fast is slow
        return
    assert isinstance(fast, Envelope)
    assert fast.canonical() == slow.canonical()
    assert fast == slow and fast.sig == slow.sig
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump() == slow.model_dump()
    assert fast.__pydantic_extra__ == slow.__pydantic_extra__
    assert fast.canonical() == canonical_json(fast.model_dump(mode="json"))
    keys = PublicKeys({fast.actor: IDENTITY.public_key})
    assert fast.verify(keys)
    if canonical_json_fast(fast.body) is not None:  # (2.0**53 signs, and parses as an int JCS refuses)
        parsed = Envelope.parse(fast.canonical())
        assert parsed.canonical() == fast.canonical() and parsed.verify(keys)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.one_of(texts, st.sampled_from(["move", "round", "é", "\U0001f600"])), json_values, max_size=6))
@example({"move": {"offer": {"a": "b"}, "justification": {"utility": 1.0, "cited": [], "rationale": "x"}}})
@example({"x": (1, 2.0, [3.5, -0.0])})
@example({"lone": "\ud800"})
@example({"big": 2**53, "inf": math.inf})
@example({1: "not a string key"})  # type: ignore[dict-item]
def test_seal_gives_what_validating_gives(body: dict[str, Any]) -> None:
    _assert_same(*_both("move", body))


@pytest.mark.parametrize(
    ("kind", "session", "actor", "seq"),
    [
        ("call", "s-1", "residents", 1),
        ("k\u2028\"\\", "sé\n", "a\x01b", 2**53 - 1),  # escapes in every string member
        ("\ud800", "s", "residents", 1),  # a lone surrogate in the kind
        ("call", "\udfff", "residents", 1),  # ... in the session
        ("call", "s", "\ud800", 1),  # ... in the actor
        ("call", "s", "residents", 2**53),  # beyond RFC 8785's exact integers
        ("call", "s", "residents", 0),  # refused by validation
        ("call", "s", "residents", True),  # not an exact int
        ("call", "s", "residents", 3.0),
        (b"call", "s", "residents", 1),  # not a string
        ("call", 5, "residents", 1),
    ],
)
def test_seal_gives_what_validating_gives_for_odd_members(kind: Any, session: Any, actor: str, seq: Any) -> None:
    _assert_same(*_both(kind, {"a": [1, 0.5]}, session=session, actor=actor, seq=seq))


def test_seal_takes_the_fast_way_for_ordinary_envelopes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Envelope:
        raise AssertionError("validated")

    monkeypatch.setattr(Signer, "_seal_validated", refuse)
    signer = Signer(IDENTITY, "s-1")
    body = {"round": 3, "move": {"offer": {"hours": "late"}, "justification": {"utility": 1.0, "cited": []}}}
    env = signer.seal("move", body)
    assert env.v == ENVELOPE_VERSION and env.seq == 1 and env.ts == TS
    assert env.body == body and env.body is not body  # a copy, as validation makes
    assert env.canonical().startswith(b'{"actor":"residents","body":{"move":{"justification":{"cited":[],"utility":1},')
    assert signer.seal("move", body).seq == 2


def test_a_signer_whose_identity_or_session_changes_seals_with_the_new_ones() -> None:
    signer = Signer(IDENTITY, "s-1")
    first = signer.seal("call", {})
    signer.session = "s-2"
    second = signer.seal("call", {})
    assert (first.session, second.session) == ("s-1", "s-2")
    assert b'"session":"s-2"' in second.canonical()


# -- the shortcuts in constituencies.hashing --------------------------------------------


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
@example([1e21, 1e-7, 1e16, 1e-5, 2.0, -0.0, 0.1, 1e-4, 9.999999999999999e-05, 9999999999999998.0])
def test_canonical_json_fast_is_rfc8785_or_nothing(value: Any) -> None:
    fast = canonical_json_fast(value)
    if fast is not None:
        assert fast == rfc8785.dumps(value)
        assert fast == canonical_json(value)


def test_canonical_json_fast_leaves_its_value_alone() -> None:
    value = {"a": [1.0, {"b": 2.0}], "c": (3.0,), "d": {"e": 0.5}}
    shared = value["d"]
    assert canonical_json_fast(value) == b'{"a":[1,{"b":2}],"c":[3],"d":{"e":0.5}}'
    assert value == {"a": [1.0, {"b": 2.0}], "c": (3.0,), "d": {"e": 0.5}}
    assert type(value["a"][0]) is float and value["d"] is shared
    converted = hashing._ints_for_integral_floats(value)
    assert converted["d"] is shared  # nothing to convert beneath: shared, not copied


@given(texts)
@example("\ud800")
@example("\u2028\x7f\x00\"\\/")
def test_json_string_is_rfc8785(value: str) -> None:
    try:
        expected: bytes | None = rfc8785.dumps(value)
    except Exception:  # noqa: BLE001 - a lone surrogate
        expected = None
    assert json_string(value) == expected


def _reference_float_shape(value: float) -> int:
    """`_shape` of a float as it was decided before the range shortcut: by ``repr``."""
    if not math.isfinite(value):
        return hashing._SLOW
    if value.is_integer():
        return hashing._CONVERT if abs(value) <= 2**53 - 1 else hashing._SLOW
    return hashing._SLOW if "e" in repr(value) else hashing._FAST


def _neighbours(x: float, n: int = 64) -> list[float]:
    bits = struct.unpack("<q", struct.pack("<d", x))[0]
    return [struct.unpack("<d", struct.pack("<q", b))[0] for b in range(bits - n, bits + n + 1)]


@pytest.mark.parametrize("edge", [1e-4, 1e16, 2.0**53, 1.0, 5e-324])
def test_the_float_range_shortcut_agrees_with_repr_near_its_ends(edge: float) -> None:
    for x in _neighbours(edge):
        for value in (x, -x):
            assert hashing._shape([value]) == _reference_float_shape(value), value
            assert hashing._shape(value) == _reference_float_shape(value), value


@settings(max_examples=3000)
@given(st.integers(0, 2**64 - 1))
def test_the_float_range_shortcut_agrees_with_repr_on_any_double(bits: int) -> None:
    value = struct.unpack("<d", struct.pack("<Q", bits))[0]
    assert hashing._shape({"x": [value]}) == _reference_float_shape(value)


def test_now_iso_is_the_iso_format_of_the_time_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real clock, not the fixed one
    import re
    import time
    from datetime import UTC, datetime

    for ns in (0, 1_700_000_000_123_456_789, 1_700_000_000_999_999_999, 1_700_000_001_000_000_000, 253_402_300_799_000_001_000):
        monkeypatch.setattr(time, "time_ns", lambda ns=ns: ns)
        expected = datetime.fromtimestamp(ns // 1000 / 1e6, UTC).replace(microsecond=ns // 1000 % 1_000_000)
        assert envelope_module.now_iso() == expected.isoformat(timespec="microseconds").replace("+00:00", "Z")
    monkeypatch.undo()
    stamp = envelope_module.now_iso()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    now = datetime.now(UTC)
    assert abs((datetime.fromisoformat(stamp.replace("Z", "+00:00")) - now).total_seconds()) < 5
