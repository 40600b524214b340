"""Checking a session's record: every signature, every sequence number, the whole chain."""

from __future__ import annotations

import json
from collections.abc import Sequence

import rfc8785
from pydantic import BaseModel

from accord.ledger.chain import GENESIS, entry_hash
from accord.ledger.envelope import Envelope, EnvelopeError
from accord.ledger.identity import PublicKeys
from accord.ledger.store import Entry

OPEN_KIND = "session.open"


class Problem(BaseModel):
    idx: int
    actor: str
    kind: str
    reason: str


class VerifyReport(BaseModel):
    session_id: str
    entries: int
    signatures_checked: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


def verify_entries(session_id: str, rows: Sequence[Entry]) -> VerifyReport:
    """Check the chain, the envelopes' form, their signatures and per-actor sequences.

    Keys come from the chair's signed `session.open` entry, which must come first; any
    later entry signed by a key not listed there fails.
    """
    problems: list[Problem] = []
    keys: PublicKeys | None = None
    prev = GENESIS
    next_seq: dict[str, int] = {}
    checked = 0

    def fail(row: Entry, reason: str) -> None:
        problems.append(Problem(idx=row.idx, actor=row.actor, kind=row.kind, reason=reason))

    for position, row in enumerate(rows):
        if row.idx != position:
            fail(row, f"entry index {row.idx} where {position} was expected (an entry is missing)")
            break
        raw = row.envelope.encode("utf-8")
        if row.prev_hash != prev:
            fail(row, "previous-hash link broken (an entry was removed, inserted or reordered)")
        if entry_hash(prev, raw) != row.entry_hash:
            fail(row, "entry hash does not match its envelope (the envelope was altered)")
        prev = row.entry_hash
        try:
            env = Envelope.parse(raw)
        except EnvelopeError as exc:
            fail(row, str(exc))
            continue
        if rfc8785.dumps(json.loads(raw)) != raw:
            fail(row, "envelope is not in canonical form (it was altered)")
        if (env.actor, env.seq, env.kind) != (row.actor, row.seq, row.kind) or env.session != session_id:
            fail(row, "envelope disagrees with its index columns")
        if position == 0:
            if env.kind != OPEN_KIND:
                fail(row, f"first entry must be {OPEN_KIND}")
                break
            keys = PublicKeys(env.body.get("keys", {}))
        assert keys is not None
        if env.actor not in keys:
            fail(row, f"signed by {env.actor!r}, which is not a participant of the session")
        elif not env.verify(keys):
            fail(row, "bad signature")
        checked += 1
        expected = next_seq.get(env.actor, 1)
        if env.seq != expected:
            fail(row, f"sequence number {env.seq} from {env.actor} where {expected} was expected")
        next_seq[env.actor] = env.seq + 1
    return VerifyReport(
        session_id=session_id, entries=len(rows), signatures_checked=checked, problems=problems
    )
