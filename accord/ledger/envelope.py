"""Signed envelopes: every message on the bus and in the ledger is one.

The signature is Ed25519 over the RFC 8785 canonical JSON of the envelope without its
`sig` field, so any party re-serialising the JSON gets the same bytes to check.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from accord.ledger.identity import Identity, PublicKeys, b64, unb64
from constituencies.hashing import canonical_json

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
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Signer:
    """Signs an actor's envelopes with consecutive sequence numbers."""

    def __init__(self, identity: Identity, session: str, next_seq: int = 1) -> None:
        self.identity = identity
        self.session = session
        self.next_seq = next_seq

    @property
    def actor(self) -> str:
        return self.identity.actor

    def seal(self, kind: str, body: dict[str, Any]) -> Envelope:
        unsigned = Envelope(
            session=self.session,
            actor=self.identity.actor,
            seq=self.next_seq,
            kind=kind,
            body=body,
            ts=now_iso(),
        )
        self.next_seq += 1
        signing = unsigned.signing_bytes()
        sig = b64(self.identity.sign(signing))
        sealed = unsigned.model_copy(update={"sig": sig})
        # The canonical form is the signed bytes with the sig member inserted where
        # RFC 8785 sorts it: before the top-level "ts", the last such member.
        at = signing.rfind(_TS_MEMBER)
        canonical = signing[:at] + _SIG_MEMBER + sig.encode("ascii") + b'"' + signing[at:]
        sealed.__pydantic_private__["_canonical"] = canonical  # type: ignore[index]
        return sealed
