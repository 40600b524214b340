"""Signed envelopes: every message on the bus and in the ledger is one.

The signature is Ed25519 over the RFC 8785 canonical JSON of the envelope without its
`sig` field, so any party re-serialising the JSON gets the same bytes to check.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from accord.ledger.identity import Identity, PublicKeys, b64, unb64

ENVELOPE_VERSION = 1
MAX_ENVELOPE_BYTES = 256 * 1024


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

    def signing_bytes(self) -> bytes:
        return rfc8785.dumps(self.model_dump(mode="json", exclude={"sig"}))

    def canonical(self) -> bytes:
        """The exact bytes stored in the ledger and hashed into it."""
        return rfc8785.dumps(self.model_dump(mode="json"))

    def verify(self, keys: PublicKeys) -> bool:
        try:
            signature = unb64(self.sig)
        except ValueError:
            return False
        return keys.verify(self.actor, signature, self.signing_bytes())

    @classmethod
    def parse(cls, data: bytes | str) -> Envelope:
        if len(data) > MAX_ENVELOPE_BYTES:
            raise EnvelopeError(f"envelope of {len(data)} bytes exceeds {MAX_ENVELOPE_BYTES}")
        try:
            return cls.model_validate(json.loads(data))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EnvelopeError(f"not JSON: {exc}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EnvelopeError(f"malformed envelope: {where}: {first['msg']}") from None


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
        return unsigned.model_copy(update={"sig": b64(self.identity.sign(unsigned.signing_bytes()))})
