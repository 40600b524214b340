"""Running a session: wire a chair and delegates to a bus and a ledger, run to an outcome."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from accord.bus import open_bus
from accord.bus.topics import chair_topic
from accord.chair import CHAIR, Chair
from accord.delegate_runner import ChairWords, DelegateRunner
from accord.keystore import KeyStore
from accord.ledger import Entry, Identity, Ledger, PublicKeys, Signer, verify_entries
from accord.ledger.store import CHECKPOINT_EVERY
from accord.progress import ProgressSink
from accord.session_file import SessionSpec
from accord.session_plan import SessionPlan, build_plan
from constituencies import UtilityBreakdown
from protocols.events import Ended


@dataclass(frozen=True)
class DelegateResult:
    delegate: str
    strategy: str
    breakdown: UtilityBreakdown | None
    best: float
    worst: float
    constituents: dict[str, float]

    @property
    def satisfaction(self) -> float | None:
        """Utility of the outcome as a share of the span from worst to best outcome."""
        if self.breakdown is None:
            return None
        span = self.best - self.worst
        return 1.0 if span <= 0 else (self.breakdown.utility - self.worst) / span


@dataclass(frozen=True)
class SessionResult:
    session_id: str
    ended: Ended
    delegates: list[DelegateResult]
    entries: int
    ledger: str


def new_session_id(spec_id: str) -> str:
    """The spec, the second, and 48 random bits: a benchmark starts hundreds of sessions
    a second in one ledger, and 16 bits made two of them draw the same id."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{spec_id}-{stamp}-{secrets.token_hex(6)}"


def evaluate(plan: SessionPlan, ended: Ended) -> list[DelegateResult]:
    """Each delegate's utility for what it agreed to: the agreement, or its coalition's
    partial agreement (MOPAC), or nothing."""
    own: dict[str, dict[str, str]] = {}
    for partial in ended.partial:
        for party in partial.parties:
            own[party] = partial.outcome
    results = []
    for p in plan.participants:
        space = p.delegate.view.space
        outcome = ended.agreement or own.get(p.id)
        breakdown = p.model.breakdown(outcome) if outcome else None
        people = (
            {c.id: p.model.constituent_utility(c.id, outcome) for c in p.constituency.constituents}
            if outcome
            else {}
        )
        results.append(
            DelegateResult(p.id, p.strategy_name, breakdown, space.best, space.worst, people)
        )
    return results


def opening_body(plan: SessionPlan, session_id: str, keys: dict[str, str]) -> dict[str, Any]:
    """What the chair's signed `session.open` entry says: enough to rebuild the session."""
    return {
        "session_id": session_id,
        "spec": plan.spec.model_dump(mode="json"),
        "spec_hash": plan.spec_hash,
        "protocol": {"name": plan.protocol_cls.name, "params": plan.protocol_params.model_dump()},
        "seed": plan.spec.seed,
        "keys": keys,
        "delegates": {
            p.id: {"strategy": p.strategy_name, "value_model": p.model.hash}
            for p in plan.participants
        },
    }


async def finish(plan: SessionPlan, ledger: Ledger, session_id: str, ended: Ended, entries: int) -> SessionResult:
    """Record the outcome in the session's row and evaluate it for every delegate."""
    results = evaluate(plan, ended)
    await ledger.finish_session(
        session_id,
        {
            "agreement": ended.agreement,
            "reason": ended.reason,
            "round": ended.round,
            "utilities": {
                r.delegate: (r.breakdown.utility if r.breakdown else None) for r in results
            },
        },
    )
    return SessionResult(session_id, ended, results, entries, ledger.location)


async def run_session(
    plan: SessionPlan,
    ledger: Ledger,
    *,
    bus_url: str = "memory://",
    session_id: str | None = None,
    progress: ProgressSink | None = None,
    keystore: KeyStore | None = None,
    turn_timeout_s: float | None = None,
    extra_opening: dict[str, Any] | None = None,
) -> SessionResult:
    """Run `plan` to its outcome; every message signed, checked and chained into `ledger`.

    With a `keystore`, the actors' private keys are kept there so that `resume_session`
    can finish the session if this process dies. `turn_timeout_s` overrides the session
    file's (an interactive run waits for people, not for the clock).
    """
    session_id = session_id or new_session_id(plan.spec.id)
    identities = {CHAIR: Identity.generate(CHAIR)} | {
        p.id: Identity.generate(p.id) for p in plan.participants
    }
    keys = {actor: i.public_key for actor, i in identities.items()}
    open_body = opening_body(plan, session_id, keys) | (extra_opening or {})
    if keystore is not None:
        keystore.save(session_id, identities)
    await ledger.create_session(session_id, plan.spec.id, plan.spec.title, plan.spec_hash)
    return await _drive(
        plan, ledger, session_id, identities, bus_url, progress,
        open_body=open_body, turn_timeout_s=turn_timeout_s,
    )


class ResumeRefused(RuntimeError):
    """The session cannot be resumed (finished already, or its keys or spec do not match)."""


async def resume_session(
    ledger: Ledger,
    session_ref: str,
    keystore: KeyStore,
    *,
    bus_url: str = "memory://",
    progress: ProgressSink | None = None,
) -> SessionResult:
    """Rebuild a crashed session from its ledger and run it to its outcome."""
    info = await ledger.find_session(session_ref)
    rows = await ledger.entries(info.id)
    if not rows or rows[0].kind != "session.open":
        raise ResumeRefused(f"session {info.id} has no opening entry; nothing to resume")
    if any(r.kind == "session.close" for r in rows):
        raise ResumeRefused(f"session {info.id} has already finished")
    report = verify_entries(info.id, rows)
    if not report.ok:
        first = report.first
        raise ResumeRefused(f"session {info.id} does not verify (entry {first.idx}: {first.reason})")  # type: ignore[union-attr]
    opening = rows[0].body
    spec = SessionSpec.model_validate(opening["spec"])
    plan = build_plan(spec, f"ledger:{info.id}")
    identities = keystore.load(info.id)
    for actor, public in opening["keys"].items():
        if actor not in identities or identities[actor].public_key != public:
            raise ResumeRefused(f"the key store's key for {actor!r} is not the one the session used")
    return await _drive(plan, ledger, info.id, identities, bus_url, progress, replay=rows)


async def _drive(
    plan: SessionPlan,
    ledger: Ledger,
    session_id: str,
    identities: dict[str, Identity],
    bus_url: str,
    progress: ProgressSink | None,
    *,
    open_body: dict[str, Any] | None = None,
    replay: Sequence[Entry] | None = None,
    turn_timeout_s: float | None = None,
) -> SessionResult:
    keys = {actor: i.public_key for actor, i in identities.items()}
    chair_keys = PublicKeys({CHAIR: keys[CHAIR]})
    async with open_bus(bus_url) as bus:
        words = ChairWords()  # every chair message parsed and checked once, not per delegate
        runners = [
            DelegateRunner(
                session_id,
                p.delegate,
                Signer(identities[p.id], session_id),
                chair_keys,
                bus,
                p.model.hash,
                words=words,
            )
            for p in plan.participants
        ]
        chair = Chair(
            session_id,
            plan.new_protocol(),
            Signer(identities[CHAIR], session_id),
            PublicKeys(keys),
            bus,
            ledger,
            turn_timeout_s or plan.spec.turn_timeout_s,
            progress,
        )
        if replay is not None:
            for runner in runners:
                runner.replay(replay)
        tasks = [asyncio.create_task(r.run(), name=f"delegate:{r.delegate.id}") for r in runners]
        try:
            await asyncio.gather(*(r.ready.wait() for r in runners))
            # Checkpoints: the chair signs one every CHECKPOINT_EVERY entries and, once
            # the session is over, a final one that every delegate co-signs as a witness.
            # Each is published retained on the chair's `checkpoint` topic.
            checkpoint_topic = chair_topic(session_id, "checkpoint")

            async def publish_checkpoint(checkpoint: Any) -> None:
                await bus.publish(checkpoint_topic, checkpoint.text.encode("utf-8"), retain=True)

            ledger.checkpoint_every(
                session_id, identities[CHAIR], CHECKPOINT_EVERY, on_checkpoint=publish_checkpoint
            )
            if replay is None:
                assert open_body is not None
                ended = await chair.run(open_body)
            else:
                ended = await chair.resume(replay)
            await asyncio.gather(*tasks)
            ledger.stop_checkpointing(session_id)
            final = await ledger.seal(
                session_id, identities[CHAIR], [identities[p.id] for p in plan.participants]
            )
            await publish_checkpoint(final)
        finally:
            ledger.stop_checkpointing(session_id)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return await finish(plan, ledger, session_id, ended, chair._recorded)
