"""Checking envelopes' signatures in batches, on other cores, while the caller goes on.

Ed25519 verification is most of a busy chair's work (about 100 µs an envelope, against
some 15 µs to parse one and 20 µs to append it). A `SignatureChecker` takes a batch of
parsed envelopes and returns at once a future of their outcomes, so the chair can parse
the next batch and record the previous one meanwhile:

* ``workers=0`` (the default): as before, in this process, in a thread from
  `THREAD_FROM` envelopes on (verification releases the GIL) and inline below that;
* ``workers=N``: on N worker processes, started (and warmed up) by `start`. Each gets
  the public keys once; per envelope it is sent only the actor, the signature and the
  signed bytes (`Envelope.wire_signature`) and answers one bit. The outcome is then
  settled here (`Envelope.settle`): a good signature marks the received bytes as
  canonical, a failure falls back to the re-serialising check of `Envelope.verify`.

Either way each outcome is exactly what `Envelope.verify(keys)` would return. Batches
are spread over the workers (the least loaded first); the futures complete in any order,
and it is up to the caller to use them in its own. A worker that dies (killed, out of
memory) costs only speed: what it owed, and what no worker is left for, is checked in
this process.

This module imports nothing heavy at module level, so that the worker's own code pulls
in no SQLAlchemy nor pydantic; a forkserver or spawn child still re-imports the
parent's `__main__` (for the `accord` command, its CLI module), as multiprocessing does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import multiprocessing
import pickle
import socket
import struct
import time
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from accord.ledger.envelope import Envelope
    from accord.ledger.identity import PublicKeys

# From this many envelopes in a batch, `workers=0` checks them in a worker thread: a
# thread hop costs about as much as it would save below it.
THREAD_FROM: Final = 8
# How long a worker process may take to start and load the keys.
_START_TIMEOUT_S: Final = 60.0

_Item = tuple[str, bytes, bytes]  # (actor, signature, signed bytes)


class CheckerError(RuntimeError):
    """The worker processes could not be started."""


def _serve(conn: Connection, keys: dict[str, str]) -> None:
    """A worker process: verify each batch it is sent, answer one byte per item (1: the
    signature verifies) and the CPU seconds spent verifying; None ends it."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    parsed: dict[str, Ed25519PublicKey] = {}
    for actor, key in keys.items():
        try:
            parsed[actor] = Ed25519PublicKey.from_public_bytes(base64.b64decode(key, validate=True))
        except (binascii.Error, ValueError):
            continue  # never verifies here; `settle` falls back to `Envelope.verify`, which says why
    clock = time.thread_time  # CPU time: a worker preempted by other jobs is not verifying
    conn.send(("ready", 0.0))
    try:
        while True:
            items: list[_Item] | None = conn.recv()
            if items is None:
                return
            started = clock()
            out = bytearray(len(items))
            for i, (actor, signature, message) in enumerate(items):
                key = parsed.get(actor)
                if key is None:
                    continue
                try:
                    key.verify(signature, message)
                except InvalidSignature:
                    continue
                out[i] = 1
            conn.send((bytes(out), clock() - started))
    except (EOFError, KeyboardInterrupt):
        return  # the chair went away


_FRAME = struct.Struct("!i")  # multiprocessing.Connection's framing, which the worker reads


class _Worker(asyncio.Protocol):
    """This side of one worker process: batches go out through the event loop's
    transport (writes never block: a worker busy with a backlog cannot stall the chair,
    nor deadlock with it), answers come back framed as `Connection.send` frames them."""

    def __init__(self, checker: SignatureChecker, process: Any) -> None:
        self.checker = checker
        self.process = process
        self.transport: asyncio.Transport | None = None
        # The batches sent and not yet answered, in the order sent (a worker answers in
        # that order): the envelopes to settle, which of them were sent, the future.
        self.pending: deque[tuple[list[Envelope], list[int], asyncio.Future[list[bool]]]] = deque()
        self.load = 0  # envelopes sent and not yet answered
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, obj: Any) -> None:
        assert self.transport is not None
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        self.transport.write(_FRAME.pack(len(payload)) + payload)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        at = 0
        while len(buffer) - at >= _FRAME.size:
            (size,) = _FRAME.unpack_from(buffer, at)
            if len(buffer) - at - _FRAME.size < size:
                break
            answer = pickle.loads(buffer[at + _FRAME.size : at + _FRAME.size + size])
            at += _FRAME.size + size
            self.checker._answered(self, answer)
        del buffer[:at]

    def connection_lost(self, exc: Exception | None) -> None:
        self.checker._lost(self, exc)


def _start_method() -> str:
    # Not fork: the chair's process has threads (the ledger's, the bus's).
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class SignatureChecker:
    """Checks batches of envelopes' signatures (see the module's docstring)."""

    def __init__(self, keys: PublicKeys, workers: int = 0) -> None:
        if workers < 0:
            raise ValueError(f"workers must be 0 or more, not {workers}")
        self.keys = keys
        self.workers = workers
        self._workers: list[_Worker] = []
        self._closing = False
        self._started = False
        self.lost: list[str] = []
        """Worker processes that ended while in use (their work is then done here)."""
        self.verify_seconds = 0.0
        """CPU time spent verifying (in the workers, or in this process), summed."""
        self.checked = 0

    async def __aenter__(self) -> SignatureChecker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the worker processes and wait until each has loaded the keys."""
        if not self.workers or self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context(_start_method())
        keys = self.keys.as_dict()
        ready: list[asyncio.Future[list[bool]]] = []
        try:
            for n in range(self.workers):
                ours, theirs = socket.socketpair()
                with ours, theirs:
                    # The worker reads and writes its end as a multiprocessing Connection.
                    connection = Connection(theirs.detach())
                    process = context.Process(
                        target=_serve, args=(connection, keys), name=f"accord-check-{n}", daemon=True
                    )
                    worker = _Worker(self, process)
                    self._workers.append(worker)
                    process.start()
                    connection.close()
                    # The worker's first answer says it is ready: wait for it like a batch's.
                    future: asyncio.Future[list[bool]] = loop.create_future()
                    worker.pending.append(([], [], future))
                    ready.append(future)
                    await loop.create_unix_connection(lambda w=worker: w, sock=ours.dup())
            await asyncio.wait_for(asyncio.gather(*ready), _START_TIMEOUT_S)
        except BaseException:
            await self.close()
            raise

    def check(self, envelopes: Sequence[Envelope]) -> asyncio.Future[list[bool]]:
        """The outcome of `Envelope.verify(keys)` for each envelope, in their order."""
        loop = asyncio.get_running_loop()
        envs = list(envelopes)
        self.checked += len(envs)
        if not envs:
            done: asyncio.Future[list[bool]] = loop.create_future()
            done.set_result([])
            return done
        if not self._workers:
            if self.workers and not self._started:
                raise CheckerError("SignatureChecker.start() was not called")
            return self._check_here(loop, envs)  # workers=0, or every worker is gone
        # Only what verification needs crosses to the worker; an envelope without wire
        # bytes to check there (rare) is settled here, by the slow path.
        items: list[_Item] = []
        sent: list[int] = []
        for i, env in enumerate(envs):
            fast = env.wire_signature()
            if fast is not None:
                items.append((env.actor, fast[0], fast[1]))
                sent.append(i)
        future = loop.create_future()
        if not items:
            future.set_result([env.settle(self.keys, False) for env in envs])
            return future
        worker = min(self._workers, key=lambda w: w.load)
        worker.pending.append((envs, sent, future))
        worker.load += len(items)
        worker.send(items)
        return future

    def _check_here(self, loop: asyncio.AbstractEventLoop, envs: list[Envelope]) -> asyncio.Future[list[bool]]:
        keys = self.keys

        def verify_all() -> tuple[list[bool], float]:
            started = time.thread_time()
            # Each envelope is verified by one thread at a time (the caller waits for
            # the future before it touches them), and `PublicKeys` only caches parsed
            # keys: nothing is shared while this runs.
            results = [env.verify(keys) for env in envs]
            return results, time.thread_time() - started

        future: asyncio.Future[list[bool]] = loop.create_future()
        if len(envs) < THREAD_FROM:
            results, seconds = verify_all()
            self.verify_seconds += seconds
            future.set_result(results)
            return future

        def finished(done: asyncio.Future[tuple[list[bool], float]]) -> None:
            if future.cancelled():
                return
            if done.exception() is not None:
                future.set_exception(done.exception())  # type: ignore[arg-type]
                return
            results, seconds = done.result()
            self.verify_seconds += seconds
            future.set_result(results)

        loop.run_in_executor(None, verify_all).add_done_callback(finished)
        return future

    def _answered(self, worker: _Worker, answer: tuple[Any, float]) -> None:
        bits, seconds = answer
        envs, sent, future = worker.pending.popleft()
        worker.load -= len(sent)
        self.verify_seconds += seconds
        if future.cancelled():
            return
        if not envs:  # the worker's first answer: it is ready
            future.set_result([])
            return
        verified = [False] * len(envs)
        for i, bit in zip(sent, bits, strict=True):
            verified[i] = bool(bit)
        # Settled here, in order: marks good envelopes' bytes as canonical, and gives a
        # failure the slow path's second chance, as `verify` does.
        future.set_result([env.settle(self.keys, ok) for env, ok in zip(envs, verified, strict=True)])

    def _lost(self, worker: _Worker, exc: Exception | None) -> None:
        """A worker's connection ended. Unless we are closing, that worker is gone (killed,
        out of memory): what it still owed is checked here instead, and so is what comes
        next if no worker is left. The outcomes are the same, only slower."""
        if self._closing:
            return
        if worker in self._workers:
            self._workers.remove(worker)
        code = worker.process.exitcode
        self.lost.append(f"{worker.process.name} ended (exit code {code}{'' if exc is None else f', {exc!r}'})")
        while worker.pending:
            envs, _, future = worker.pending.popleft()
            if future.done():
                continue
            if not envs:  # it died before it was ready
                future.set_exception(CheckerError(f"a signature checking process failed: {self.lost[-1]}"))
                continue
            future.set_result([env.verify(self.keys) for env in envs])

    async def close(self) -> None:
        """Stop the worker processes (checks still outstanding are dropped)."""
        workers, self._workers = self._workers, []
        self._closing = True
        for worker in workers:
            for _, _, future in worker.pending:
                future.cancel()
            worker.pending.clear()
            if worker.transport is not None and not worker.transport.is_closing():
                with contextlib.suppress(Exception):
                    worker.send(None)
                    worker.transport.close()
        for worker in workers:
            process = worker.process
            if process.pid is None:
                continue  # never started
            deadline = time.monotonic() + 2.0
            while process.is_alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if process.is_alive():
                process.kill()
            process.join(timeout=1.0)
