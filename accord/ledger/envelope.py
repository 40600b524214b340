"""Signed envelopes: every message on the bus and in the ledger is one.

The signature is Ed25519 over the RFC 8785 canonical JSON of the envelope without its
`sig` field, so any party re-serialising the JSON gets the same bytes to check.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from accord.ledger.identity import Identity, PublicKeys, b64, unb64
from constituencies.hashing import canonical_json, canonical_json_fast, json_string

ENVELOPE_VERSION = 1
MAX_ENVELOPE_BYTES = 256 * 1024
# The chair's signed `session.open` carries the whole session file (so that the ledger
# alone can be resumed and verified): ~5 MB at 1,000 delegates. Only that one envelope
# (actor "chair", seq 1, kind "session.open") may be this large; everything else,
# and every delegate message, keeps MAX_ENVELOPE_BYTES.
MAX_OPENING_BYTES = 64 * 1024 * 1024


class EnvelopeError(ValueError):
    """A message that is not a well-formed, correctly signed envelope."""


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = ENVELOPE_VERSION
    session: str
    actor: str
    seq: int = Field(ge=1, description="Per-actor sequence number: gaps reveal a lost message.")
    kind: str
    body: dict[str, Any]
    ts: str = Field(description="Sender's clock, ISO 8601 UTC; informative, not ordering.")
    sig: str = ""

    # Serialising RFC 8785 JSON is the costly part of handling an envelope, so the
    # canonical bytes are kept once known for certain: built by `Signer.seal`, or the
    # received bytes once `verify` has proved them canonical (see `unsigned_wire`).
    # Envelopes are immutable: never mutate `body` in place. (On hot paths the caches are
    # read and written through `__pydantic_private__` directly: pydantic's attribute
    # hooks for private attributes cost more than the rest of a lookup.)
    _canonical: bytes | None = PrivateAttr(default=None)
    _wire: bytes | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Envelope):
            return NotImplemented
        return self.__dict__ == other.__dict__  # the fields, not the caches

    def __hash__(self) -> int:
        return hash((self.session, self.actor, self.seq, self.sig))

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Envelope:
        copied = super().model_copy(update=update, deep=deep)
        if update:
            private = copied.__pydantic_private__
            assert private is not None
            private["_canonical"] = None
            private["_wire"] = None
        return copied

    @classmethod
    def _trusted(
        cls, session: str, actor: str, seq: int, kind: str, body: dict[str, Any], ts: str, sig: str, canonical: bytes
    ) -> Envelope:
        """An envelope from values `Signer._seal_fast` has checked to be what validation
        would keep, without validating them again (for a self-made envelope that costs
        more than signing it). The same fields, fields-set and caches as
        ``Envelope(...)`` followed by ``model_copy(update={"sig": ...})``."""
        env = _new(cls)
        _set_dict(
            env,
            {"v": ENVELOPE_VERSION, "session": session, "actor": actor, "seq": seq, "kind": kind,
             "body": body, "ts": ts, "sig": sig},
        )
        _set_fields_set(env, set(_SEALED_FIELDS))
        _set_extra(env, None)
        _set_private(env, {"_canonical": canonical, "_wire": None})
        return env

    def signing_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json", exclude={"sig"}))

    def canonical(self) -> bytes:
        """The exact bytes stored in the ledger and hashed into it."""
        known: bytes | None = self.__pydantic_private__["_canonical"]  # type: ignore[index]
        if known is not None:
            return known
        return canonical_json(self.model_dump(mode="json"))

    def verify(self, keys: PublicKeys) -> bool:
        fast = self.wire_signature()
        return self.settle(keys, fast is not None and keys.verify(self.actor, *fast))

    def wire_signature(self) -> tuple[bytes, bytes] | None:
        """What `verify` checks first: (signature, signed bytes), the signed bytes being
        the received ones without their ``sig`` member (`unsigned_wire`); None when there
        are none (not parsed from bytes, a ``sig`` that is not base64, or not where RFC
        8785 puts it). Another process may verify them (they are plain bytes): `settle`
        takes the outcome."""
        wire: bytes | None = self.__pydantic_private__["_wire"]  # type: ignore[index]
        if wire is None:
            return None
        try:
            signature = unb64(self.sig)
        except ValueError:
            return None
        unsigned = unsigned_wire(wire, self.sig)
        return None if unsigned is None else (signature, unsigned)

    def settle(self, keys: PublicKeys, wire_verified: bool) -> bool:
        """What `verify(keys)` returns, given whether the actor's key verified the
        signature over `wire_signature()`'s bytes (False if it gave None): if it did, the
        received bytes are this envelope's canonical form (`unsigned_wire`); if not, the
        signature is checked over the re-serialised envelope, here."""
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        if wire_verified and private["_wire"] is not None:
            private["_canonical"] = private["_wire"]
            return True
        try:
            signature = unb64(self.sig)
        except ValueError:
            return False
        return keys.verify(self.actor, signature, self.signing_bytes())

    @classmethod
    def parse(cls, data: bytes | str, limit: int = MAX_ENVELOPE_BYTES) -> Envelope:
        """`limit`: MAX_OPENING_BYTES only where a chair's opening is expected."""
        if len(data) > limit:
            raise EnvelopeError(f"envelope of {len(data)} bytes exceeds {limit}")
        try:
            # Fast path (cheaper: one pass in pydantic-core, no Python dicts to
            # validate again): strict JSON validation accepts a subset of what the path
            # below accepts, with the same values. Anything it refuses (not JSON, not
            # UTF-8, a "seq" of 1.0 or "1", a lone surrogate, ...) takes that path,
            # which accepts or refuses it exactly as before, with the same reason.
            env = cls.model_validate_json(data, strict=True)
        except ValidationError:
            env = cls._parse_lax(data)
        wire = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        env.__pydantic_private__["_wire"] = wire  # type: ignore[index]
        return env

    @classmethod
    def _parse_lax(cls, data: bytes | str) -> Envelope:
        try:
            return cls.model_validate(json.loads(data))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EnvelopeError(f"not JSON: {exc}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EnvelopeError(f"malformed envelope: {where}: {first['msg']}") from None


_SIG_MEMBER = b',"sig":"'
# The setters of BaseModel's four slots, for `Envelope._trusted` (as in
# `protocols.trusted`: found once, not by name on every call).
_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
# The fields a sealed envelope was given (all but `v`, which keeps its default).
_SEALED_FIELDS = frozenset(("session", "actor", "seq", "kind", "body", "ts", "sig"))
_TS_MEMBER = b',"ts":"'


def unsigned_wire(wire: bytes, sig: str) -> bytes | None:
    """``wire`` without its top-level ``"sig"`` member, if that member sits where RFC 8785
    puts it (right before ``"ts"``: members are sorted); otherwise None.

    If the sender's signature verifies over the result, the result is the canonical JSON
    the sender signed, and so ``wire`` is exactly the canonical form of the envelope: the
    member cut out is the parsed ``sig`` and sits before the top-level ``"ts"`` (a
    ``"sig"`` cut from inside ``body`` would leave the parsed envelope without its own).
    So a good signature over these bytes saves re-serialising to check canonical form.
    """
    try:
        member = _SIG_MEMBER + sig.encode("ascii") + b'"'
    except UnicodeEncodeError:
        return None
    at = wire.rfind(_SIG_MEMBER)
    if at < 0 or not wire.startswith(member, at) or not wire.startswith(_TS_MEMBER, at + len(member)):
        return None
    return wire[:at] + wire[at + len(member) :]


def now_iso() -> str:
    """The time now, ISO 8601 UTC to the microsecond: ``2026-01-01T00:00:00.000000Z``.

    Every envelope is stamped with it: the date and time of the second are formatted
    once per second and kept, and the microseconds added (what
    ``datetime.now(UTC).isoformat(timespec="microseconds")`` gives, with "Z", in a third
    of its time)."""
    global _second
    micros = time.time_ns() // 1000
    seconds, fraction = divmod(micros, 1_000_000)
    cached = _second
    if cached[0] != seconds:
        cached = _second = (seconds, datetime.fromtimestamp(seconds, UTC).isoformat()[:19])
    return f"{cached[1]}.{fraction:06d}Z"


_second: tuple[int, str] = (-1, "")


class Signer:
    """Signs an actor's envelopes with consecutive sequence numbers."""

    def __init__(self, identity: Identity, session: str, next_seq: int = 1) -> None:
        self.identity = identity
        self.session = session
        self.next_seq = next_seq
        # (actor, session, their JSON strings or None): see `_members`.
        self._members: tuple[str, str, tuple[bytes, bytes] | None] | None = None

    @property
    def actor(self) -> str:
        return self.identity.actor

    def seal(self, kind: str, body: dict[str, Any]) -> Envelope:
        """The next envelope of this actor, signed, with its canonical bytes known.

        Every envelope of a session goes through here, so the usual case skips pydantic:
        when the fields are of the exact types the model would hold (`_seal_fast`), the
        canonical bytes are assembled from the parts and the envelope is built without
        validation. Anything else is validated and serialised as a received envelope
        would be; both ways give the same envelope and the same bytes
        (tests/test_ledger_batch_seal.py checks this against the slow way)."""
        seq = self.next_seq
        sealed = self._seal_fast(kind, body, seq)
        if sealed is None:
            sealed = self._seal_validated(kind, body, seq)
        self.next_seq = seq + 1
        return sealed

    def _seal_validated(self, kind: str, body: dict[str, Any], seq: int) -> Envelope:
        unsigned = Envelope(
            session=self.session,
            actor=self.identity.actor,
            seq=seq,
            kind=kind,
            body=body,
            ts=now_iso(),
        )
        signing = unsigned.signing_bytes()
        sig = b64(self.identity.sign(signing))
        sealed = unsigned.model_copy(update={"sig": sig})
        # The canonical form is the signed bytes with the sig member inserted where
        # RFC 8785 sorts it: before the top-level "ts", the last such member.
        at = signing.rfind(_TS_MEMBER)
        canonical = signing[:at] + _SIG_MEMBER + sig.encode("ascii") + b'"' + signing[at:]
        sealed.__pydantic_private__["_canonical"] = canonical  # type: ignore[index]
        return sealed

    def _seal_fast(self, kind: str, body: dict[str, Any], seq: int) -> Envelope | None:
        """`_seal_validated`'s envelope without pydantic, or None where that is not
        provably the same (see `_unsigned`)."""
        pending = self._unsigned(kind, body, seq)
        return None if pending is None else pending.signed_here()

    def seal_pending(self, kind: str, body: dict[str, Any]) -> PendingEnvelope:
        """The next envelope of this actor, with its signature to be made later, by
        whoever holds the key (`PendingEnvelope.signed`): a ledger process
        (`accord.ledger_worker`) while this one goes on. Where the fast path does not
        apply, the envelope is sealed here and now, as `seal` does."""
        seq = self.next_seq
        pending = self._unsigned(kind, body, seq)
        if pending is None:
            pending = PendingEnvelope.of(self._seal_validated(kind, body, seq))
        self.next_seq = seq + 1
        return pending

    def _unsigned(self, kind: str, body: dict[str, Any], seq: int) -> PendingEnvelope | None:
        """The envelope's canonical bytes but its signature, assembled from the parts
        without pydantic, or None where that is not provably `_seal_validated`'s: unless
        ``session``, ``actor`` and ``kind`` are exact ``str`` (JSON-representable: no lone
        surrogate), ``seq`` an exact ``int`` in [1, 2^53), and ``body`` an exact ``dict``
        of plain JSON values that `canonical_json_fast` serialises.

        Why the bytes are the same: validation keeps such values as they are (the body
        as a shallow copy of the dict) and the JSON dump turns tuples into lists, which
        serialise alike; RFC 8785 sorts the envelope's members (ASCII names) as
        actor, body, kind, seq, session, sig, ts, v, and serialises each member's value
        as it would alone, which is what is concatenated here. ``ts`` comes from
        `now_iso` (ASCII digits and punctuation: nothing to escape) and ``v`` is the
        integer ENVELOPE_VERSION."""
        if type(kind) is not str or type(body) is not dict or type(seq) is not int or not 0 < seq <= _MAX_SEQ:
            return None
        actor, session = self.identity.actor, self.session
        members = self._members
        if members is None or members[0] is not actor or members[1] is not session:
            members = self._members = (actor, session, _string_members(actor, session))
        strings = members[2]
        if strings is None:
            return None
        kind_json = _KIND_JSON.get(kind)
        if kind_json is None:
            kind_json = json_string(kind)
            if kind_json is None:
                return None
            if len(_KIND_JSON) < _KIND_CACHE_MAX:
                _KIND_JSON[kind] = kind_json
        body_json = canonical_json_fast(body)
        if body_json is None:
            return None
        ts = now_iso()
        head = b"".join(
            (b'{"actor":', strings[0], b',"body":', body_json, b',"kind":', kind_json,
             b',"seq":', str(seq).encode("ascii"), b',"session":', strings[1])
        )
        tail = b'"ts":"' + ts.encode("ascii") + _VERSION_TAIL
        return PendingEnvelope(self.identity, session, actor, seq, kind, dict(body), ts, head, tail)


class PendingEnvelope:
    """An envelope whose canonical bytes are known but for its signature, which another
    process may make (`accord.ledger_worker`): Ed25519 signatures are deterministic,
    so the envelope it becomes is the one `Signer.seal` would have made.

    What a session needs of a message before it is signed does not depend on the
    signature's value: its fields, its size (the signature's base64 is always 88
    characters), and whether it is another message's replay (the same signed bytes from
    the same key: the same bytes to sign)."""

    __slots__ = ("actor", "body", "envelope", "head", "identity", "kind", "seq", "session", "tail", "ts")

    def __init__(
        self, identity: Identity, session: str, actor: str, seq: int, kind: str, body: dict[str, Any], ts: str,
        head: bytes, tail: bytes,
    ) -> None:
        self.identity = identity
        self.session, self.actor, self.seq, self.kind, self.body, self.ts = session, actor, seq, kind, body, ts
        self.head, self.tail = head, tail
        self.envelope: Envelope | None = None

    @classmethod
    def of(cls, envelope: Envelope) -> PendingEnvelope:
        """An envelope signed already, in this form: its canonical bytes stand for both
        parts."""
        pending = cls.__new__(cls)
        pending.identity = None  # type: ignore[assignment]
        pending.session, pending.actor, pending.seq = envelope.session, envelope.actor, envelope.seq
        pending.kind, pending.body, pending.ts = envelope.kind, envelope.body, envelope.ts
        pending.head, pending.tail = envelope.canonical(), b""
        pending.envelope = envelope
        return pending

    @property
    def message(self) -> bytes:
        """What its actor signs (the envelope's canonical bytes without ``sig``); for an
        envelope signed already, its canonical bytes."""
        if self.envelope is not None and not self.tail:
            return self.head
        return self.head + b"," + self.tail

    @property
    def size(self) -> int:
        """The length of its canonical bytes once signed."""
        if self.envelope is not None and not self.tail:
            return len(self.head)
        return len(self.head) + _SIGNED_EXTRA + len(self.tail)

    def signed(self, signature: bytes) -> Envelope:
        """The envelope, with `signature` (its actor's, over `message`)."""
        if self.envelope is None:
            sig = b64(signature)
            canonical = signed_canonical(self.head, sig, self.tail)
            self.envelope = Envelope._trusted(
                self.session, self.actor, self.seq, self.kind, self.body, self.ts, sig, canonical
            )
        return self.envelope

    def signed_here(self) -> Envelope:
        """The envelope, signed in this process."""
        if self.envelope is not None:
            return self.envelope
        return self.signed(self.identity.sign(self.head + b"," + self.tail))


def signed_canonical(head: bytes, sig: str, tail: bytes) -> bytes:
    """The canonical bytes of a pending envelope (its `head` and `tail`, as
    `PendingEnvelope` holds them) signed with `sig` (the signature's base64): the sig
    member goes where RFC 8785 sorts it, between the two."""
    return b"".join((head, _SIG_MEMBER, sig.encode("ascii"), b'",', tail))


_MAX_SEQ = 2**53 - 1  # RFC 8785 numbers are doubles: larger integers take the slow way
_VERSION_TAIL = f'","v":{ENVELOPE_VERSION}}}'.encode("ascii")
# What signing adds to the bytes signed: the sig member (88 characters of base64 for 64
# bytes) and the comma that replaces the one between head and tail.
_SIGNED_EXTRA = len(_SIG_MEMBER) + len(b64(bytes(64))) + len(b'",')
# Envelope kinds are a handful of names; their JSON strings are kept (a bounded cache).
_KIND_JSON: dict[str, bytes] = {}
_KIND_CACHE_MAX = 256


def _string_members(actor: str, session: str) -> tuple[bytes, bytes] | None:
    if type(actor) is not str or type(session) is not str:
        return None
    actor_json, session_json = json_string(actor), json_string(session)
    if actor_json is None or session_json is None:
        return None
    return actor_json, session_json
