"""Content hashes of models: SHA-256 over RFC 8785 canonical JSON.

The ledger signs the same canonical JSON (`accord.ledger.envelope`), so this is also
where it is made fast. `rfc8785.dumps` is pure Python and was most of the cost of signing
and checking an envelope. For the values Accord actually signs, ``json.dumps(value,
sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` gives the same bytes, and so
does orjson with sorted keys, which this module uses (13 times faster than the stdlib's C
encoder on an envelope's body). It does so only when that is provable from the value's
shape, and falls back to `rfc8785.dumps` otherwise (which then also raises for values JCS
cannot represent).

Why each condition makes the two agree:

* strings: both escape exactly ``"``, ``\\``, and the controls below U+0020 (``\\b \\t \\n
  \\f \\r`` by name, the rest as lower-case ``\\u00xx``) and write everything else as
  UTF-8. A lone surrogate cannot be encoded as UTF-8, so such a value falls back;
* object keys: JCS sorts by UTF-16 code units, Python by code points; the two orders
  agree when no key has a character beyond the BMP (a surrogate pair sorts below
  U+E000..U+FFFF in UTF-16, above them by code point), so such keys fall back;
* integers: JCS numbers are IEEE doubles; within ±(2^53 - 1) an integer is exact and
  both write its decimal digits;
* floats: JCS writes ECMAScript's shortest round-trip form, as ``repr`` does, but
  ECMAScript drops ``.0`` from integral values and switches to exponents at other
  thresholds than ``repr`` (1e21 and 1e-7 against 1e16 and 1e-4). So finite,
  non-integral floats whose ``repr`` has no exponent take the fast path as they are
  (there the digits and the decimal point are the same). Integral floats within
  ±2^53 (``30.0``, a common timeout; ``-0.0``) are written as the equal ``int``: below
  2^53 neighbouring doubles are at most 1 apart, so the shortest digits that round-trip
  are the integer's own, which is what ECMAScript writes (and ``-0`` is ``0`` in both).
  Any other float falls back;
* only the exact types ``dict``, ``list``, ``tuple``, ``str``, ``int``, ``float``,
  ``bool`` and ``None``: subclasses (enums, say) may serialise differently.

`tests/test_ledger_canonical.py` checks the agreement property-based, edge floats
included.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson
import rfc8785
from pydantic import BaseModel

__all__ = ["canonical_json", "canonical_json_fast", "content_hash", "fast_path_applies", "json_string"]

_MAX_SAFE_INT = 2**53 - 1
# orjson with sorted keys writes what ``json.dumps(value, sort_keys=True, separators=(",",
# ":"), ensure_ascii=False)`` writes for every value `_shape` lets through (the same
# escapes, UTF-8, shortest round-trip floats, keys in code-point order), 13 times faster
# on an envelope's body. It refuses, with `orjson.JSONEncodeError`, what the stdlib
# encoder could not encode as UTF-8 (a lone surrogate) or nests deeper than 254 levels:
# those take the slow path.
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_ORJSON_OPTIONS)


_FAST, _CONVERT, _SLOW = 0, 1, 2


# Finite floats whose magnitude is in [1e-4, 1e16) have no exponent in their ``repr``:
# ``repr`` writes the shortest digits that round back to the float, and switches to an
# exponent only when they would sit more than 4 places after the point or 16 before
# it. Rounding is monotonic, so for a float at least 1e-4 (the double nearest 1e-4,
# itself written "0.0001") those digits are at least 1e-4, and for one below 1e16 they
# are below 1e16. `_shape` uses this to skip ``repr`` for most floats; outside the range
# it asks ``repr`` (tests/test_ledger_batch_seal.py checks the two agree bit pattern by
# bit pattern near both ends).
_PLAIN_LOW, _PLAIN_HIGH = 1e-4, 1e16


def _float_shape(item: float) -> int:
    """`_shape` of one float, the slow way (any float)."""
    if not math.isfinite(item):
        return _SLOW
    if item.is_integer():
        return _CONVERT if -_MAX_SAFE_INT <= item <= _MAX_SAFE_INT else _SLOW
    return _SLOW if "e" in repr(item) else _FAST


def _shape(value: Any) -> int:
    """_FAST if `_dumps` (orjson) gives the RFC 8785 bytes of ``value`` as it is (lone
    surrogates in strings aside: orjson refuses them), _CONVERT
    if it does once integral floats are made ints, _SLOW otherwise.

    Every envelope is checked here before it is signed, so the loop is lean: only
    containers go on the stack; their scalar children are checked where they are met."""
    kind = type(value)
    if kind is not dict and kind is not list and kind is not tuple:
        return _scalar_shape(value)
    verdict = _FAST
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        item = pop()
        if type(item) is dict:
            for key in item:
                if type(key) is not str or not (key.isascii() or ord(max(key)) <= 0xFFFF):
                    return _SLOW  # beyond the BMP: UTF-16 order is not code-point order
            children: Any = item.values()
        else:
            children = item
        for child in children:
            kind = type(child)
            if kind is str:
                continue
            if kind is float:
                if _PLAIN_LOW <= child < _PLAIN_HIGH or -_PLAIN_HIGH < child <= -_PLAIN_LOW:
                    if child.is_integer():
                        if -_MAX_SAFE_INT <= child <= _MAX_SAFE_INT:
                            verdict = _CONVERT
                            continue
                        return _SLOW
                    continue
                shape = _float_shape(child)
                if shape == _SLOW:
                    return _SLOW
                if shape == _CONVERT:
                    verdict = _CONVERT
                continue
            if kind is int:
                if -_MAX_SAFE_INT <= child <= _MAX_SAFE_INT:
                    continue
                return _SLOW
            if kind is dict or kind is list or kind is tuple:
                push(child)
                continue
            if child is None or kind is bool:
                continue
            return _SLOW
    return verdict


def _scalar_shape(value: Any) -> int:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return _FAST
    if kind is int:
        return _FAST if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT else _SLOW
    if kind is float:
        return _float_shape(value)
    return _SLOW


def _ints_for_integral_floats(value: Any) -> Any:
    """``value`` with integral floats made ints, sharing every container that has none
    beneath it (only the serialised bytes matter: a tuple may stay a tuple)."""
    kind = type(value)
    if kind is float:
        return int(value) if value.is_integer() else value
    if kind is dict:
        copied: dict[Any, Any] | None = None
        for key, child in value.items():
            kind = type(child)
            if kind is float:
                if child.is_integer():
                    if copied is None:
                        copied = dict(value)
                    copied[key] = int(child)
            elif kind is dict or kind is list or kind is tuple:
                new = _ints_for_integral_floats(child)
                if new is not child:
                    if copied is None:
                        copied = dict(value)
                    copied[key] = new
        return value if copied is None else copied
    if kind is list or kind is tuple:
        items: list[Any] | None = None
        for i, child in enumerate(value):
            kind = type(child)
            if kind is float:
                if child.is_integer():
                    if items is None:
                        items = list(value)
                    items[i] = int(child)
            elif kind is dict or kind is list or kind is tuple:
                new = _ints_for_integral_floats(child)
                if new is not child:
                    if items is None:
                        items = list(value)
                    items[i] = new
        return value if items is None else items
    return value


def _ints_in_place(value: Any) -> None:
    """`_ints_for_integral_floats` for a value nobody else holds (a fresh model dump):
    rebuilding a 5 MB session file just to turn a few floats into ints took longer than
    serialising it."""
    stack = [value]
    while stack:
        item = stack.pop()
        pairs = item.items() if type(item) is dict else enumerate(item)
        for key, child in pairs:
            kind = type(child)
            if kind is float and child.is_integer():
                item[key] = int(child)
            elif kind is dict or kind is list:
                stack.append(child)


def fast_path_applies(value: Any) -> bool:
    """Whether `canonical_json` can serialise ``value`` with its fast path (orjson)."""
    return _shape(value) != _SLOW


def canonical_json(value: BaseModel | Any) -> bytes:
    """RFC 8785 (JCS) bytes of a pydantic model or a JSON-compatible value."""
    owned = isinstance(value, BaseModel)
    if owned:
        value = value.model_dump(mode="json")
    shape = _shape(value)
    if shape != _SLOW:
        if shape == _CONVERT:
            if owned and type(value) is dict:
                _ints_in_place(value)
            else:
                value = _ints_for_integral_floats(value)
        try:
            return _dumps(value)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate (or a very deep value): let rfc8785 decide
    return rfc8785.dumps(value)


def canonical_json_fast(value: Any) -> bytes | None:
    """RFC 8785 bytes of the plain JSON value ``value`` where the fast path provably gives
    them, else None (the caller then takes its slow path, which may also refuse the
    value). Exactly `canonical_json(value)` whenever it is not None; ``value`` is left as
    it is (integral floats are converted in a copy).

    For callers that hold values they did not get from a pydantic dump (an envelope's
    body): a None tells them that serialising the value another way (validating it,
    dumping it) might not give the same bytes."""
    shape = _shape(value)
    if shape == _SLOW:
        return None
    try:
        if shape == _CONVERT:
            value = _ints_for_integral_floats(value)
        return _dumps(value)
    except orjson.JSONEncodeError:
        return None  # a lone surrogate, or a very deep value: the caller's slow way decides


def json_string(text: str) -> bytes | None:
    """The RFC 8785 bytes of the string ``text`` (quoted, escaped, UTF-8), or None if it
    has a lone surrogate (which RFC 8785 cannot represent). Only for exact ``str``."""
    try:
        return _dumps(text)
    except orjson.JSONEncodeError:
        return None


def content_hash(value: BaseModel | Any) -> str:
    """'sha256:<hex>' of the canonical JSON, so two equal models always hash alike."""
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()
