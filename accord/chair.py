"""The chair: runs a protocol over the bus and keeps the session's ledger.

It is the only writer of the ledger. Each delegate message is checked (known sender,
topic matches signer, good signature, next sequence number) before the protocol sees
it; a message that fails is not chained in but its rejection is, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pydantic import ValidationError

from accord.bus import Bus, Message
from accord.bus.topics import (
    broadcast_topic,
    chair_topic,
    delegate_inbox,
    outboxes_filter,
    presence_filter,
    topic_matches,
)
from accord.presence import Presence, speaks_for
from accord.ledger import Entry, Envelope, EnvelopeError, Ledger, PublicKeys, Signer
from accord.progress import ProgressSink, SessionEvent
from protocols.base import Protocol
from protocols.events import Call, ChairEvent, Ended, Rejection

CHAIR = "chair"
MALFORMED_LIMIT = 3
# How long a delegate whose host went offline (its will) keeps its turn before it lapses.
OFFLINE_GRACE_S = float(os.environ.get("ACCORD_OFFLINE_GRACE_S", "5"))
# Set only by crash tests: SIGKILL this process once N entries have reached the ledger.
_CRASH_AFTER_ENTRIES = int(os.environ.get("ACCORD_CRASH_AFTER_ENTRIES", "0") or 0)
# How long recorded entries may wait in memory before they are appended in one batch.
FLUSH_INTERVAL_S = float(os.environ.get("ACCORD_LEDGER_FLUSH_S", "0.05"))


class Chair:
    def __init__(
        self,
        session_id: str,
        protocol: Protocol,
        signer: Signer,
        keys: PublicKeys,
        bus: Bus,
        ledger: Ledger,
        turn_timeout_s: float,
        progress: ProgressSink | None = None,
        batch_size: int = 512,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        watch_presence: bool = False,
    ) -> None:
        self.session_id = session_id
        self.protocol = protocol
        self.signer = signer
        self.keys = keys
        self.bus = bus
        self.ledger = ledger
        self.turn_timeout_s = turn_timeout_s
        self.progress = progress
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._buffer: list[tuple[Envelope, bytes]] = []
        self._buffered_since = 0.0
        self._recorded = 0
        self._next_seq: dict[str, int] = {}
        self._deadlines: dict[str, float] = {}
        self._moves = protocol.move_adapter()
        self._malformed: dict[str, int] = {}
        self._seen: dict[tuple[str, int], bytes] = {}
        self.watch_presence = watch_presence
        self.offline: set[str] = set()
        self._rejoined: list[str] = []
        self._flushed = 0

    async def run(self, open_body: dict[str, Any]) -> Ended:
        """Open the session and run the protocol to its end."""
        async with self._inputs() as inbox:
            raw = await self._announce("session.open", open_body)
            # Retained, so that a delegate process that (re)joins later finds the opening.
            await self.bus.publish(chair_topic(self.session_id, "open"), raw, retain=True)
            await self._dispatch(self.protocol.start())
            return await self._loop(inbox)

    @contextlib.asynccontextmanager
    async def _inputs(self) -> AsyncIterator[AsyncIterator[Message]]:
        """The delegates' outboxes and, with delegates in other processes, their presence."""
        async with contextlib.AsyncExitStack() as stack:
            subs = [await stack.enter_async_context(self.bus.subscribe(outboxes_filter(self.session_id)))]
            if self.watch_presence:
                subs.append(await stack.enter_async_context(self.bus.subscribe(presence_filter(self.session_id))))
            yield subs[0] if len(subs) == 1 else _merged(subs)

    async def resume(self, rows: Sequence[Entry]) -> Ended:
        """Rebuild the protocol from a crashed session's ledger, then carry on.

        A session is a fold over its ledger: the recorded delegate moves and timeouts are
        fed to a fresh protocol in their recorded order, which brings it to the state it
        had when the last entry was written. Calls still pending are issued again.
        """
        self.replay(rows)
        async with self._inputs() as inbox:
            await self._announce("session.resume", {"after_entry": len(rows) - 1})
            await self._dispatch(list(self.protocol.pending))
            return await self._loop(inbox)

    def replay(self, rows: Sequence[Entry]) -> None:
        self.protocol.start()
        for row in rows:
            env = Envelope.model_validate_json(row.envelope)
            if env.actor == CHAIR:
                self.signer.next_seq = env.seq + 1
                if env.kind == "timeout":
                    self._apply_timeout(env.body["delegate"])
                continue
            self._next_seq[env.actor] = env.seq + 1
            self._seen[(env.actor, env.seq)] = hashlib.sha256(env.signing_bytes()).digest()
            self._apply(env)
        self._recorded = len(rows)

    async def _loop(self, inbox: Any) -> Ended:
        loop = asyncio.get_running_loop()
        messages = aiter(inbox)
        waiting: asyncio.Task[Message] | None = None
        while not self.protocol.done:
            if waiting is None:
                waiting = asyncio.ensure_future(anext(messages))
            # Appends are batched: at most `flush_interval_s` of entries wait in memory,
            # and a crash loses only an unflushed tail, never a middle.
            now = loop.time()
            if self._buffer and (
                len(self._buffer) >= self.batch_size
                or now - self._buffered_since >= self.flush_interval_s
            ):
                await self._flush()
            timeout = self._next_deadline(now)
            if self._buffer:
                flush_in = self._buffered_since + self.flush_interval_s - now
                timeout = flush_in if timeout is None else min(timeout, flush_in)
            done, _ = await asyncio.wait({waiting}, timeout=max(0.0, timeout) if timeout is not None else None)
            if not done:
                await self._dispatch(self._expire(loop.time()))
                continue
            try:
                message = waiting.result()
            except StopAsyncIteration:
                raise RuntimeError("the bus closed before the session ended") from None
            waiting = None
            await self._dispatch(self._consume(message))
            while self._rejoined:
                await self._resync(self._rejoined.pop(0))
        if waiting is not None:
            waiting.cancel()
        ended = self.protocol.ended
        assert ended is not None
        await self._announce("session.close", {"reason": ended.reason})
        await self._flush()
        return ended

    def _next_deadline(self, now: float) -> float | None:
        if not self._deadlines:
            return None
        return max(0.0, min(self._deadlines.values()) - now)

    def _expire(self, now: float) -> list[ChairEvent]:
        events: list[ChairEvent] = []
        for delegate, deadline in sorted(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[delegate]
                events.extend(self._timeout(delegate, "no answer in time"))
        return events

    def _apply_timeout(self, delegate: str) -> list[ChairEvent]:
        return self.protocol.timeout(delegate)

    def _consume(self, message: Message) -> list[ChairEvent]:
        """Check a delegate's message; record it; feed its move to the protocol."""
        if topic_matches(presence_filter(self.session_id), message.topic):
            return self._presence(message)
        try:
            env = Envelope.parse(message.payload)
        except EnvelopeError as exc:
            self._record_refused(message, str(exc))
            return []
        topic_sender = message.topic.split("/")[-2]
        if env.session != self.session_id:
            self._record_refused(message, f"envelope for session {env.session!r}")
            return []
        if env.actor != topic_sender or env.actor == CHAIR:
            self._record_refused(message, f"signed by {env.actor!r} but sent on {topic_sender!r}'s topic")
            return []
        if env.actor not in self.keys:
            self._record_refused(message, f"unknown sender {env.actor!r}")
            return []
        if not env.verify(self.keys):
            self._record_refused(message, f"bad signature from {env.actor!r}")
            return []
        expected = self._next_seq.get(env.actor, 1)
        digest = hashlib.sha256(env.signing_bytes()).digest()
        if env.seq < expected and self._seen.get((env.actor, env.seq)) == digest:
            # The same message again: a QoS 1 redelivery or a replay. Either way it is
            # not applied twice; the refusal is logged, the original stays the record.
            self._record_refused(
                message, f"replayed sequence number {env.seq} from {env.actor!r}: already recorded"
            )
            return []
        if env.seq != expected:
            why = "replayed" if env.seq < expected else "out of order"
            self._record_refused(
                message, f"{why} sequence number {env.seq} from {env.actor!r} (expected {expected})"
            )
            return []
        self._next_seq[env.actor] = expected + 1
        self._seen[(env.actor, env.seq)] = digest
        self._record(env, env.canonical())
        return self._apply(env)

    def _presence(self, message: Message) -> list[ChairEvent]:
        """A host came or went. Going offline is an absence now, not at the turn's end;
        coming back gets the delegate its history (`resync`) and its pending call."""
        try:
            presence = Presence.model_validate_json(message.payload)
        except ValueError:
            return []  # an empty retained payload clears presence: nothing to do
        events: list[ChairEvent] = []
        for delegate in presence.delegates:
            if delegate not in self.keys or delegate == CHAIR:
                continue
            if not speaks_for(message.topic, presence, delegate, self.keys):
                continue  # a host may not announce (or retire) another's delegate
            if presence.status == "offline" and delegate not in self.offline:
                self.offline.add(delegate)
                self._record_presence(delegate, "offline")
                # A short grace, not the whole turn: a broker restart also sends wills,
                # and a delegate whose host reconnects at once has not really gone.
                if delegate in self._deadlines:
                    now = asyncio.get_running_loop().time()
                    self._deadlines[delegate] = min(self._deadlines[delegate], now + OFFLINE_GRACE_S)
            elif presence.status == "online" and delegate in self.offline:
                self.offline.discard(delegate)
                self._record_presence(delegate, "online")
                self._rejoined.append(delegate)
        return events

    def _record_presence(self, delegate: str, status: str) -> None:
        env = self.signer.seal("presence", {"delegate": delegate, "status": status})
        self._record(env, env.canonical())

    def _timeout(self, delegate: str, reason: str) -> list[ChairEvent]:
        # The timeout is an input to the protocol, so it is recorded as one: a replay of
        # the ledger must feed it at the same point.
        env = self.signer.seal("timeout", {"delegate": delegate, "reason": reason})
        self._record(env, env.canonical())
        return self._apply_timeout(delegate)

    async def _resync(self, delegate: str) -> None:
        """Send a rejoining delegate what it needs to rebuild its state, then its call."""
        await self._flush()
        rows = await self.ledger.entries(self.session_id)
        mine = [
            r.envelope
            for r in rows
            if r.actor == delegate
            or (r.actor == CHAIR and r.kind in ("call", "rejection") and r.body.get("to") == delegate)
        ]
        await self._send(delegate_inbox(self.session_id, delegate), "resync", {"entries": mine})
        await self._dispatch([call for call in self.protocol.pending if call.to == delegate])

    def _apply(self, env: Envelope) -> list[ChairEvent]:
        """What a checked, recorded delegate envelope does to the protocol."""
        if env.kind != "move":
            return []
        try:
            move = self._moves.validate_python(env.body.get("move"))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return self._after_malformed(env.actor, f"malformed move: {where}: {first['msg']}")
        self._malformed.pop(env.actor, None)
        return self.protocol.receive(env.actor, move)

    def _after_malformed(self, actor: str, reason: str) -> list[ChairEvent]:
        """Refuse a move the protocol cannot even parse; repeated, it counts as a timeout."""
        events: list[ChairEvent] = [Rejection(to=actor, reason=reason)]
        self._malformed[actor] = self._malformed.get(actor, 0) + 1
        if self._malformed[actor] >= MALFORMED_LIMIT:
            del self._malformed[actor]
            return events + self.protocol.timeout(actor)
        # The turn is still the sender's: call it again so the session goes on.
        return events + [call for call in self.protocol.pending if call.to == actor]

    def _record_refused(self, message: Message, reason: str) -> None:
        digest = hashlib.sha256(message.payload).hexdigest()
        env = self.signer.seal(
            "refused-message",
            {"topic": message.topic, "sha256": digest, "bytes": len(message.payload), "reason": reason},
        )
        self._record(env, env.canonical())

    async def _dispatch(self, events: list[ChairEvent]) -> None:
        loop = asyncio.get_running_loop()
        # A deadline lasts while its call is pending: an answered call's clock stops, an
        # illegal answer leaves it running (unless the protocol calls afresh, below).
        waiting_on = {call.to for call in self.protocol.pending}
        for delegate in [d for d in self._deadlines if d not in waiting_on]:
            del self._deadlines[delegate]
        for event in events:
            body = event.model_dump(mode="json")
            if isinstance(event, Call):
                # A delegate known to be offline gets only a short grace to come back.
                grace = OFFLINE_GRACE_S if event.to in self.offline else self.turn_timeout_s
                self._deadlines[event.to] = loop.time() + grace
                await self._send(delegate_inbox(self.session_id, event.to), "call", body)
            elif isinstance(event, Rejection):
                await self._send(delegate_inbox(self.session_id, event.to), "rejection", body)
            else:
                if isinstance(event, Ended):
                    self._deadlines.clear()
                await self._announce(event.kind, body)

    async def _announce(self, kind: str, body: dict[str, Any]) -> bytes:
        return await self._send(broadcast_topic(self.session_id), kind, body)

    async def _send(self, topic: str, kind: str, body: dict[str, Any]) -> bytes:
        env = self.signer.seal(kind, body)
        raw = env.canonical()
        self._record(env, raw)
        await self.bus.publish(topic, raw)
        return raw

    def _record(self, env: Envelope, raw: bytes) -> None:
        if not self._buffer:
            self._buffered_since = asyncio.get_running_loop().time()
        self._buffer.append((env, raw))
        if self.progress is not None:
            self.progress(SessionEvent(self._recorded, env.kind, env.actor, env.body))
        self._recorded += 1

    async def _flush(self) -> None:
        if self._buffer:
            batch, self._buffer = self._buffer, []
            await self.ledger.append_canonical(self.session_id, batch)
            self._flushed += len(batch)
            if 0 < _CRASH_AFTER_ENTRIES <= self._flushed:
                # Fault injection for crash tests: die as abruptly as a power cut would.
                os.kill(os.getpid(), signal.SIGKILL)


async def _merged(subscriptions: list[Any]) -> AsyncIterator[Message]:
    """Messages of several subscriptions, as they come."""
    queue: asyncio.Queue[Message | None] = asyncio.Queue()

    async def pump(sub: Any) -> None:
        try:
            async for message in sub:
                await queue.put(message)
        finally:
            await queue.put(None)

    tasks = [asyncio.ensure_future(pump(sub)) for sub in subscriptions]
    try:
        ended = 0
        while ended < len(tasks):
            message = await queue.get()
            if message is None:
                ended += 1
                continue
            yield message
    finally:
        for task in tasks:
            task.cancel()
