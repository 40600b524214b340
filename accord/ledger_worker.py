"""A busless session's ledger work in a second process: every message signed, chained
and written into the ledger there, on another core, while this process negotiates.

A busless session (`accord.local_session.run_local`) in one process spends most of its
time on the ledger, not the negotiation: two Ed25519 signatures per move, the hash
chain, the Merkle tree, the rows and the transaction. With a `LedgerWorker`, this
process assembles each message's canonical bytes but its signature
(`accord.ledger.envelope.PendingEnvelope`) and streams them to the worker as they are
recorded; the worker signs them (Ed25519 is deterministic: the bytes this process would
make), chains them and stores them with a `SessionWriter` of its own on the same ledger,
inserting them as they come on a SQLite file (`SessionWriter.write_ahead`; on
PostgreSQL all at the end) and committing when the session ends, and signs the
checkpoints. It is fed a batch at a time, as it takes them
(the pipe's unread bytes tell: FIONREAD); at the session's end, what it has not taken
this process signs from the back while the worker takes from the front, so that
neither waits for the other longer than it must. What the negotiation needs meanwhile (an envelope's size,
whether a message is a replay) does not depend on the signature's value. The ledger is
the one a session signed and written here would leave (tests/test_local_session.py
compares them entry for entry).

The worker holds private keys: only those of the session it is writing, in a process
this one started, that reads only from this one's pipe. It is told the ledger's URL, so
it writes to a ledger file or database another process can open (not an in-memory
one: `can_write`). If it dies, the session's entries it had not committed are lost, as
they would be if this process died, and `commit` says so (`LedgerError`).
"""

from __future__ import annotations

import array
import asyncio
import json
import os
import signal
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any, Final

import orjson

try:  # the pipe's unread bytes (`LedgerWorker.backlogged`): POSIX only
    import fcntl
    import termios
except ImportError:  # Windows: the worker is fed everything at once
    fcntl = termios = None  # type: ignore[assignment]

from accord.ledger.envelope import PendingEnvelope, now_iso, signed_canonical
from accord.ledger.identity import Identity, b64
from accord.ledger.store import CHECKPOINT_EVERY, Ledger, LedgerError, SessionWriter, cited_cards, describe_location

# A request is a sequence of frames, each an operation and its payload's length, then
# the payload. Only COMMIT is answered (an empty reply, or what went wrong), and PING
# (an empty reply).
_FRAME: Final = struct.Struct("<BI")
_KEY, _OPEN, _ENTRY, _SIGNED, _SEAL, _FINISH, _COMMIT, _CLOSE, _PING = range(1, 10)
# An entry to sign: its key's number and the lengths of the bytes before the signature
# (`PendingEnvelope.head`) and of its parts (actor, seq, kind, cited cards: JSON); then
# those, then the bytes after the signature (`PendingEnvelope.tail`).
_ENTRY_HEAD: Final = struct.Struct("<HII")
# An entry signed already (sealed the slow way here): the length of its parts, the parts,
# then its canonical bytes.
_SIGNED_HEAD: Final = struct.Struct("<I")
_KEY_HEAD: Final = struct.Struct("<H")
# Entries per request: a request costs the sender a few µs, an entry's signature about
# 20 µs in the worker; larger batches leave the worker idle at a session's start.
BATCH: Final = 8
_OK: Final = b""


class _Session:
    """What the worker holds of the session it is writing."""

    def __init__(self, writer: SessionWriter) -> None:
        self.writer = writer
        self.error: str | None = None


class _Worker:
    """The worker's side: keys, open ledgers, the session being written."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.keys: dict[int, Identity] = {}
        # Ledgers opened, by URL, with the identity of the SQLite file (None otherwise):
        # a file replaced at the same path is a new ledger, opened anew.
        self.ledgers: dict[str, tuple[Ledger, tuple[int, int] | None]] = {}
        self.session: _Session | None = None
        self.failure: str | None = None  # a session that could not be opened

    def identity(self, key: int) -> Identity:
        return self.keys[key]

    def handle(self, request: bytes) -> bytes | None:
        """Carry out `request`'s frames; the reply to its COMMIT, if it has one."""
        reply = None
        view = memoryview(request)
        pos, end, frame = 0, len(request), _FRAME.size
        staged: list[Any] = []  # this request's entries, appended together
        while pos < end:
            if pos + frame > end:
                raise _Garbled(f"a frame header at byte {pos} of a {end}-byte request")
            op, length = _FRAME.unpack_from(request, pos)
            pos += frame
            if pos + length > end:
                raise _Garbled(f"a {length}-byte frame at byte {pos} of a {end}-byte request")
            payload = view[pos : pos + length]
            pos += length
            if op == _ENTRY or op == _SIGNED:
                if self.session is not None and self.session.error is None:
                    try:
                        staged.append(self.entry(op, payload))
                    except Exception as exc:  # noqa: BLE001 - told to the session at its commit
                        self.fail(exc)
                continue
            self.flush(staged)
            staged = []
            if op == _KEY:
                (key,) = _KEY_HEAD.unpack_from(payload)
                secret = bytes(payload[_KEY_HEAD.size : _KEY_HEAD.size + 64])
                # Made now, while the session's process starts negotiating: the
                # checkpoints are signed with these.
                actor = bytes(payload[_KEY_HEAD.size + 64 :]).decode()
                self.keys[key] = Identity.from_private_bytes(actor, secret[:32])
            elif op == _OPEN:
                self.open(json.loads(bytes(payload)))
            elif op == _CLOSE:
                for key in json.loads(bytes(payload)):
                    self.keys.pop(key, None)
                self.drop_session()
            elif op == _COMMIT:
                reply = self.commit()
            elif op == _PING:
                reply = _OK
            else:
                self.staged_call(op, bytes(payload))
        self.flush(staged)
        return reply

    def entry(self, op: int, payload: memoryview) -> tuple[str, int, str, bytes, list[str]]:
        if op == _SIGNED:
            (parts_len,) = _SIGNED_HEAD.unpack_from(payload)
            start = _SIGNED_HEAD.size
            actor, seq, kind, cards = orjson.loads(payload[start : start + parts_len])
            return actor, seq, kind, bytes(payload[start + parts_len :]), cards
        key, head_len, parts_len = _ENTRY_HEAD.unpack_from(payload)
        start = _ENTRY_HEAD.size
        head = payload[start : start + head_len]
        actor, seq, kind, cards = orjson.loads(payload[start + head_len : start + head_len + parts_len])
        tail = payload[start + head_len + parts_len :]
        signature = self.keys[key].sign(b"".join((head, b",", tail)))
        return actor, seq, kind, signed_canonical(head, b64(signature), tail), cards

    def flush(self, staged: list[Any]) -> None:
        """Stage `staged` and insert it at once (`SessionWriter.write_ahead`): the
        inserts run while the session's process goes on negotiating, and its commit
        waits only for the rest."""
        session = self.session
        if staged and session is not None and session.error is None:
            try:
                session.writer.append_parts(staged)
                session.writer.write_ahead()
            except Exception as exc:  # noqa: BLE001 - told to the session at its commit
                self.fail(exc)

    def fail(self, exc: BaseException) -> None:
        """The session failed: told at its commit; what it inserted is rolled back."""
        assert self.session is not None
        self.session.error = _describe(exc)
        if not self.session.writer.closed:
            self.session.writer.abandon()

    def drop_session(self) -> None:
        """Forget the session (rolled back, if it left anything uncommitted)."""
        if self.session is not None and self.session.writer.written_ahead:
            self.session.writer.abandon()
        self.session, self.failure = None, None

    def open(self, header: dict[str, Any]) -> None:
        self.drop_session()
        try:
            ledger = self.ledger(header["url"])
            signer = header["checkpoint_key"]
            writer = ledger.session_writer(
                header["session_id"], header["spec_id"], header["title"], header["spec_hash"],
                checkpoint_signer=None if signer is None else self.identity(signer),
                checkpoint_every=header["checkpoint_every"],
                created_at=header["created_at"],
            )
        except Exception as exc:  # noqa: BLE001 - told at the session's first commit
            self.failure = _describe(exc)
            return
        self.session = _Session(writer)
        try:
            writer.write_ahead()  # the session's row, while the first entries are made
        except Exception as exc:  # noqa: BLE001 - told to the session at its commit
            self.fail(exc)

    def ledger(self, url: str) -> Ledger:
        """The ledger at `url`, opened once (again if its SQLite file was replaced)."""
        path = describe_location(url) if url.startswith("sqlite") else None
        identity = _file_identity(path) if path is not None else None
        known = self.ledgers.get(url)
        if known is not None:
            if known[1] == identity:
                return known[0]
            del self.ledgers[url]
            self.loop.run_until_complete(known[0].close())
        ledger = self.loop.run_until_complete(Ledger.open(url, create=False))
        self.ledgers[url] = (ledger, _file_identity(path) if path is not None else None)
        return ledger

    def staged_call(self, op: int, payload: bytes) -> None:
        session = self.session
        if session is None or session.error is not None:
            return
        try:
            if op == _SEAL:
                keys = json.loads(payload)
                session.writer.seal(self.identity(keys[0]), [self.identity(k) for k in keys[1:]])
            elif op == _FINISH:
                session.writer.finish(json.loads(payload))
            else:
                raise ValueError(f"unknown operation {op}")
        except Exception as exc:  # noqa: BLE001 - told to the session at its commit
            self.fail(exc)

    def commit(self) -> bytes:
        session = self.session
        if session is None:
            return (self.failure or "no session is open").encode()
        if session.error is not None:
            return session.error.encode()
        if session.writer.closed:
            return b"an earlier commit failed; this writer is closed"
        try:
            self.loop.run_until_complete(session.writer.commit())
        except Exception as exc:  # noqa: BLE001 - the session's process raises it
            session.error = _describe(exc)
            return session.error.encode()
        return _OK

    def close(self) -> None:
        self.drop_session()
        for ledger, _ in self.ledgers.values():
            self.loop.run_until_complete(ledger.close())
        self.loop.close()


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _Garbled(Exception):
    """A request that does not parse: the pipe carries no more meaning (the sender was
    interrupted part-way), so the worker stops."""


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, LedgerError) else f"{type(exc).__name__}: {exc}"


def _serve(requests: Connection, replies: Connection) -> None:
    """The worker's loop: carry out what arrives, until the pipe closes."""
    worker = _Worker()
    try:
        while True:
            try:
                request = requests.recv_bytes()
            except (EOFError, OSError):
                return
            try:
                reply = worker.handle(request)
            except _Garbled as exc:
                print(f"accord ledger process: stopping on a garbled request: {exc}", file=sys.stderr)
                return
            if reply is not None:
                try:
                    replies.send_bytes(reply)
                except (BrokenPipeError, OSError):
                    return
    finally:
        worker.close()


def main() -> None:
    """``python -m accord.ledger_worker``: serve requests on stdin, replies on stdout
    (which nothing else may write to: whatever would print goes to stderr instead)."""
    # Ctrl-C reaches the whole process group: the session's process decides what happens
    # (it closes the pipe, and this process ends); a traceback from here would say nothing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.dup(1)
    os.dup2(2, 1)
    _serve(Connection(0, writable=False), Connection(replies, readable=False))


class LedgerWorker:
    """A process that signs and stores busless sessions. Start it once (`LedgerWorker()`
    or ``with LedgerWorker() as w``: a process start, well under a second) and hand it to
    as many sessions as you like, one at a time (`run_local(..., worker=w)`); `close` it
    when done.

    Not thread-safe: one session at a time writes through it."""

    def __init__(self) -> None:
        # A new interpreter running this module, not a multiprocessing child: that one
        # would import the caller's main script again (and fail in one without a
        # ``__main__`` guard).
        # -P: the current directory is not put on sys.path, so no `accord/` or `nacl/`
        # folder there is imported by the process that holds the keys.
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-m", "accord.ledger_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._requests = Connection(os.dup(self._process.stdin.fileno()), readable=False)
        self._replies = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        self._process.stdin.close()
        self._process.stdout.close()
        self._frames: list[bytes] = []  # the request being filled
        self._broken = False
        self._busy = False  # a session is being written
        self._closed = False
        self._unread = array.array("i", [0])
        self._retired = False

    @property
    def pid(self) -> int:
        """The worker's process id (to watch its CPU time, say)."""
        return self._process.pid

    @property
    def broken(self) -> bool:
        """The worker died or its pipe broke: it writes no more sessions."""
        return self._broken

    def ready(self) -> bool:
        """Wait until the worker answers (it has started: its imports take a moment);
        whether it did (False: it died)."""
        if self._broken:
            return False
        self._frame(_PING, b"")
        self._send()
        return self._reply() is not None

    def can_write(self, ledger: Ledger) -> bool:
        """Whether the worker can write to `ledger`: one another process can open (a
        SQLite file or a database server, not an in-memory SQLite ledger)."""
        in_memory = ledger.location == ":memory:" or "mode=memory" in ledger.url or ":memory:" in ledger.url
        return not self._broken and not self._closed and not in_memory

    def session_writer(
        self,
        ledger: Ledger,
        session_id: str,
        spec_id: str,
        title: str,
        spec_hash: str,
        identities: Mapping[str, Identity],
        *,
        checkpoint_signer: str | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> WorkerSessionWriter:
        """A writer for a new session of `ledger`, written by the worker: what
        `Ledger.session_writer` gives, but for pending envelopes, signed there with the
        keys of `identities` (by actor)."""
        if not self.can_write(ledger):
            raise LedgerError(
                "the ledger process cannot write to an in-memory ledger" if not self._broken and not self._closed
                else "the ledger process has stopped: start another"
            )
        if self._busy:
            raise LedgerError("the ledger process is writing another session: one at a time")
        ledger.check_new_session_id(session_id)  # refused before the session runs, as here
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint interval must be positive, not {checkpoint_every}")
        keys: dict[str, int] = {}
        for number, (actor, identity) in enumerate(identities.items()):
            keys[actor] = number
            self._frame(_KEY, _KEY_HEAD.pack(number) + identity.sodium_secret + actor.encode())
        header = {
            "url": ledger.url,
            "session_id": session_id,
            "spec_id": spec_id,
            "title": title,
            "spec_hash": spec_hash,
            "created_at": now_iso(),
            "checkpoint_key": None if checkpoint_signer is None else keys[checkpoint_signer],
            "checkpoint_every": checkpoint_every,
        }
        self._frame(_OPEN, json.dumps(header).encode())
        self._send()  # the worker gets ready while the negotiation starts
        self._busy = True
        return WorkerSessionWriter(self, session_id, keys)

    # -- what a WorkerSessionWriter asks of it -------------------------------------------

    def _frame(self, op: int, payload: bytes) -> None:
        self._frames.append(_FRAME.pack(op, len(payload)) + payload)

    def backlogged(self) -> bool:
        """The worker has not yet started on a request sent earlier: its signing is behind
        the negotiation (the bytes it has not read are still in the pipe)."""
        if self._broken or fcntl is None:
            return False
        unread = self._unread
        try:
            fcntl.ioctl(self._requests.fileno(), termios.FIONREAD, unread, True)
        except OSError:
            return False
        return unread[0] > 0

    def _send(self) -> None:
        if not self._frames:
            return
        request, self._frames = b"".join(self._frames), []
        if self._broken:
            return
        try:
            self._requests.send_bytes(request)
        except (BrokenPipeError, OSError):
            self._broken = True
        except BaseException:
            # Interrupted part-way (Ctrl-C): the worker would read the rest of the pipe
            # as garbage. It is not used again.
            self._retire()
            raise

    def _reply(self) -> bytes | None:
        """The worker's next reply; None if it died (or had died)."""
        if self._broken:
            return None
        try:
            return self._replies.recv_bytes()
        except (EOFError, OSError):
            self._broken = True
        except BaseException:
            # Interrupted while waiting: the reply would be read as the next request's.
            self._retire()
            raise
        return None

    def _retire(self) -> None:
        """Use the worker no more, and end it now: a session it was writing holds the
        ledger's write lock until its process ends (its transaction is then rolled
        back), and the sessions written here meanwhile need that lock."""
        self._broken = self._retired = True
        self._process.kill()
        self._process.wait()

    def _commit(self) -> str | None:
        """Ask the worker to commit; what went wrong, or None."""
        self._frame(_COMMIT, b"")
        self._send()
        reply = self._reply()
        if reply is not None:
            return reply.decode() if reply else None
        if self._retired:
            return (
                f"the ledger process (pid {self._process.pid}) was ended after an interrupt: whether "
                "the session's entries since its last commit were stored is not known (accord verify tells)"
            )
        code = self._process.poll()
        return (
            f"the ledger process (pid {self._process.pid}) "
            f"{'died (exit code ' + str(code) + ')' if code is not None else 'stopped answering'}: "
            "the session's entries since its last commit are not stored"
        )

    def _release(self, keys: Sequence[int]) -> None:
        self._frame(_CLOSE, json.dumps(list(keys)).encode())
        self._send()
        self._busy = False

    def close(self) -> None:
        """Stop the worker (it exits when its pipe closes)."""
        if self._closed:
            return
        self._closed = True
        self._requests.close()
        self._replies.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> LedgerWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WorkerSessionWriter:
    """`SessionWriter`'s part that `run_local` uses, for a session that a `LedgerWorker`
    signs and writes: entries appended as pending envelopes, sent as they come; `commit`
    waits for the worker's transaction and raises what it refused (`LedgerError`). After
    a failed commit, as `SessionWriter`, it refuses any further use."""

    def __init__(self, worker: LedgerWorker, session_id: str, keys: dict[str, int]) -> None:
        self._worker = worker
        self.session_id = session_id
        self._keys = keys
        self._staged = 0
        self._broken = False
        self._released = False
        self._queue: deque[PendingEnvelope] = deque()  # appended, not yet sent

    @property
    def staged(self) -> int:
        """Entries appended since the last commit."""
        return self._staged

    @property
    def closed(self) -> bool:
        """A commit failed: the writer refuses any further use."""
        return self._broken

    def _usable(self) -> None:
        if self._broken:
            raise LedgerError(f"session {self.session_id!r}: an earlier commit failed; this writer is closed")
        if self._released:
            raise LedgerError(f"session {self.session_id!r}: this writer was released")

    def append(self, items: Sequence[PendingEnvelope]) -> None:
        """Stage `items` (this session's, in ledger order) to be signed, chained and
        stored by the worker (see `_feed`)."""
        self._usable()
        self._queue.extend(items)
        self._staged += len(items)
        self._feed()

    def _feed(self) -> None:
        """Send the worker the next batches, just in time: one more whenever it has taken
        everything sent so far (so it always has the next batch at hand, and the rest
        waits here, where `_drain` can share it out)."""
        queue, worker = self._queue, self._worker
        while len(queue) >= BATCH and not worker.backlogged():
            self._send([queue.popleft() for _ in range(BATCH)])

    def _drain(self) -> None:
        """Send everything still queued: the worker takes batches from the front while
        this process, which would otherwise wait for it, signs from the back; what is
        signed here follows the rest, in order."""
        queue, worker = self._queue, self._worker
        signed_here: list[PendingEnvelope] = []
        while queue:
            if worker.backlogged():
                pending = queue.pop()
                pending.signed_here()
                signed_here.append(pending)
            else:
                self._send([queue.popleft() for _ in range(min(BATCH, len(queue)))])
        signed_here.reverse()
        self._send(signed_here)

    def _send(self, batch: list[PendingEnvelope]) -> None:
        """`batch` to the worker, in one request: to be signed there, or as they are where
        they are signed already."""
        if not batch:
            return
        worker, keys, dumps = self._worker, self._keys, orjson.dumps
        # Framed apart, then handed over whole: a frame cut short by an interrupt would
        # garble the request it went out with.
        frames: list[bytes] = []
        frame, entry_head = _FRAME.pack, _ENTRY_HEAD.pack
        for pending in batch:
            kind = pending.kind
            parts = dumps((pending.actor, pending.seq, kind, cited_cards(kind, pending.body)))
            if pending.envelope is None:
                head, tail = pending.head, pending.tail
                frames.append(frame(_ENTRY, _ENTRY_HEAD.size + len(head) + len(parts) + len(tail)))
                frames.append(entry_head(keys[pending.actor], len(head), len(parts)))
                frames.append(head)
                frames.append(parts)
                frames.append(tail)
            else:  # signed here (or sealed here already, the slow way): stored as it is
                canonical = pending.envelope.canonical()
                frames.append(frame(_SIGNED, _SIGNED_HEAD.size + len(parts) + len(canonical)))
                frames.append(_SIGNED_HEAD.pack(len(parts)))
                frames.append(parts)
                frames.append(canonical)
        worker._frames.extend(frames)
        worker._send()

    def seal(self, log: Identity, witnesses: Sequence[Identity] = ()) -> None:
        """`SessionWriter.seal`, in the worker: the checkpoint of every entry so far,
        signed by `log` and co-signed by every witness (their keys are the session's).
        Sent at once: the worker seals while this process finishes the session."""
        self._usable()
        self._drain()
        self._worker._frame(_SEAL, json.dumps([self._keys[i.actor] for i in (log, *witnesses)]).encode())
        self._worker._send()

    def finish(self, outcome: dict[str, Any]) -> None:
        """`SessionWriter.finish`, in the worker."""
        self._usable()
        self._drain()
        self._worker._frame(_FINISH, json.dumps(outcome, sort_keys=True).encode())

    async def commit(self) -> None:
        """Wait for the worker to store everything staged, in one transaction."""
        self._usable()
        self._drain()
        error = self._worker._commit()
        if error is not None:
            self._broken = True
            raise LedgerError(f"session {self.session_id!r} in the ledger process: {error}")
        self._staged = 0

    def release(self) -> None:
        """The worker forgets this session and its keys (call once, when done)."""
        if not self._released:
            self._released = True
            self._worker._release(list(self._keys.values()))


if __name__ == "__main__":
    main()
