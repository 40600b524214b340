"""A delegate on the bus: answers the chair's calls with signed, mandate-checked moves."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from accord.bus import Bus
from accord.bus.topics import broadcast_topic, delegate_inbox, delegate_outbox
from accord.ledger import Entry, Envelope, EnvelopeError, PublicKeys, Signer
from delegates.delegate import Delegate, Ratification
from protocols.events import Call

CHAIR = "chair"


class ResumeError(RuntimeError):
    """The ledger cannot be replayed into the current code and session."""


class DelegateRunner:
    def __init__(
        self,
        session_id: str,
        delegate: Delegate,
        signer: Signer,
        chair_keys: PublicKeys,
        bus: Bus,
        value_model_hash: str,
    ) -> None:
        self.session_id = session_id
        self.delegate = delegate
        self.signer = signer
        self.chair_keys = chair_keys
        self.bus = bus
        self.value_model_hash = value_model_hash
        self.ready = asyncio.Event()
        self.ignored: list[str] = []
        self._chair_seen: set[int] = set()

    def replay(self, rows: Sequence[Entry]) -> None:
        """Bring the strategy to where it was: re-decide every call it answered.

        Strategies are deterministic given their seed and the calls they saw, so deciding
        the recorded calls again, in order, restores their state (history, opponent
        models, the seeded generator). Each re-decided move must equal the recorded one;
        if not, the code or the session changed since, and resuming would be a lie.
        """
        me = self.delegate.id
        last_call: Call | None = None
        for row in rows:
            env = Envelope.model_validate_json(row.envelope)
            if env.actor == CHAIR:
                self._chair_seen.add(env.seq)
            if env.actor == CHAIR and env.kind == "call" and env.body.get("to") == me:
                last_call = Call.model_validate(env.body)
            elif env.actor == CHAIR and env.kind == "rejection" and env.body.get("to") == me:
                self.delegate.strategy.observe_rejection(str(env.body.get("reason", "")))
            elif env.actor == me:
                self.signer.next_seq = env.seq + 1
                if env.kind == "ratification":
                    self.delegate.remember(Ratification.model_validate(env.body["ratification"]))
                if env.kind != "move":
                    continue
                if last_call is None:
                    raise ResumeError(f"entry {row.idx}: a move by {me} answers no recorded call")
                again = self.delegate.decide(last_call).move.model_dump(mode="json")
                if again != env.body.get("move"):
                    raise ResumeError(
                        f"entry {row.idx}: {me}'s strategy no longer makes the move it recorded; "
                        "the session file or the code changed since the session ran"
                    )
                last_call = None

    async def run(self) -> None:
        sid, me = self.session_id, self.delegate.id
        async with self.bus.subscribe(delegate_inbox(sid, me)) as inbox, self.bus.subscribe(
            broadcast_topic(sid)
        ) as broadcast:
            self.ready.set()
            inbox_task = asyncio.ensure_future(self._serve(inbox))
            try:
                async for message in broadcast:
                    env = self._from_chair(message.payload)
                    if env is not None and env.kind == "session.close":
                        break
            finally:
                inbox_task.cancel()
                await asyncio.gather(inbox_task, return_exceptions=True)

    async def _serve(self, inbox: Any) -> None:
        async for message in inbox:
            env = self._from_chair(message.payload)
            if env is None:
                continue
            if env.kind == "call":
                await self._answer(Call.model_validate(env.body))
            elif env.kind == "rejection":
                self.delegate.strategy.observe_rejection(str(env.body.get("reason", "")))

    def _from_chair(self, payload: bytes) -> Envelope | None:
        """Only signed words of this session's chair are acted on; anything else is noted."""
        try:
            env = Envelope.parse(payload)
        except EnvelopeError as exc:
            self.ignored.append(str(exc))
            return None
        if env.actor != CHAIR or env.session != self.session_id or not env.verify(self.chair_keys):
            self.ignored.append(f"not from this session's chair: {env.actor} seq {env.seq}")
            return None
        if env.seq in self._chair_seen:
            return None  # delivered again (QoS 1 is at least once): already acted on
        self._chair_seen.add(env.seq)
        return env

    async def _answer(self, call: Call) -> None:
        decision = self.delegate.decide(call)
        outbox = delegate_outbox(self.session_id, self.delegate.id)
        for answer in decision.ratifications:
            body = {"round": call.round, "ratification": answer.model_dump(mode="json")}
            await self.bus.publish(outbox, self.signer.seal("ratification", body).canonical())
        for refusal in decision.refusals:
            body = {"round": call.round, "refused": refusal.move, "reason": refusal.reason}
            await self.bus.publish(outbox, self.signer.seal("refusal", body).canonical())
        body = {
            "round": call.round,
            "value_model": self.value_model_hash,
            "move": decision.move.model_dump(mode="json"),
        }
        await self.bus.publish(outbox, self.signer.seal("move", body).canonical())
