"""`Envelope.parse`'s fast path (strict JSON validation in pydantic-core) accepts and
refuses exactly what the lax path did, with the same values and the same reasons."""

from __future__ import annotations

import json

import pytest

from accord.ledger import Envelope, EnvelopeError, Identity, PublicKeys, Signer

_BASE = '{"actor":"a","body":%s,"kind":"k","seq":%s,"session":"s","sig":"","ts":"t","v":1}'

PAYLOADS = [
    _BASE % ("{}", "1"),
    _BASE % ('{"a":1,"b":2,"a":3}', "1"),  # duplicate keys: the last wins
    _BASE % ('{"x":"\\ud800"}', "1"),  # a lone surrogate: only the lax path takes it
    _BASE % ('{"x":123456789012345678901234567890,"y":1e400,"z":-0.0,"w":0.1,"v":5e-324}', "1"),
    _BASE % ('{"x":NaN,"y":-Infinity}', "1"),
    _BASE % ('{"x":"\\u0000\\u2028é\\n","y":[1,{"b":null,"c":true}]}', "1"),
    _BASE % ("{}", "1.0"),
    _BASE % ("{}", '"2"'),
    _BASE % ("{}", "true"),
    _BASE % ("{}", "0"),
    _BASE % ("[]", "1"),
    (_BASE % ("{}", "1")).replace('"v":1', '"v":1,"extra":2'),
    (_BASE % ("{}", "1")).replace('"actor":"a",', ""),
    _BASE % ('{"a":' + "[" * 300 + "]" * 300 + "}", "1"),  # deeper than pydantic-core goes
    _BASE % ("{}", "1") + " trailing",
    "",
    "null",
    "\x00 not json at all",
]


def _outcome(parse, data):  # noqa: ANN001, ANN202
    try:
        env = parse(data)
    except EnvelopeError as exc:
        return "refused", str(exc)
    return "parsed", repr(env.__dict__), [type(v) for v in env.body.values()]  # repr: nan != nan


@pytest.mark.parametrize("text", PAYLOADS)
@pytest.mark.parametrize("as_bytes", [True, False])
def test_the_fast_path_changes_no_outcome(text: str, as_bytes: bool) -> None:
    data = text.encode() if as_bytes else text
    assert _outcome(Envelope.parse, data) == _outcome(Envelope._parse_lax, data)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\x00",  # not UTF-8
        b"\xef\xbb\xbf" + (_BASE % ("{}", "1")).encode(),  # a UTF-8 byte order mark
        (_BASE % ("{}", "1")).encode("utf-16"),  # json.loads detects UTF-16
    ],
)
def test_odd_encodings_take_the_lax_path(data: bytes) -> None:
    assert _outcome(Envelope.parse, data) == _outcome(Envelope._parse_lax, data)


def test_the_reasons_are_unchanged() -> None:
    with pytest.raises(EnvelopeError, match=r"^not JSON: Expecting value: line 1 column 1 \(char 0\)$"):
        Envelope.parse(b"? not json at all")
    with pytest.raises(EnvelopeError, match=r"^malformed envelope: seq: Input should be greater than or equal to 1$"):
        Envelope.parse(_BASE % ("{}", "0"))
    with pytest.raises(EnvelopeError, match=r"^malformed envelope: actor: Field required$"):
        Envelope.parse((_BASE % ("{}", "1")).replace('"actor":"a",', ""))
    with pytest.raises(EnvelopeError, match=r"^malformed envelope: v: Input should be a valid integer"):
        Envelope.parse((_BASE % ("{}", "1")).replace('"v":1', '"v":"one"'))
    with pytest.raises(EnvelopeError, match=r"^envelope of 307200 bytes exceeds 262144$"):
        Envelope.parse(b" " * (300 * 1024))
    # Lax, as before: a seq of "2" is 2 (and then its signature must hold for that).
    assert Envelope.parse(_BASE % ("{}", '"2"')).seq == 2


def test_a_signed_envelope_parses_to_itself_and_verifies() -> None:
    alice = Identity.generate("alice")
    sealed = Signer(alice, "s").seal("move", {"round": 1, "move": {"kind": "offer", "u": 0.4213, "t": "é"}})
    parsed = Envelope.parse(sealed.canonical())
    assert parsed == sealed
    assert parsed.verify(PublicKeys({"alice": alice.public_key}))
    assert parsed.canonical() == sealed.canonical()
    assert json.loads(parsed.canonical()) == json.loads(sealed.canonical())
