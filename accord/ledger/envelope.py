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
    # Envelopes are immutable: never mutate `body` in place.
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
            copied._canonical = None
            copied._wire = None
        return copied

    def signing_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json", exclude={"sig"}))

    def canonical(self) -> bytes:
        """The exact bytes stored in the ledger and hashed into it."""
        if self._canonical is not None:
            return self._canonical
        return canonical_json(self.model_dump(mode="json"))

    def verify(self, keys: PublicKeys) -> bool:
        try:
            signature = unb64(self.sig)
        except ValueError:
            return False
        wire = self._wire
        if wire is not None:
            # Fast path: a signature over the received bytes minus their `sig` member
            # proves those bytes are this envelope's canonical form (`unsigned_wire`).
            unsigned = unsigned_wire(wire, self.sig)
            if unsigned is not None and keys.verify(self.actor, signature, unsigned):
                self._canonical = wire
                return True
        return keys.verify(self.actor, signature, self.signing_bytes())

    @classmethod
    def parse(cls, data: bytes | str, limit: int = MAX_ENVELOPE_BYTES) -> Envelope:
        """`limit`: MAX_OPENING_BYTES only where a chair's opening is expected."""
        if len(data) > limit:
            raise EnvelopeError(f"envelope of {len(data)} bytes exceeds {limit}")
        try:
            env = cls.model_validate(json.loads(data))
            env._wire = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            return env
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
        sealed._canonical = signing[:at] + _SIG_MEMBER + sig.encode("ascii") + b'"' + signing[at:]
        return sealed
