"""The chair: runs a protocol over the bus and keeps the session's ledger.

It is the only writer of the ledger. Each delegate message is checked (known sender,
topic matches signer, good signature, next sequence number) before the protocol sees
it; a message that fails is not chained in but its rejection is, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import json
import os
import signal
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Final, NamedTuple

from pydantic import BaseModel, TypeAdapter, ValidationError

from accord.bus import Bus, Message
from accord.bus.topics import (
    broadcast_topic,
    chair_topic,
    delegate_inbox,
    outboxes_filter,
    presence_filter,
    topic_matches,
)
from accord.checking import SignatureChecker
from accord.presence import Presence, speaks_for
from accord.ledger import Entry, Envelope, EnvelopeError, Ledger, PublicKeys, Signer
from accord.progress import ProgressSink, SessionEvent
from protocols import trusted
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
# From this many delegates called at once with the same call, the chair signs, logs and
# publishes it once, as a `calls` envelope on the broadcast topic (`to`: the list),
# instead of once per delegate: at 1,000 delegates that is 1 envelope a round, not
# 1,000. Below it, each delegate gets its own `call` in its inbox (cheap at that size,
# and each entry of a small session's ledger then reads on its own).
GROUP_CALLS_FROM = int(os.environ.get("ACCORD_GROUP_CALLS_FROM", "16") or 16)
# The ids listed in one `calls` envelope, in bytes: it must stay well under
# MAX_ENVELOPE_BYTES, so a very large group is split into several envelopes.
_GROUP_IDS_BYTES = 64 * 1024
# At most this many messages are taken from the inbox at once when they queue up (the
# chair is the busy one): checked as a batch, then consumed one by one, in order.
_DRAIN_BURST: Final = 64
# Where signatures are checked (see `SignatureChecker`): 0, in this process (from 8
# envelopes in a batch in a worker thread, as Ed25519 verification releases the GIL);
# N, on N worker processes, while the chair's loop parses, records and appends. The
# default for `Chair(check_workers=None)`, hence for `accord run` and `accord chair`.
CHECK_WORKERS_ENV: Final = "ACCORD_CHECK_WORKERS"
# With check workers, batches whose signatures are being checked, per worker, while the
# chair consumes the oldest: enough to keep every worker busy, few enough that a
# message waits little between its arrival and its turn.
_IN_FLIGHT_PER_WORKER: Final = 2


class _InboxEnded:
    """Put on the chair's inbox when one of its subscriptions ends (with why, if it
    failed), so that the end or the error reaches the chair's loop."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


_Inbox = asyncio.Queue[Message | _InboxEnded]
# A message parsed and signature-checked ahead of `Chair._consume`: the envelope (or
# why it does not parse) and whether its signature verifies (None: not checked, as for
# an envelope that `_consume` refuses before it gets to the signature).
_Checked = tuple[Envelope | EnvelopeError, bool | None]


class _Batch(NamedTuple):
    """Messages taken from the inbox together: parsed, their signatures being checked."""

    items: list[Message | _InboxEnded]
    envs: list[Envelope | EnvelopeError | None]  # None: not an envelope to check
    signed: list[Envelope]  # those from known actors, whose signatures `checks` checks
    checks: asyncio.Future[list[bool]]


def default_check_workers() -> int:
    return int(os.environ.get(CHECK_WORKERS_ENV, "0") or 0)


class _Deadlines:
    """Each called delegate's deadline (loop time), and the earliest of them in
    O(log n): a heap with lazy deletion. The chair asks for the earliest after every
    message; a min() over 1,000 deadlines per message made a round quadratic."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __contains__(self, delegate: str) -> bool:
        return delegate in self._at

    def __bool__(self) -> bool:
        return bool(self._at)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._at))

    def __getitem__(self, delegate: str) -> float:
        return self._at[delegate]

    def __setitem__(self, delegate: str, deadline: float) -> None:
        self._at[delegate] = deadline
        heapq.heappush(self._heap, (deadline, delegate))
        if len(self._heap) > 4 * len(self._at) + 64:  # too many stale entries: rebuild
            self._heap = [(t, d) for d, t in self._at.items()]
            heapq.heapify(self._heap)

    def __delitem__(self, delegate: str) -> None:
        del self._at[delegate]  # its heap entry goes stale, dropped when it surfaces

    def clear(self) -> None:
        self._at.clear()
        self._heap.clear()

    def earliest(self) -> float | None:
        heap, at = self._heap, self._at
        while heap and at.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due(self, now: float) -> list[str]:
        """Delegates whose deadline has passed, by id (a fixed order: timeouts are
        recorded, and a replay must meet them in the same order)."""
        first = self.earliest()
        if first is None or first > now:
            return []
        return sorted(d for d, t in self._at.items() if t <= now)


class MoveIntake:
    """A recorded delegate move handed to the protocol: parsed with the protocol's move
    adapter, or refused with a reason (a `Rejection` and the turn called again; the
    `MALFORMED_LIMIT`-th malformed move in a row counts as a timeout). The chair and the
    busless run (`accord.local_session`) share it, so both apply the same rule."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self._adapter = protocol.move_adapter()
        self._malformed: dict[str, int] = {}
        self._built_types = self._revalidated_types(protocol, self._adapter)

    def apply(self, actor: str, data: Any) -> list[ChairEvent]:
        try:
            move = self._adapter.validate_python(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return self._after_malformed(actor, f"malformed move: {where}: {first['msg']}")
        return self._receive(actor, move)

    def apply_built(self, actor: str, move: BaseModel, data: Any) -> list[ChairEvent]:
        """What `apply(actor, data)` does, `data` being `trusted.dump_move(move)` of a move
        this process built (the busless run). Validating `data` costs three times what
        checking `move` does, and gives back an equal move when `move` is of a type the
        protocol's adapter makes and `trusted.revalidates` it: `move` itself goes to the
        protocol then (which so holds the delegate's own containers, as under
        `accord.simulate`: nothing changes a move once made). Anything else is validated
        (and refused) by `apply`."""
        if type(move) in self._built_types and trusted.revalidates(move):
            return self._receive(actor, move)
        return self.apply(actor, data)

    def _receive(self, actor: str, move: Any) -> list[ChairEvent]:
        self._malformed.pop(actor, None)
        return self.protocol.receive(actor, move)

    @staticmethod
    def _revalidated_types(
        protocol: Protocol, adapter: TypeAdapter[Any]
    ) -> frozenset[type[BaseModel]]:
        """The move types whose built instances `apply_built` may hand over as they are:
        the protocol's `moves`, when its adapter is the one `Protocol.move_adapter` makes
        of them (that type, or their union by `kind`) and `trusted.revalidates` knows each.
        None for a protocol with an adapter of its own (a plug-in's may validate
        otherwise) or a move type of its own."""
        cls = type(protocol)
        standard = vars(Protocol)["move_adapter"].__func__
        own = getattr(cls.move_adapter, "__func__", None) is not standard
        if own or cls.move_adapter() is not adapter:
            return frozenset()
        moves = frozenset(cls.moves)
        return moves if trusted.REVALIDATED.issuperset(moves) else frozenset()

    def _after_malformed(self, actor: str, reason: str) -> list[ChairEvent]:
        events: list[ChairEvent] = [Rejection(to=actor, reason=reason)]
        self._malformed[actor] = self._malformed.get(actor, 0) + 1
        if self._malformed[actor] >= MALFORMED_LIMIT:
            del self._malformed[actor]
            return events + self.protocol.timeout(actor)
        # The turn is still the sender's: call it again so the session goes on.
        return events + [call for call in self.protocol.pending if call.to == actor]


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
        group_calls_from: int | None = None,
        check_workers: int | None = None,
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
        self._deadlines = _Deadlines()
        self._intake = MoveIntake(protocol)
        self._seen: dict[tuple[str, int], bytes] = {}
        self.watch_presence = watch_presence
        self.group_calls_from = max(2, GROUP_CALLS_FROM if group_calls_from is None else group_calls_from)
        self.offline: set[str] = set()
        self._rejoined: list[str] = []
        self._flushed = 0
        self._presence_filter = presence_filter(session_id)
        # Delegates' signatures: checked in this process (0), or on this many worker
        # processes while the loop goes on (see `_loop`); started with the loop's inputs.
        self.check_workers = max(0, default_check_workers() if check_workers is None else check_workers)
        self._checks = SignatureChecker(keys, self.check_workers)
        # The append in progress, if any. The loop goes on checking and recording
        # messages while SQLite writes the previous batch (in aiosqlite's thread,
        # waiting on the disk): awaiting each append inline stalled the chair for
        # every commit. At most one append runs at a time, in recording order, so the
        # ledger never gets a later batch before an earlier one (a crash still loses
        # only a tail); what is recorded meanwhile waits for the next batch.
        self._appending: asyncio.Task[None] | None = None

    async def run(self, open_body: dict[str, Any]) -> Ended:
        """Open the session and run the protocol to its end."""
        async with self._inputs() as inputs:
            env = self.signer.seal("session.open", open_body)
            raw = env.canonical()
            self._record(env, raw)
            # Only on its own retained topic, which delegates in other processes read
            # (a late or restarted one too), not also on the broadcast topic: it carries
            # the whole session file, megabytes for a large session.
            await self.bus.publish(chair_topic(self.session_id, "open"), raw, retain=True)
            await self._dispatch(self.protocol.start())
            return await self._loop(inputs)

    @contextlib.asynccontextmanager
    async def _inputs(self) -> AsyncIterator[tuple[_Inbox, int]]:
        """The delegates' outboxes and, with delegates in other processes, their presence,
        as one queue (and how many subscriptions feed it). A queue, so that the loop can
        take every message already there without a task and a wait per message."""
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self._checks)  # its workers started and warm
            subs = [await stack.enter_async_context(self.bus.subscribe(outboxes_filter(self.session_id)))]
            if self.watch_presence:
                subs.append(await stack.enter_async_context(self.bus.subscribe(presence_filter(self.session_id))))
            inbox: _Inbox = asyncio.Queue()
            pumps = [asyncio.ensure_future(_pump(sub, inbox)) for sub in subs]
            try:
                yield inbox, len(pumps)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)

    async def resume(self, rows: Sequence[Entry]) -> Ended:
        """Rebuild the protocol from a crashed session's ledger, then carry on.

        A session is a fold over its ledger: the recorded delegate moves and timeouts are
        fed to a fresh protocol in their recorded order, which brings it to the state it
        had when the last entry was written. Calls still pending are issued again.
        """
        self.replay(rows)
        async with self._inputs() as inputs:
            await self._announce("session.resume", {"after_entry": len(rows) - 1})
            await self._dispatch(list(self.protocol.pending))
            return await self._loop(inputs)

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
            stored = row.envelope if isinstance(row.envelope, bytes) else row.envelope.encode("utf-8")
            self._seen[(env.actor, env.seq)] = hashlib.sha256(stored).digest()
            self._apply(env)
        self._recorded = len(rows)

    async def _loop(self, inputs: tuple[_Inbox, int]) -> Ended:
        loop = asyncio.get_running_loop()
        inbox, feeds = inputs
        waiting: asyncio.Task[Message | _InboxEnded] | None = None
        # Batches taken from the inbox, parsed, whose signatures are being checked: the
        # oldest is consumed (in arrival order, one message at a time, by `_consume`)
        # while the later ones' are checked. In this process, one at a time, as before.
        in_flight: deque[_Batch] = deque()
        depth = _IN_FLIGHT_PER_WORKER * self.check_workers or 1
        try:
            while not self.protocol.done:
                # Appends are batched: at most `flush_interval_s` of entries wait in
                # memory (longer only while the previous append is still running), and
                # a crash loses only an unflushed tail, never a middle.
                now = loop.time()
                self._check_append()
                if self._buffer and self.flush_interval_s <= 0:
                    # No time in memory allowed: each entry is in the ledger before the
                    # chair reads on (slow; crash tests use it to stop at a given entry).
                    await self._flush()
                elif self._buffer and self._appending is None and (
                    len(self._buffer) >= self.batch_size
                    or now - self._buffered_since >= self.flush_interval_s
                ):
                    self._start_append()
                timeout = self._next_deadline(now)
                due = timeout is not None and timeout <= 0
                if due and not in_flight:
                    await self._dispatch(self._expire(now))
                    continue
                # A deadline is due while batches already taken are being checked: they
                # arrived before it, so they are settled (awaited, consumed) first, as
                # when each batch was checked inline; only then are the late timed out.
                if not due and len(in_flight) < depth:
                    items: list[Message | _InboxEnded] = []
                    if waiting is not None and waiting.done():
                        items.append(waiting.result())
                        waiting = None
                    if waiting is None and not inbox.empty():
                        # A backlog (the chair is the busy one): take what is there at
                        # once, no task nor wait per message. The inbox fills only while
                        # this loop awaits, so the reader is not starved.
                        room = _DRAIN_BURST - len(items)
                        items.extend(inbox.get_nowait() for _ in range(min(inbox.qsize(), room)))
                    if items:
                        in_flight.append(self._check_signatures(items))
                        continue  # more to take while there is room, the checks run
                if in_flight and (due or in_flight[0].checks.done()):
                    if not in_flight[0].checks.done():
                        await asyncio.wait({in_flight[0].checks})
                    batch = in_flight.popleft()
                    for item, pre in zip(batch.items, self._checked(batch), strict=True):
                        if isinstance(item, _InboxEnded):
                            if item.error is not None:
                                raise item.error
                            feeds -= 1
                            if feeds == 0:
                                raise RuntimeError("the bus closed before the session ended")
                            continue
                        if self.protocol.done:
                            break  # as before: what arrives after the end is not recorded
                        await self._dispatch(self._consume(item, pre))
                        while self._rejoined:
                            await self._resync(self._rejoined.pop(0))
                    continue
                # Nothing to do but wait: for a message (if there is room for it), the
                # oldest batch's checks, the append in progress or a deadline.
                wake: set[asyncio.Future[Any]] = set()
                if len(in_flight) < depth:
                    if waiting is None:
                        waiting = asyncio.ensure_future(inbox.get())
                    wake.add(waiting)
                if in_flight:
                    wake.add(in_flight[0].checks)
                if self._appending is not None:
                    wake.add(self._appending)  # its end may let the next batch go
                elif self._buffer:
                    flush_in = self._buffered_since + self.flush_interval_s - now
                    timeout = flush_in if timeout is None else min(timeout, flush_in)
                done, _ = await asyncio.wait(
                    wake,
                    timeout=None if timeout is None else max(0.0, timeout),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if (not done or done == {self._appending}) and not in_flight:
                    # (With batches in flight, the loop's top settles them before any
                    # deadline they beat is expired.)
                    await self._dispatch(self._expire(loop.time()))
        finally:
            if waiting is not None:
                waiting.cancel()
            for batch in in_flight:
                batch.checks.cancel()
        ended = self.protocol.ended
        assert ended is not None
        await self._announce("session.close", {"reason": ended.reason})
        await self._flush()
        return ended

    def _next_deadline(self, now: float) -> float | None:
        first = self._deadlines.earliest()
        return None if first is None else max(0.0, first - now)

    def _expire(self, now: float) -> list[ChairEvent]:
        due = self._deadlines.due(now)
        # Deadlines are dropped eagerly only for the mover and at calls (`_dispatch`),
        # so first drop those whose call the protocol no longer awaits: not missed.
        for delegate in due:
            if not self.protocol.awaits(delegate):
                del self._deadlines[delegate]
        events: list[ChairEvent] = []
        for delegate in due:
            if delegate in self._deadlines:
                del self._deadlines[delegate]
                events.extend(self._timeout(delegate, "no answer in time"))
        return events

    def _apply_timeout(self, delegate: str) -> list[ChairEvent]:
        return self.protocol.timeout(delegate)

    def _check_signatures(self, items: list[Message | _InboxEnded]) -> _Batch:
        """Parse a batch of delegate messages and start checking their signatures (see
        `SignatureChecker`: in a thread or in worker processes when there are enough of
        them). Only the work moves: `_consume` still applies every check, in the same
        order and with the same outcome, one message at a time (`_checked`)."""
        envs: list[Envelope | EnvelopeError | None] = []
        for item in items:
            if isinstance(item, _InboxEnded) or topic_matches(self._presence_filter, item.topic):
                envs.append(None)
                continue
            try:
                envs.append(Envelope.parse(item.payload))
            except EnvelopeError as exc:
                envs.append(exc)
        signed = [e for e in envs if isinstance(e, Envelope) and e.actor in self.keys]
        return _Batch(items, envs, signed, self._checks.check(signed))

    @staticmethod
    def _checked(batch: _Batch) -> list[_Checked | None]:
        """For each message of a batch whose checks are done: what `_consume` needs (None
        for what it handles itself: presence, the ends of subscriptions)."""
        verified = {id(e): ok for e, ok in zip(batch.signed, batch.checks.result(), strict=True)}
        return [
            None if e is None else (e, verified.get(id(e)) if isinstance(e, Envelope) else None)
            for e in batch.envs
        ]

    def _consume(self, message: Message, pre: _Checked | None = None) -> list[ChairEvent]:
        """Check a delegate's message; record it; feed its move to the protocol.
        `pre`: the envelope parsed and its signature checked ahead, by `_check_signatures`."""
        if topic_matches(self._presence_filter, message.topic):
            return self._presence(message)
        if pre is None:
            try:
                env = Envelope.parse(message.payload)
            except EnvelopeError as exc:
                self._record_refused(message, str(exc))
                return []
            verified: bool | None = None
        else:
            parsed, verified = pre
            if isinstance(parsed, EnvelopeError):
                self._record_refused(message, str(parsed))
                return []
            env = parsed
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
        if not (env.verify(self.keys) if verified is None else verified):
            self._record_refused(message, f"bad signature from {env.actor!r}")
            return []
        expected = self._next_seq.get(env.actor, 1)
        # Of the canonical bytes (the received ones, once `verify` proved them canonical:
        # no re-serialising), as `replay` takes them from the ledger. Ed25519 signatures
        # are deterministic, so the same message always has the same bytes.
        raw = env.canonical()
        digest = hashlib.sha256(raw).digest()
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
        self._record(env, raw)
        events = self._apply(env)
        if not events and env.actor in self._deadlines and not self.protocol.awaits(env.actor):
            del self._deadlines[env.actor]  # answered: its clock stops (see `_dispatch`)
        return events

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
        mine: list[str] = []
        for r in rows:
            if r.actor == delegate or (
                r.actor == CHAIR and r.kind in ("call", "rejection") and r.body.get("to") == delegate
            ):
                mine.append(r.envelope)
            elif r.actor == CHAIR and r.kind == "calls" and delegate in r.body.get("to", ()):
                # Only this delegate's part of a call to many: the whole list of ids, once
                # per round, would soon outgrow the resync envelope. The copy no longer
                # matches its signature; the delegate trusts it as part of the chair's
                # signed resync (it replays the history it is sent, see DelegateRunner).
                doc = json.loads(r.envelope)
                doc["body"] = doc["body"] | {"to": [delegate]}
                mine.append(json.dumps(doc))

        await self._send(delegate_inbox(self.session_id, delegate), "resync", {"entries": mine})
        await self._dispatch([call for call in self.protocol.pending if call.to == delegate])

    def _apply(self, env: Envelope) -> list[ChairEvent]:
        """What a checked, recorded delegate envelope does to the protocol."""
        if env.kind != "move":
            return []
        return self._intake.apply(env.actor, env.body.get("move"))

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
        # Swept here only when the protocol said something: a move it takes silently
        # (most votes of a round) stops just the mover's clock, in `_consume`, since a
        # sweep per move costs O(delegates); `_expire` ignores any deadline left stale.
        if events:
            waiting_on = {call.to for call in self.protocol.pending}
            for delegate in [d for d in self._deadlines if d not in waiting_on]:
                del self._deadlines[delegate]
        groups = self._group_calls(events)
        for event in events:
            if isinstance(event, Call):
                # A delegate known to be offline gets only a short grace to come back.
                # Deadlines stay per delegate, whether its call came alone or in a group.
                grace = OFFLINE_GRACE_S if event.to in self.offline else self.turn_timeout_s
                self._deadlines[event.to] = loop.time() + grace
                group = groups.get(id(event))
                if group is None:
                    body = event.model_dump(mode="json")
                    await self._send(delegate_inbox(self.session_id, event.to), "call", body)
                elif group:  # the group's first call carries it; the others are in it
                    for chunk in group:
                        await self._announce("calls", chunk)
                continue
            body = event.model_dump(mode="json")
            if isinstance(event, Rejection):
                await self._send(delegate_inbox(self.session_id, event.to), "rejection", body)
            else:
                if isinstance(event, Ended):
                    self._deadlines.clear()
                await self._announce(event.kind, body)

    def _group_calls(self, events: list[ChairEvent]) -> dict[int, list[dict[str, Any]]]:
        return group_calls(events, self.group_calls_from)

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

    def _start_append(self) -> None:
        """Hand what is buffered to the ledger in the background (see `_appending`)."""
        assert self._appending is None
        batch, self._buffer = self._buffer, []
        self._appending = asyncio.ensure_future(self._append(batch))

    def _check_append(self) -> None:
        """Forget a finished append; if it failed, fail here, in the chair's loop."""
        task = self._appending
        if task is not None and task.done():
            self._appending = None
            task.result()  # a refused append (LedgerError) ends the session, as before

    async def _append(self, batch: list[tuple[Envelope, bytes]]) -> None:
        await self.ledger.append_canonical(self.session_id, batch)
        self._flushed += len(batch)
        if 0 < _CRASH_AFTER_ENTRIES <= self._flushed:
            # Fault injection for crash tests: die as abruptly as a power cut would.
            os.kill(os.getpid(), signal.SIGKILL)

    async def _flush(self) -> None:
        """Return once everything recorded so far is in the ledger."""
        if self._appending is not None:
            await asyncio.wait({self._appending})
            self._check_append()
        if self._buffer:
            self._start_append()
            assert self._appending is not None
            await asyncio.wait({self._appending})
            self._check_append()


def group_calls(events: Sequence[ChairEvent], group_from: int) -> dict[int, list[dict[str, Any]]]:
    """Calls that are the same but for `to`, from `group_from` of them on: the
    `calls` bodies to send instead (keyed by the first call's id; its fellows map to
    an empty list). Calls outside a large enough group are not in the result.
    (The chair's, and the busless run's, `accord.local_session`.)"""
    calls = [e for e in events if isinstance(e, Call)]
    if len(calls) < group_from:
        return {}
    alike: dict[str, list[Call]] = {}
    for call in calls:
        same = call.model_dump_json(exclude={"to"})  # fields in declared order: a stable key
        alike.setdefault(same, []).append(call)
    groups: dict[int, list[dict[str, Any]]] = {}
    for members in alike.values():
        if len(members) < group_from:
            continue
        shared = members[0].model_dump(mode="json", exclude={"to"})
        chunks: list[dict[str, Any]] = []
        ids: list[str] = []
        size = 0
        for call in members:
            if ids and size + len(call.to) + 3 > _GROUP_IDS_BYTES:
                chunks.append({"to": ids} | shared)
                ids, size = [], 0
            ids.append(call.to)
            size += len(call.to) + 3
        chunks.append({"to": ids} | shared)
        groups[id(members[0])] = chunks
        for call in members[1:]:
            groups[id(call)] = []
    return groups


async def _pump(subscription: Any, inbox: _Inbox) -> None:
    """Feed one subscription's messages to the chair's inbox, then how it ended."""
    error: BaseException | None = None
    try:
        async for message in subscription:
            inbox.put_nowait(message)  # unbounded, as the subscription's own FIFO is
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - handed to the chair's loop, which raises it
        error = exc
    inbox.put_nowait(_InboxEnded(error))
