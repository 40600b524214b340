"""A delegate on the bus: answers the chair's calls with signed, mandate-checked moves."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from accord.bus import Bus
from accord.bus.topics import broadcast_topic, chair_topic, delegate_inbox, delegate_outbox
from accord.ledger import Entry, Envelope, EnvelopeError, PublicKeys, Signer
from accord.ledger.envelope import MAX_OPENING_BYTES
from delegates.delegate import Decision, Delegate, Ratification
from protocols.events import Call
from protocols.trusted import dump_move

CHAIR = "chair"
# Think time before each answer, for watching a session live (and for fault tests).
PACE_S = float(os.environ.get("ACCORD_PACE_S", "0") or 0)
# Fault injection for tests, "DELEGATE:N": SIGKILL this process after that delegate's N-th move.
_crash_spec = os.environ.get("ACCORD_CRASH_DELEGATE", "")
_CRASH = (_crash_spec.split(":")[0], int(_crash_spec.split(":")[1])) if ":" in _crash_spec else None


# Chair messages kept while the opening (which names the chair's key) has not arrived.
_EARLY_LIMIT = 10_000


class ResumeError(RuntimeError):
    """The ledger cannot be replayed into the current code and session."""


def call_for(kind: str, body: dict[str, Any], delegate: str) -> dict[str, Any] | None:
    """`delegate`'s call (a `Call` as JSON) in a chair's `call` or `calls` body, if any.

    A `calls` envelope is one call put to many delegates at once (on the broadcast
    topic, `to` a list): the same call for each, so it is signed and logged once per
    round instead of once per delegate. Each delegate reads its own call out of it.
    """
    if kind == "call":
        return body if body.get("to") == delegate else None
    if kind == "calls":
        to = body.get("to")
        if isinstance(to, list) and delegate in to:
            return {k: v for k, v in body.items() if k != "to"} | {"to": delegate}
    return None


def answer_bodies(
    call: Call, decision: Decision, value_model_hash: str, strategy: object
) -> list[tuple[str, dict[str, Any]]]:
    """What a delegate signs in answer to `call`, in order: a `ratification` per answer
    its constituents gave, a `refusal` per move its mandate forbade, then its `move`.
    (Shared by the bus runner and the busless run, `accord.local_session`.)"""
    answers: list[tuple[str, dict[str, Any]]] = [
        ("ratification", {"round": call.round, "ratification": answer.model_dump(mode="json")})
        for answer in decision.ratifications
    ]
    answers.extend(
        ("refusal", {"round": call.round, "refused": refusal.move, "reason": refusal.reason})
        for refusal in decision.refusals
    )
    body = {
        "round": call.round,
        "value_model": value_model_hash,
        "move": dump_move(decision.move),  # `model_dump(mode="json")`, a fifth faster
    }
    # What a strategy adds about how the move came about (an LLM strategy: model,
    # tokens, estimated cost, retries, fallback), beside the move, never inside it.
    notes = getattr(strategy, "ledger_notes", None)
    if notes is not None:
        body.update({k: v for k, v in notes().items() if k not in body})
    answers.append(("move", body))
    return answers


@dataclass(frozen=True)
class Opening:
    """What delegates need from the chair's signed opening (not the session file in it)."""

    session: str
    chair_key: str
    keys: dict[str, str]
    spec_hash: str | None


class ChairWords:
    """Parses and checks each message from the chair once for all delegates of a host.

    Every local subscription of a bus gets the same payload object, so with a shared
    `ChairWords` a host of 100 delegates parses and verifies a broadcast once instead
    of 100 times, and the opening (it carries the whole session file: ~5 MB at 1,000
    delegates, ~23 MB of objects once parsed) once, keeping only the few fields
    delegates need. Results are kept for the last few payloads only, keyed by the
    exact bytes and, for verification, by the chair key that checked them.
    """

    def __init__(self, keep: int = 16) -> None:
        self._keep = keep
        self._openings: OrderedDict[bytes, Opening | str] = OrderedDict()
        self._words: OrderedDict[tuple[bytes, str], Envelope | str] = OrderedDict()
        self._keys: dict[str, PublicKeys] = {}

    def keys_for(self, chair_key: str) -> PublicKeys:
        """One `PublicKeys` per chair key, so the parsed key is shared too."""
        keys = self._keys.get(chair_key)
        if keys is None:
            keys = self._keys[chair_key] = PublicKeys({CHAIR: chair_key})
        return keys

    def opening(self, payload: bytes) -> Opening | str:
        """The opening's facts if it is a chair's `session.open` signed by the key it
        names for the chair; otherwise why not."""
        found = self._openings.get(payload)
        if found is None:
            found = self._check_opening(payload)
            self._remember(self._openings, payload, found, 2)
        return found

    def _check_opening(self, payload: bytes) -> Opening | str:
        try:
            # The one envelope allowed to be this large (see MAX_OPENING_BYTES).
            env = Envelope.parse(payload, MAX_OPENING_BYTES)
        except EnvelopeError as exc:
            return str(exc)
        keys = env.body.get("keys")
        chair_key = keys.get(CHAIR) if isinstance(keys, dict) else None
        if env.actor != CHAIR or env.kind != "session.open" or not isinstance(chair_key, str):
            return f"not a chair's opening: {env.actor} {env.kind} seq {env.seq}"
        if not env.verify(self.keys_for(chair_key)):
            return "an opening not signed by the key it names for the chair"
        assert isinstance(keys, dict)
        spec_hash = env.body.get("spec_hash")
        return Opening(
            env.session,
            chair_key,
            {k: v for k, v in keys.items() if isinstance(v, str)},
            spec_hash if isinstance(spec_hash, str) else None,
        )

    def from_chair(self, payload: bytes, chair_key: str) -> Envelope | str:
        """The envelope if it parses and is signed by `chair_key` as the chair; else why not.

        Envelopes are immutable and shared between delegates: never mutate one's body."""
        at = (payload, chair_key)
        found = self._words.get(at)
        if found is None:
            try:
                env = Envelope.parse(payload)
            except EnvelopeError as exc:
                found = str(exc)
            else:
                if env.actor != CHAIR or not env.verify(self.keys_for(chair_key)):
                    found = f"not from this session's chair: {env.actor} seq {env.seq}"
                else:
                    found = env
            self._remember(self._words, at, found)
        return found

    def _remember(self, cache: OrderedDict[Any, Any], key: Any, value: Any, keep: int = 0) -> None:
        cache[key] = value
        while len(cache) > (keep or self._keep):
            cache.popitem(last=False)


class DelegateRunner:
    def __init__(
        self,
        session_id: str,
        delegate: Delegate,
        signer: Signer,
        chair_keys: PublicKeys | None,
        bus: Bus,
        value_model_hash: str,
        *,
        spec_hash: str | None = None,
        expect_resync: bool = False,
        words: ChairWords | None = None,
    ) -> None:
        """`chair_keys` None: learn the chair's key from its signed `session.open` (in
        another process, the first trustworthy word from the chair), checking that it
        lists this delegate's own key and the session file's hash (`spec_hash`).
        `expect_resync`: a restarted delegate answers nothing until the chair has sent
        its history (`resync`) and it has replayed it. `words`: shared by the delegates
        of one host (one bus), so that each chair message is parsed and checked once."""
        self.session_id = session_id
        self.delegate = delegate
        self.signer = signer
        self.chair_keys = chair_keys
        self.words = words or ChairWords()
        self._chair_key = chair_keys.as_dict().get(CHAIR, "") if chair_keys is not None else ""
        self._early: list[tuple[str, bytes]] = []
        self.bus = bus
        self.value_model_hash = value_model_hash
        self.spec_hash = spec_hash
        self.ready = asyncio.Event()
        self.ignored: list[str] = []
        self._chair_seen: set[int] = set()
        self._synced = not expect_resync
        self._held: list[tuple[str, dict[str, Any]]] = []
        self._last_answered: dict[str, Any] | None = None
        self._last_sent: list[tuple[str, bytes]] = []
        self.closed = asyncio.Event()
        self.moves = 0

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
            mine = call_for(env.kind, env.body, me) if env.actor == CHAIR else None
            if mine is not None:
                last_call = Call.model_validate(mine)
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
                restore = getattr(self.delegate.strategy, "restore", None)
                if restore is not None:
                    # A strategy that cannot re-decide deterministically (a language model)
                    # takes its recorded move as given instead of being asked again.
                    restore(last_call, env.body.get("move") or {})
                    last_call = None
                    continue
                again = self.delegate.decide(last_call).move.model_dump(mode="json")
                if again != env.body.get("move"):
                    raise ResumeError(
                        f"entry {row.idx}: {me}'s strategy no longer makes the move it recorded; "
                        "the session file or the code changed since the session ran"
                    )
                last_call = None

    async def run(self) -> None:
        sid, me = self.session_id, self.delegate.id
        async with contextlib.AsyncExitStack() as stack:
            subs = {
                "inbox": await stack.enter_async_context(self.bus.subscribe(delegate_inbox(sid, me))),
                "broadcast": await stack.enter_async_context(self.bus.subscribe(broadcast_topic(sid))),
            }
            if self.chair_keys is None:
                # Retained: a delegate that joins (or rejoins) late still finds the opening.
                subs["open"] = await stack.enter_async_context(self.bus.subscribe(chair_topic(sid, "open")))
            self.ready.set()
            # One queue, one consumer: a call that comes on the broadcast topic and one
            # that comes to the inbox are handled one at a time, in arrival order.
            queue: asyncio.Queue[tuple[str, bytes | None]] = asyncio.Queue()
            pumps = [asyncio.ensure_future(_pump(where, sub, queue)) for where, sub in subs.items()]
            try:
                while True:
                    where, payload = await queue.get()
                    if payload is None:
                        if where == "broadcast":
                            break  # the bus closed
                        continue
                    if await self._handle(where, payload):
                        break  # the session closed
            finally:
                for task in pumps:
                    task.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        self.closed.set()

    async def _handle(self, where: str, payload: bytes) -> bool:
        """Act on one message from `where` (inbox, broadcast, open); True at the close."""
        if where == "open":
            if self.chair_keys is None:
                self._trust_opening(payload)
                if self.chair_keys is not None:
                    early, self._early = self._early, []
                    for was, held in early:
                        if await self._handle(was, held):
                            return True
            return False
        if self.chair_keys is None:
            # Not checkable yet: keep it until the opening names the chair's key.
            if len(self._early) < _EARLY_LIMIT:
                self._early.append((where, payload))
            else:
                self.ignored.append("before the session's opening: too many, dropped")
            return False
        env = self._from_chair(payload)
        if env is None:
            return False
        if where == "broadcast":
            if env.kind == "session.close":
                return True
            if env.kind != "calls":
                return False  # absences, the end: nothing for a delegate to do
        elif env.kind == "resync":
            self._resync(env)
            held, self._held = self._held, []
            for kind, body in held:
                await self._act(kind, body)
            return False
        if env.kind in ("call", "calls"):
            mine = call_for(env.kind, env.body, self.delegate.id)
            if mine is None:
                if env.kind == "call":
                    self.ignored.append(f"a call to {env.body.get('to')!r}, not to this delegate")
                return False
            work: tuple[str, dict[str, Any]] = ("call", mine)
        elif env.kind == "rejection" and env.body.get("to") == self.delegate.id:
            work = ("rejection", env.body)
        else:
            return False
        if not self._synced:
            self._held.append(work)
        else:
            await self._act(*work)
        return False

    async def _act(self, kind: str, body: dict[str, Any]) -> None:
        if kind == "call":
            if body == self._last_answered:
                # The same call again (re-issued after a reconnect): send the same answer
                # again, same sequence numbers; the chair keeps whichever copy it lacks.
                for topic, raw in self._last_sent:
                    await self.bus.publish(topic, raw)
                return
            call = Call.model_validate(body)
            self._last_answered = body
            self._last_sent = []
            await self._answer(call)
        elif kind == "rejection":
            self._last_answered = None  # a call after a rejection is a new question
            self.delegate.strategy.observe_rejection(str(body.get("reason", "")))

    def _resync(self, env: Envelope) -> None:
        """Replay the history the chair sent, unless this process has already acted."""
        if not self._synced:
            rows = [
                Entry(self.session_id, n, "", 0, "", raw, "", "")
                for n, raw in enumerate(env.body.get("entries", []))
            ]
            self.replay(rows)
            self._synced = True

    def _from_chair(self, payload: bytes) -> Envelope | None:
        """Only signed words of this session's chair are acted on; anything else is noted."""
        found = self.words.from_chair(payload, self._chair_key)
        if isinstance(found, str):
            self.ignored.append(found)
            return None
        if found.session != self.session_id:
            self.ignored.append(f"not from this session's chair: {found.actor} seq {found.seq}")
            return None
        if found.seq in self._chair_seen:
            return None  # delivered again (QoS 1 is at least once): already acted on
        self._chair_seen.add(found.seq)
        return found

    def _trust_opening(self, payload: bytes) -> None:
        facts = self.words.opening(payload)
        if isinstance(facts, str):
            self.ignored.append(facts)
            return
        if facts.session != self.session_id:
            self.ignored.append(f"an opening of another session, {facts.session!r}")
            return
        me = self.delegate.id
        if facts.keys.get(me) != self.signer.identity.public_key:
            raise ResumeError(f"the chair opened session {self.session_id} with another key for {me}")
        if self.spec_hash is not None and facts.spec_hash != self.spec_hash:
            raise ResumeError(
                f"the chair runs session {self.session_id} from a different session file "
                f"({facts.spec_hash}) than this delegate ({self.spec_hash})"
            )
        self._chair_key = facts.chair_key
        self.chair_keys = self.words.keys_for(facts.chair_key)

    async def _send(self, topic: str, kind: str, body: dict[str, Any]) -> None:
        raw = self.signer.seal(kind, body).canonical()
        self._last_sent.append((topic, raw))
        await self.bus.publish(topic, raw)

    async def _answer(self, call: Call) -> None:
        if PACE_S:
            await asyncio.sleep(PACE_S)
        decision = await self.delegate.decide_async(call)
        outbox = delegate_outbox(self.session_id, self.delegate.id)
        for kind, body in answer_bodies(call, decision, self.value_model_hash, self.delegate.strategy):
            await self._send(outbox, kind, body)
        self.moves += 1
        if _CRASH == (self.delegate.id, self.moves):
            # Fault injection for tests: die as a killed process does, will and all.
            os.kill(os.getpid(), signal.SIGKILL)


async def _pump(where: str, subscription: Any, queue: asyncio.Queue[tuple[str, bytes | None]]) -> None:
    """Feed one subscription's payloads into the runner's queue; None when it ends."""
    try:
        async for message in subscription:
            queue.put_nowait((where, message.payload))
    finally:
        queue.put_nowait((where, None))
