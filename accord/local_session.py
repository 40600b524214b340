"""A signed session without a bus: the chair's protocol and every delegate called
directly, in one process, every message still signed and chained into the ledger.

`run_session` on the memory bus checks each delegate message's signature on receipt,
as a chair must when delegates are other processes. Here nothing crosses a process:
checking signatures this process has just made would prove nothing. What the
signatures are for is the record, and `accord verify` (`Ledger.verify`) checks that
afterwards. So `run_local` skips the bus, the asyncio tasks and the checks on
receipt, and writes the whole session in one transaction (`Ledger.session_writer`)
instead of a batch per 50 ms.

What it writes is what `run_session(plan, ledger, bus_url="memory://")` writes: the
same entries (actor, sequence number, kind, body) in the same order, each sealed by
its actor's key (only the `ts` clocks and the keys, hence the signatures, differ), the
same checkpoints (every `CHECKPOINT_EVERY` entries, and a final one co-signed by every
delegate) and the same outcome row. It delivers the chair's messages in the order the
memory bus does (see `_Run.batches`), so the delegates make the same moves; the chair's
rules for what it records are the chair's own (`accord.chair`: sequence numbers, replayed
and oversized messages, malformed moves) minus the signature and topic checks, which
cannot fail here. `tests/test_local_session.py` checks the equality entry for entry.

What it does not do: turn timeouts (nothing is waited for: a delegate answers when it is
called) and strategies that answer asynchronously (a language model: run those on a
bus; refused before anything is written).

When the ledger is written: the session's row, its entries, its checkpoints and its
outcome are kept in memory while the session runs and stored in one transaction when it
ends, or every `FLUSH_ENTRIES` entries for a longer session (a bilateral negotiation:
one transaction). So while a session runs, the ledger does not show it yet (`accord
sessions` lists it once the first transaction is stored, with the time it started). If
the run fails (a strategy raises, the protocol stalls, the task is cancelled), what was
recorded is stored before the error propagates: the session's row (status "running", as
a crashed bus run leaves it), every entry recorded, no final checkpoint. If the process
dies outright, what was not yet stored is lost: the whole session if it had not reached
`FLUSH_ENTRIES` entries, where a bus run would have lost at most its last 50 ms.

With a ledger process (`accord.ledger_worker.LedgerWorker`, `accord run --bus none
--ledger-process`), the same transactions are that process's: the entries are streamed
to it a batch at a time, unsigned, and it signs them, chains them and (on a SQLite file)
inserts them as they come, in the transaction it commits when the session ends (or every
`FLUSH_ENTRIES` entries); what it has not taken when the session ends, this process
signs from the back while it takes from the front (`WorkerSessionWriter`).
If either process dies, the uncommitted part is lost as above.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, Final

from pydantic import BaseModel

from accord import chair as _chair
from accord.bus.topics import delegate_outbox
from accord.chair import CHAIR, MoveIntake, group_calls
from accord.delegate_runner import answer_bodies
from accord.keystore import KeyStore
from accord.ledger import Envelope, Identity, Ledger, SessionWriter, Signer
from accord.ledger.envelope import MAX_ENVELOPE_BYTES, PendingEnvelope
from accord.ledger_worker import BATCH as WORKER_BATCH
from accord.ledger_worker import LedgerWorker, WorkerSessionWriter
from accord.progress import ProgressSink, SessionEvent
from accord.session import DelegateResult, SessionResult, evaluate, new_session_id, opening_body
from accord.session_plan import SessionPlan
from delegates.delegate import Delegate
from protocols.events import Call, ChairEvent, Ended, Rejection
from protocols.trusted import dump_call

# What `accord run --bus` takes for "no bus": this module.
NO_BUS: Final = "none"
# Entries kept in memory before they are stored (one transaction each time). A bilateral
# negotiation is one transaction; a process that dies loses at most this many entries.
FLUSH_ENTRIES: Final = 8192

_Entry = tuple[Envelope, bytes]
# What a delegate is handed: a call (with its JSON body, as the bus delegate compares
# it with the last call it answered) or a rejection's reason.
_Work = tuple[Call, dict[str, Any]] | str


class LocalSessionError(RuntimeError):
    """The session cannot run without a bus (or stalled where a bus run would time out)."""


class _Member:
    """A delegate as the busless run drives it: what `DelegateRunner` keeps."""

    __slots__ = (
        "delegate", "id", "key", "last_answered", "last_move", "last_sent", "outbox", "signer", "value_model"
    )

    def __init__(self, delegate: Delegate, signer: Signer, value_model: str, outbox: str) -> None:
        self.delegate = delegate
        self.id = delegate.id
        self.signer = signer
        self.value_model = value_model
        self.outbox = outbox
        self.last_answered: dict[str, Any] | None = None
        self.last_sent: list[PendingEnvelope] = []
        # The move object behind its last `move` envelope: the chair takes it as it is
        # where validating the envelope's body would give an equal one
        # (`MoveIntake.apply_built`).
        self.last_move: tuple[PendingEnvelope, BaseModel] | None = None


class _Run:
    """The chair and the delegates of one session, driven without I/O."""

    def __init__(
        self,
        plan: SessionPlan,
        session_id: str,
        identities: dict[str, Identity],
        progress: ProgressSink | None,
        sign_here: bool = True,
    ) -> None:
        self.protocol = plan.new_protocol()
        self.intake = MoveIntake(self.protocol)
        self.chair = Signer(identities[CHAIR], session_id)
        self.members = {
            p.id: _Member(
                p.delegate, Signer(identities[p.id], session_id), p.model.hash, delegate_outbox(session_id, p.id)
            )
            for p in plan.participants
        }
        self.order = list(self.members)  # who a broadcast reaches first: subscription order
        self.progress = progress
        self.group_from = max(2, _chair.GROUP_CALLS_FROM)  # read now: tests lower it
        # Signatures are made here as each message is sealed, or by a ledger process
        # (`accord.ledger_worker`) that the entries are streamed to, a batch at a time,
        # while the session goes on.
        self.sign_here = sign_here
        self.take_every = FLUSH_ENTRIES if sign_here else min(FLUSH_ENTRIES, WORKER_BATCH)
        self.buffer: list[PendingEnvelope] = []
        self.recorded = 0
        self.next_seq: dict[str, int] = {}
        self.seen: dict[tuple[str, int], bytes] = {}
        # What the chair has published since the delegates' last turn, in order:
        # (delegate, work) on a delegate's inbox, or (None, {delegate: work} or None) on
        # the broadcast topic, which every delegate reads.
        self.published: list[tuple[str | None, Any]] = []

    # -- the run ------------------------------------------------------------------------

    def batches(self, open_body: dict[str, Any]) -> Iterator[list[PendingEnvelope]]:
        """Run the session to its end; yield the recorded entries in batches to append
        (signed, unless a ledger process signs them).

        In turns, as the memory bus has them happen: the delegates act on everything the
        chair published since their last turn (`_turn_order`), then the chair consumes
        everything they sent, in order, publishing as it goes. (On the bus a call reaches
        a delegate, and its answer the bus, through fewer tasks than the answer takes to
        reach the chair's loop: every delegate called has answered before the chair reads
        the first answer.)
        """
        self._send("session.open", open_body)
        self._dispatch(self.protocol.start())
        protocol = self.protocol
        while not protocol.done:
            published, self.published = self.published, []
            answers: list[tuple[_Member, PendingEnvelope]] = []
            for member, items in self._turn_order(published):
                for item in items:
                    if isinstance(item, str):
                        member.last_answered = None  # a call after a rejection is a new question
                        member.delegate.strategy.observe_rejection(item)
                    else:
                        answers.extend(self._answer(member, *item))
            if not answers:
                waiting = sorted({call.to for call in protocol.pending})
                raise LocalSessionError(
                    f"the protocol waits for {', '.join(waiting) or 'nobody'} and nothing is left "
                    "to deliver; on a bus the turn would time out: run it on a bus (memory://)"
                )
            for member, pending in answers:
                if protocol.done:
                    break  # what arrives after the end is not recorded
                self._consume(member, pending)
            if len(self.buffer) >= self.take_every:
                yield self.take()
        ended = protocol.ended
        assert ended is not None
        self._send("session.close", {"reason": ended.reason})
        yield self.take()

    def take(self) -> list[PendingEnvelope]:
        """The entries recorded since the last `take`."""
        batch, self.buffer = self.buffer, []
        return batch

    def _seal(self, signer: Signer, kind: str, body: dict[str, Any]) -> PendingEnvelope:
        pending = signer.seal_pending(kind, body)
        if self.sign_here:
            pending.signed_here()
        return pending

    def _answer(self, member: _Member, call: Call, body: dict[str, Any]) -> list[tuple[_Member, PendingEnvelope]]:
        """`DelegateRunner._act` and `_answer`: the envelopes a delegate sends for a call."""
        if body == member.last_answered:
            # The same call again: the bus delegate sends the same envelopes again.
            sent = member.last_sent
        else:
            member.last_answered = body
            decision = member.delegate.decide(call)
            seal, signer = self._seal, member.signer
            sent = member.last_sent = [
                seal(signer, kind, answer)
                for kind, answer in answer_bodies(call, decision, member.value_model, member.delegate.strategy)
            ]
            member.last_move = (sent[-1], decision.move)  # `answer_bodies` ends with the move
        return [(member, pending) for pending in sent]

    # -- the chair's side (`Chair._consume`, `_apply`, `_dispatch`) ----------------------

    def _consume(self, member: _Member, pending: PendingEnvelope) -> None:
        size = pending.size
        if size > MAX_ENVELOPE_BYTES:
            self._refused(member, pending, f"envelope of {size} bytes exceeds {MAX_ENVELOPE_BYTES}")
            return
        actor, seq = pending.actor, pending.seq
        expected = self.next_seq.get(actor, 1)
        if seq < expected:
            # The same signed bytes as the one recorded: the same bytes signed by the
            # same key (Ed25519 is deterministic).
            recorded = self.seen.get((actor, seq))
            if recorded is not None and (recorded is pending or recorded.message == pending.message):
                self._refused(member, pending, f"replayed sequence number {seq} from {actor!r}: already recorded")
                return
        if seq != expected:
            why = "replayed" if seq < expected else "out of order"
            self._refused(member, pending, f"{why} sequence number {seq} from {actor!r} (expected {expected})")
            return
        self.next_seq[actor] = expected + 1
        self.seen[(actor, seq)] = pending
        self._record(pending)
        if pending.kind == "move":
            built = member.last_move
            if built is not None and built[0] is pending:
                self._dispatch(self.intake.apply_built(actor, built[1], pending.body["move"]))
            else:
                self._dispatch(self.intake.apply(actor, pending.body.get("move")))

    def _refused(self, member: _Member, pending: PendingEnvelope, reason: str) -> None:
        payload = pending.signed_here().canonical()  # its hash is recorded
        body = {
            "topic": member.outbox,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "bytes": len(payload),
            "reason": reason,
        }
        self._send("refused-message", body)

    def _dispatch(self, events: list[ChairEvent]) -> None:
        if not events:
            return
        groups = group_calls(events, self.group_from) if len(events) >= self.group_from else {}
        published = self.published
        for event in events:
            if isinstance(event, Call):
                group = groups.get(id(event))
                if group is None:
                    body = dump_call(event)
                    self._deliverable(self._send("call", body).size, "call", event.to)
                    published.append((event.to, (event, body)))
                else:  # the group's first call carries it; the others are in it
                    for chunk in group:
                        self._deliverable(self._send("calls", chunk).size, "calls", event.to)
                        shared = {k: v for k, v in chunk.items() if k != "to"}
                        work = {}
                        for to in chunk["to"]:
                            mine = shared | {"to": to}  # what `call_for` gives the delegate
                            work[to] = (Call.model_validate(mine), mine)
                        published.append((None, work))
                continue
            body = event.model_dump(mode="json")
            if isinstance(event, Rejection):
                sent = self._send("rejection", body)
                # A delegate ignores a chair envelope too large to parse (it still wakes).
                published.append((event.to, event.reason if sent.size <= MAX_ENVELOPE_BYTES else None))
            else:
                self._send(event.kind, body)
                if not isinstance(event, Ended):
                    published.append((None, None))

    def _deliverable(self, size: int, kind: str, to: str) -> None:
        if size > MAX_ENVELOPE_BYTES:
            raise LocalSessionError(
                f"a {kind} envelope for {to} of {size} bytes exceeds {MAX_ENVELOPE_BYTES}: a "
                "delegate would ignore it and its turn time out; run it on a bus (memory://)"
            )

    def _turn_order(self, published: list[tuple[str | None, Any]]) -> list[tuple[_Member, list[_Work]]]:
        """Who acts on what the chair published, in the order the memory bus has them act.

        There each delegate has a reader task per subscription (its inbox, the broadcast
        topic) feeding a queue that its runner task drains. The chair's publishes wake
        the readers in publish order (a broadcast: every delegate's, in subscription
        order, which is participant order), each reader wakes its delegate's runner, and
        the runners act in the order they woke, each on everything it was handed."""
        members = self.members
        if all(to is not None and work is not None for to, work in published) and len(
            {to for to, _ in published}
        ) == len(published):
            return [(members[to], [work]) for to, work in published]  # type: ignore[index]
        readers: dict[tuple[bool, str], list[Any]] = {}
        for to, work in published:
            if to is not None:
                readers.setdefault((False, to), []).append(work)  # None: nothing to act on
                continue
            for delegate in self.order:
                readers.setdefault((True, delegate), []).append(None if work is None else work.get(delegate))
        runners: dict[str, list[_Work]] = {}
        for (_, delegate), items in readers.items():
            runners.setdefault(delegate, []).extend(item for item in items if item is not None)
        return [(members[delegate], items) for delegate, items in runners.items()]

    def _send(self, kind: str, body: dict[str, Any]) -> PendingEnvelope:
        pending = self._seal(self.chair, kind, body)
        self._record(pending)
        return pending

    def _record(self, pending: PendingEnvelope) -> None:
        self.buffer.append(pending)
        if self.progress is not None:
            self.progress(SessionEvent(self.recorded, pending.kind, pending.actor, pending.body))
        self.recorded += 1


def refuse_unrunnable(plan: SessionPlan) -> None:
    """Strategies that answer asynchronously (a language model) need the event loop
    while they think: they run on a bus, not here."""
    for p in plan.participants:
        if getattr(p.delegate.strategy, "respond_async", None) is not None:
            raise LocalSessionError(
                f"delegate {p.id!r} ({p.strategy_name}) answers asynchronously (a language "
                "model): run the session on a bus (--bus memory://)"
            )


def _outcome(ended: Ended, results: list[DelegateResult]) -> dict[str, Any]:
    """The session row's outcome, as `accord.session.finish` records it (the tests
    compare the two runs' rows)."""
    return {
        "agreement": ended.agreement,
        "reason": ended.reason,
        "round": ended.round,
        "utilities": {r.delegate: (r.breakdown.utility if r.breakdown else None) for r in results},
    }


def _signed(batch: list[PendingEnvelope]) -> list[_Entry]:
    entries = []
    for pending in batch:
        env = pending.signed_here()
        entries.append((env, env.canonical()))
    return entries


async def run_local(
    plan: SessionPlan,
    ledger: Ledger,
    *,
    session_id: str | None = None,
    keystore: KeyStore | None = None,
    progress: ProgressSink | None = None,
    extra_opening: dict[str, Any] | None = None,
    worker: LedgerWorker | None = None,
) -> SessionResult:
    """Run `plan` to its outcome without a bus; every message signed and chained into
    `ledger` as `run_session` on the memory bus would (see the module's docstring).

    With `worker` (a `LedgerWorker`, started once and shared by many sessions, one at a
    time), the messages are signed, chained and stored by that process while this one
    goes on negotiating: the same ledger, its work on another core. (Not for an
    in-memory ledger, which another process cannot open: that is written here.)"""
    refuse_unrunnable(plan)
    identities = {CHAIR: Identity.generate(CHAIR)} | {p.id: Identity.generate(p.id) for p in plan.participants}
    # One transaction for the whole session (see `SessionWriter`): the session's row,
    # every entry, the checkpoints and the outcome. Waiting on the database a dozen times
    # per session cost more than the negotiation itself.
    session_id = session_id or new_session_id(plan.spec.id)
    spec = plan.spec
    writer: SessionWriter | WorkerSessionWriter
    if worker is not None and worker.can_write(ledger):
        writer = worker.session_writer(
            ledger, session_id, spec.id, spec.title, plan.spec_hash, identities, checkpoint_signer=CHAIR
        )
    else:
        writer = ledger.session_writer(
            session_id, spec.id, spec.title, plan.spec_hash, checkpoint_signer=identities[CHAIR]
        )
    try:
        keys = {actor: i.public_key for actor, i in identities.items()}
        open_body = opening_body(plan, session_id, keys) | (extra_opening or {})
        if keystore is not None:
            keystore.save(session_id, identities)
        run = _Run(plan, session_id, identities, progress, sign_here=isinstance(writer, SessionWriter))

        def stage(batch: list[PendingEnvelope]) -> None:
            if isinstance(writer, WorkerSessionWriter):
                writer.append(batch)  # signed there
            else:
                writer.append(_signed(batch))

        try:
            for batch in run.batches(open_body):
                stage(batch)
                if writer.staged >= FLUSH_ENTRIES:
                    await writer.commit()
            # `Ledger.seal`: the final checkpoint, co-signed by every delegate.
            writer.seal(identities[CHAIR], [identities[p.id] for p in plan.participants])
            ended = run.protocol.ended
            assert ended is not None
            results = evaluate(plan, ended)
            writer.finish(_outcome(ended, results))
        except BaseException as failure:
            # As a bus run would have: what was recorded before the failure is stored, then
            # the error propagates (the session stays "running", as a crashed bus run's).
            # Unless the failure was the ledger's own (a commit refused): it said why.
            if not writer.closed:
                try:
                    if run.buffer:
                        stage(run.take())
                    await writer.commit()
                except Exception as also:  # the run's own error stays the one raised
                    failure.add_note(f"storing what was recorded before it failed too: {also!r}")
            raise
        await writer.commit()
    finally:
        if isinstance(writer, WorkerSessionWriter):
            writer.release()
    return SessionResult(session_id, ended, results, run.recorded, ledger.location)
