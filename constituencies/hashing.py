"""Content hashes of models: SHA-256 over RFC 8785 canonical JSON.

The ledger signs the same canonical JSON (`accord.ledger.envelope`), so this is also
where it is made fast. `rfc8785.dumps` is pure Python and was most of the cost of signing and checking an
envelope. For the values Accord actually signs, ``json.dumps(value, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`` (C-accelerated) gives the same bytes; this
module uses it only when that is provable from the value's shape, and falls back to
`rfc8785.dumps` otherwise (which then also raises for values JCS cannot represent).

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
import json
import math
from typing import Any

import rfc8785
from pydantic import BaseModel

__all__ = ["canonical_json", "content_hash", "fast_path_applies"]

_MAX_SAFE_INT = 2**53 - 1
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


_FAST, _CONVERT, _SLOW = 0, 1, 2


def _shape(value: Any) -> int:
    """_FAST if ``json.dumps`` gives the RFC 8785 bytes of ``value`` as it is (lone
    surrogates in strings aside: they are caught when the result is encoded), _CONVERT
    if it does once integral floats are made ints, _SLOW otherwise."""
    verdict = _FAST
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is dict:
            for key, child in item.items():
                if type(key) is not str or not (key.isascii() or ord(max(key)) <= 0xFFFF):
                    return _SLOW  # beyond the BMP: UTF-16 order is not code-point order
                push(child)
            continue
        if kind is int:
            if -_MAX_SAFE_INT <= item <= _MAX_SAFE_INT:
                continue
            return _SLOW
        if kind is float:
            if not math.isfinite(item):
                return _SLOW
            if item.is_integer():
                if -_MAX_SAFE_INT <= item <= _MAX_SAFE_INT:
                    verdict = _CONVERT
                    continue
                return _SLOW
            if "e" in repr(item):
                return _SLOW
            continue
        if kind is list or kind is tuple:
            stack.extend(item)
            continue
        return _SLOW
    return verdict


def _ints_for_integral_floats(value: Any) -> Any:
    kind = type(value)
    if kind is float and value.is_integer():
        return int(value)
    if kind is dict:
        return {k: _ints_for_integral_floats(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_ints_for_integral_floats(v) for v in value]
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
    """Whether `canonical_json` can serialise ``value`` with ``json.dumps``."""
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
            return _dumps(value).encode("utf-8")
        except (UnicodeEncodeError, RecursionError):
            pass  # a lone surrogate (or a very deep value): let rfc8785 decide
    return rfc8785.dumps(value)


def content_hash(value: BaseModel | Any) -> str:
    """'sha256:<hex>' of the canonical JSON, so two equal models always hash alike."""
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()
