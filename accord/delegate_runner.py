"""A delegate on the bus: answers the chair's calls with signed, mandate-checked moves."""

from __future__ import annotations

import asyncio
from typing import Any

from accord.bus import Bus
from accord.bus.topics import broadcast_topic, delegate_inbox, delegate_outbox
from accord.ledger import Envelope, EnvelopeError, PublicKeys, Signer
from delegates.delegate import Delegate
from protocols.events import Call

CHAIR = "chair"


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
        return env

    async def _answer(self, call: Call) -> None:
        decision = self.delegate.decide(call)
        outbox = delegate_outbox(self.session_id, self.delegate.id)
        for refusal in decision.refusals:
            body = {"round": call.round, "refused": refusal.move, "reason": refusal.reason}
            await self.bus.publish(outbox, self.signer.seal("refusal", body).canonical())
        body = {
            "round": call.round,
            "value_model": self.value_model_hash,
            "move": decision.move.model_dump(mode="json"),
        }
        await self.bus.publish(outbox, self.signer.seal("move", body).canonical())
