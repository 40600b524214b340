"""A delegate on the bus: answers the chair's calls with signed, mandate-checked moves."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from typing import Any

from accord.bus import Bus
from accord.bus.topics import broadcast_topic, chair_topic, delegate_inbox, delegate_outbox
from accord.ledger import Entry, Envelope, EnvelopeError, PublicKeys, Signer
from delegates.delegate import Delegate, Ratification
from protocols.events import Call

CHAIR = "chair"
# Think time before each answer, for watching a session live (and for fault tests).
PACE_S = float(os.environ.get("ACCORD_PACE_S", "0") or 0)
# Fault injection for tests, "DELEGATE:N": SIGKILL this process after that delegate's N-th move.
_crash_spec = os.environ.get("ACCORD_CRASH_DELEGATE", "")
_CRASH = (_crash_spec.split(":")[0], int(_crash_spec.split(":")[1])) if ":" in _crash_spec else None


class ResumeError(RuntimeError):
    """The ledger cannot be replayed into the current code and session."""


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
    ) -> None:
        """`chair_keys` None: learn the chair's key from its signed `session.open` (in
        another process, the first trustworthy word from the chair), checking that it
        lists this delegate's own key and the session file's hash (`spec_hash`).
        `expect_resync`: a restarted delegate answers nothing until the chair has sent
        its history (`resync`) and it has replayed it."""
        self.session_id = session_id
        self.delegate = delegate
        self.signer = signer
        self.chair_keys = chair_keys
        self.bus = bus
        self.value_model_hash = value_model_hash
        self.spec_hash = spec_hash
        self.ready = asyncio.Event()
        self.ignored: list[str] = []
        self._chair_seen: set[int] = set()
        self._synced = not expect_resync
        self._held: list[Envelope] = []
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
            inbox = await stack.enter_async_context(self.bus.subscribe(delegate_inbox(sid, me)))
            broadcast = await stack.enter_async_context(self.bus.subscribe(broadcast_topic(sid)))
            opening = None
            if self.chair_keys is None:
                # Retained: a delegate that joins (or rejoins) late still finds the opening.
                opening = await stack.enter_async_context(self.bus.subscribe(chair_topic(sid, "open")))
            self.ready.set()
            tasks = [asyncio.ensure_future(self._serve(inbox))]
            if opening is not None:
                tasks.append(asyncio.ensure_future(self._watch(opening)))
            try:
                await self._watch(broadcast)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        self.closed.set()

    async def _watch(self, subscription: Any) -> None:
        """Broadcasts: learn the chair's key from the opening; stop at the close."""
        async for message in subscription:
            env = self._from_chair(message.payload)
            if env is not None and env.kind == "session.close":
                return

    async def _serve(self, inbox: Any) -> None:
        async for message in inbox:
            env = self._from_chair(message.payload)
            if env is None:
                continue
            if env.kind == "resync":
                self._resync(env)
                held, self._held = self._held, []
                for waiting in held:
                    await self._act(waiting)
            elif not self._synced or self.chair_keys is None:
                self._held.append(env)
            else:
                await self._act(env)

    async def _act(self, env: Envelope) -> None:
        if env.kind == "call":
            call = Call.model_validate(env.body)
            if env.body == self._last_answered:
                # The same call again (re-issued after a reconnect): send the same answer
                # again, same sequence numbers; the chair keeps whichever copy it lacks.
                for topic, raw in self._last_sent:
                    await self.bus.publish(topic, raw)
                return
            self._last_answered = env.body
            self._last_sent = []
            await self._answer(call)
        elif env.kind == "rejection":
            self._last_answered = None  # a call after a rejection is a new question
            self.delegate.strategy.observe_rejection(str(env.body.get("reason", "")))

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
        try:
            env = Envelope.parse(payload)
        except EnvelopeError as exc:
            self.ignored.append(str(exc))
            return None
        if self.chair_keys is None and env.kind == "session.open":
            self._trust_opening(env)
        if self.chair_keys is None:
            self.ignored.append(f"before the session's opening: {env.actor} seq {env.seq}")
            return None
        if env.actor != CHAIR or env.session != self.session_id or not env.verify(self.chair_keys):
            self.ignored.append(f"not from this session's chair: {env.actor} seq {env.seq}")
            return None
        if env.seq in self._chair_seen:
            return None  # delivered again (QoS 1 is at least once): already acted on
        self._chair_seen.add(env.seq)
        return env

    def _trust_opening(self, env: Envelope) -> None:
        keys = env.body.get("keys", {})
        chair = PublicKeys({CHAIR: keys.get(CHAIR, "")})
        if env.actor != CHAIR or env.session != self.session_id or not env.verify(chair):
            self.ignored.append("an opening not signed by the key it names for the chair")
            return
        me = self.delegate.id
        if keys.get(me) != self.signer.identity.public_key:
            raise ResumeError(f"the chair opened session {self.session_id} with another key for {me}")
        if self.spec_hash is not None and env.body.get("spec_hash") != self.spec_hash:
            raise ResumeError(
                f"the chair runs session {self.session_id} from a different session file "
                f"({env.body.get('spec_hash')}) than this delegate ({self.spec_hash})"
            )
        self.chair_keys = chair

    async def _send(self, topic: str, kind: str, body: dict[str, Any]) -> None:
        raw = self.signer.seal(kind, body).canonical()
        self._last_sent.append((topic, raw))
        await self.bus.publish(topic, raw)

    async def _answer(self, call: Call) -> None:
        if PACE_S:
            await asyncio.sleep(PACE_S)
        decision = await self.delegate.decide_async(call)
        outbox = delegate_outbox(self.session_id, self.delegate.id)
        for answer in decision.ratifications:
            body = {"round": call.round, "ratification": answer.model_dump(mode="json")}
            await self._send(outbox, "ratification", body)
        for refusal in decision.refusals:
            body = {"round": call.round, "refused": refusal.move, "reason": refusal.reason}
            await self._send(outbox, "refusal", body)
        body = {
            "round": call.round,
            "value_model": self.value_model_hash,
            "move": decision.move.model_dump(mode="json"),
        }
        # What a strategy adds about how the move came about (an LLM strategy: model,
        # tokens, estimated cost, retries, fallback), beside the move, never inside it.
        notes = getattr(self.delegate.strategy, "ledger_notes", None)
        if notes is not None:
            body.update({k: v for k, v in notes().items() if k not in body})
        await self._send(outbox, "move", body)
        self.moves += 1
        if _CRASH == (self.delegate.id, self.moves):
            # Fault injection for tests: die as a killed process does, will and all.
            os.kill(os.getpid(), signal.SIGKILL)
