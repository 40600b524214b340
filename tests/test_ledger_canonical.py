"""The fast canonical-JSON path gives exactly the bytes of rfc8785, or defers to it."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from constituencies.hashing import canonical_json, fast_path_applies


def _reference(value: Any) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(value)
    except Exception as exc:  # noqa: BLE001 - compare failure with failure
        return type(exc)


def _ours(value: Any) -> bytes | type[Exception]:
    try:
        return canonical_json(value)
    except Exception as exc:  # noqa: BLE001
        return type(exc)


edge_floats = st.sampled_from(
    [
        0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 1e-4, 9.999999999999999e-5, 1e-6, 1e-7, 1.5e-7, 1e15 + 0.5,
        1e16, 1e21, 1e22, 123456789012345.6, 2.0**53, 2.0**53 + 2, 5e-324, 2.2250738585072014e-308,
        1.7976931348623157e308, math.inf, -math.inf, math.nan, 0.30000000000000004, 4.35, 333333333.3333333,
    ]
)
floats = st.one_of(edge_floats, st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e6, 1e6))
ints = st.one_of(
    st.integers(-(2**53) - 2, -(2**53) + 2),
    st.integers(2**53 - 2, 2**53 + 2),
    st.integers(-(2**64), 2**64),
    st.integers(-1000, 1000),
)
# Text from the whole of Unicode: controls, astral characters, lone surrogates included.
texts = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=()), max_size=12)
keys = st.one_of(texts, st.sampled_from(["a", "b", "\ue000", "\U0001f600", "\ud800", "A", "é", ""]))
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=25,
)


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
@example({"\ue000": 1, "\U0001f600": 2})  # code point order differs from UTF-16 order
@example({"a": "\ud800"})
@example([1e21, 1e-7, 1e16, 1e-5, 2.0, -0.0, 0.1])
@example({"n": 2**53 - 1, "m": -(2**53) + 1, "o": 2**53})
def test_same_bytes_as_rfc8785(value: Any) -> None:
    assert _ours(value) == _reference(value)


@settings(max_examples=2000)
@given(st.integers(0, 2**64 - 1))
def test_any_double_bit_pattern(bits: int) -> None:
    value = struct.unpack("<d", struct.pack("<Q", bits))[0]
    assert _ours([value, {"x": value}]) == _reference([value, {"x": value}])


def test_fast_path_taken_for_envelope_shapes() -> None:
    envelope = {
        "v": 1, "session": "s", "actor": "residents", "seq": 3, "kind": "move", "ts": "2026-01-01T00:00:00Z",
        "body": {"move": {"justification": {"utility": 0.4213, "cited": [{"card": "c", "contribution": 0.3}]}},
                 "note": "naïve — ok", "deadline_s": 30.0, "half": 30.5, "zero": -0.0, "big": 9007199254740991.0},
    }
    assert fast_path_applies(envelope)
    assert canonical_json(envelope) == rfc8785.dumps(envelope)


@pytest.mark.parametrize(
    "value",
    [2.0**53 + 2, 1e16 + 1.5, 1e-5, math.nan, 2**53, {"\U0001f600": 1}, {1: 2}, True.__class__, object()],
)
def test_fast_path_refused(value: Any) -> None:
    assert not fast_path_applies(value)


class _Scores(BaseModel):
    name: str
    scores: dict[str, float]
    nested: list[dict[str, Any]]


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=4), st.floats(allow_nan=False, allow_infinity=False, width=32), max_size=6))
def test_models_with_integral_floats_serialise_like_their_dump(scores: dict[str, float]) -> None:
    # A model's fresh dump is converted in place (integral floats to ints): same bytes as
    # rfc8785 of the dump, and the model itself is untouched.
    model = _Scores(name="x", scores=scores, nested=[{"deadline_s": 30.0, "w": [1.0, 0.25]}])
    before = model.model_dump(mode="json")
    assert canonical_json(model) == rfc8785.dumps(model.model_dump(mode="json"))
    assert model.model_dump(mode="json") == before
    assert type(model.nested[0]["deadline_s"]) is float


def test_deep_nesting_falls_back_to_rfc8785() -> None:
    # orjson refuses more than 254 levels; the slow path serialises (or refuses) instead.
    deep: Any = 1
    for _ in range(300):
        deep = [deep]
    assert _ours(deep) == _reference(deep)
    from constituencies.hashing import canonical_json_fast

    assert canonical_json_fast(deep) is None
    assert canonical_json_fast({"a": "\ud800"}) is None


@pytest.mark.parametrize(
    "value",
    [
        {"utility": 1.0, "rationale": "worth 1.0, or [2.0] or {3.0}"},  # look-alikes in a string
        {"a:1.0,": 2.0, "b": "x", "c": [-0.0, 0.0, -7.0, 1.5]},  # in a key; signed zero
        [1.0, "1.0]", 2.0],
        {"n": 9007199254740991.0, "s": ",5.0}"},
        {"x1.0,": 1.0},
        2.0,
        -0.0,
    ],
)
def test_integral_floats_beside_look_alike_strings(value: Any) -> None:
    # Integral floats are written as the equal integers, and nothing else is: not the
    # strings beside them that look like one.
    from constituencies.hashing import canonical_json_fast

    assert _ours(value) == _reference(value)
    assert canonical_json_fast(value) == _reference(value)
