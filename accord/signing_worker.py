"""Ed25519 signing in a second process, so that a busless session's signatures are made
on another core while the negotiation goes on.

A busless session (`accord.local_session.run_local`) signs every message, the chair's
calls and the delegates' moves: two signatures per move, about a third of its time in
one process. Ed25519 signatures are deterministic (RFC 8032): the worker makes exactly
the bytes this process would, so the ledger is the same whichever signed it; the worker
only changes when they are made. What the negotiation needs meanwhile (an envelope's
size, whether a message is a replay) does not depend on the signature's value
(`accord.ledger.envelope.PendingEnvelope`).

The worker holds private keys: only for the sessions that registered them (`register`,
then `forget`), in a process this one started, that reads only from this one's pipe.
If it dies, what it had not yet returned is signed here (`signatures`), and the worker
is not used again.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Final

import nacl.bindings

# A request is a sequence of frames: (key number, length) then the message; a key number
# of _REGISTER registers the 64-byte libsodium secret that follows under `length`, and
# _FORGET forgets key number `length`. The reply to a request is its signatures, 64 bytes
# each, in order (an empty reply to a request that signs nothing).
_FRAME: Final = struct.Struct("<HI")
_REGISTER: Final = 0xFFFF
_FORGET: Final = 0xFFFE
_MAX_KEYS: Final = 0xFFF0
SIGNATURE_BYTES: Final = 64
# Messages per request: a request and its reply cost the sender a few µs, a signature
# about 20; larger batches leave the worker idle at a session's start and end.
BATCH: Final = 16


def _serve(requests: Connection, replies: Connection) -> None:
    """The worker's loop: sign what arrives, until the pipe closes."""
    sign, unpack, size = nacl.bindings.crypto_sign, _FRAME.unpack_from, _FRAME.size
    keys: dict[int, bytes] = {}
    while True:
        try:
            request = requests.recv_bytes()
        except (EOFError, OSError):
            return
        view = memoryview(request)
        signatures = []
        pos, end = 0, len(request)
        while pos < end:
            key, length = unpack(request, pos)
            pos += size
            if key == _REGISTER:
                keys[length] = bytes(view[pos : pos + 64])
                pos += 64
            elif key == _FORGET:
                keys.pop(length, None)
            else:
                # crypto_sign returns the signature followed by the message.
                signatures.append(sign(bytes(view[pos : pos + length]), keys[key])[:SIGNATURE_BYTES])
                pos += length
        try:
            replies.send_bytes(b"".join(signatures))
        except (BrokenPipeError, OSError):
            return


def main() -> None:
    """``python -m accord.signing_worker``: serve requests on stdin, replies on stdout
    (which nothing else may write to: whatever would print goes to stderr instead)."""
    # Ctrl-C reaches the whole process group: the session's process decides what happens
    # (it closes the pipe, and this process ends); a traceback from here would say nothing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.dup(1)
    os.dup2(2, 1)
    _serve(Connection(0, writable=False), Connection(replies, readable=False))


class SigningWorker:
    """A signing process. Start it once (`SigningWorker()` or `with SigningWorker() as w`:
    a process start, about 0.1 s) and hand it to as many sessions as you like
    (`run_local(..., signing=worker)`); `close` it when done.

    Not thread-safe: one session at a time submits to it (`run_local` runs a session
    without yielding to the event loop between its first and last signature)."""

    def __init__(self) -> None:
        # A new interpreter running this module, not a multiprocessing child: that one
        # would import the caller's main script again (and fail in one without a
        # ``__main__`` guard).
        # -P: the current directory is not put on sys.path, so no `accord/` or `nacl/`
        # folder there is imported by the process that holds the keys.
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-m", "accord.signing_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._requests = Connection(os.dup(self._process.stdin.fileno()), readable=False)
        self._replies = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        self._process.stdin.close()
        self._process.stdout.close()
        self._next_key = 0
        self._free: list[int] = []
        self._secrets: dict[int, bytes] = {}
        self._frames: list[bytes] = []  # the request being filled
        self._queued = 0  # messages in it
        self._messages: list[tuple[int, bytes]] = []  # every message not yet returned, in order
        self._returned: list[bytes] = []  # signatures received, in order
        self._in_flight = 0  # requests sent whose replies have not been read
        self._broken = False

    @property
    def pid(self) -> int:
        """The signing process's id (to watch its CPU time, say)."""
        return self._process.pid

    @property
    def broken(self) -> bool:
        """The worker died or its pipe broke: what it owed was signed here."""
        return self._broken

    def register(self, secret: bytes) -> int:
        """A key number for libsodium's 64-byte secret key (seed, then public key)."""
        if len(secret) != 64:
            raise ValueError(f"a libsodium Ed25519 secret key is 64 bytes, not {len(secret)}")
        key = self._free.pop() if self._free else self._next_key
        if key == self._next_key:
            if key >= _MAX_KEYS:
                raise RuntimeError(f"more than {_MAX_KEYS} keys registered at once: forget those of finished sessions")
            self._next_key += 1
        self._secrets[key] = secret
        self._frames.append(_FRAME.pack(_REGISTER, key) + secret)
        return key

    def forget(self, keys: Sequence[int]) -> None:
        """Drop keys registered for a session that has ended (its signatures returned)."""
        for key in keys:
            if self._secrets.pop(key, None) is not None:
                self._frames.append(_FRAME.pack(_FORGET, key))
                self._free.append(key)
        self._send()

    def submit(self, key: int, message: bytes) -> None:
        """Queue `message` to be signed with key number `key`; signatures come back in
        the order messages were submitted (`signatures`)."""
        self._frames.append(_FRAME.pack(key, len(message)))
        self._frames.append(message)
        self._messages.append((key, message))
        self._queued += 1
        if self._queued >= BATCH:
            self._send()

    def signatures(self) -> list[bytes]:
        """The signatures of every message submitted since the last call, in order."""
        self._send()
        while self._in_flight and not self._broken:
            self._receive()
        if self._broken:  # sign here what the worker did not return
            done = len(self._returned)
            self._returned.extend(
                nacl.bindings.crypto_sign(message, self._secrets[key])[:SIGNATURE_BYTES]
                for key, message in self._messages[done:]
            )
        returned, self._returned, self._messages = self._returned, [], []
        return returned

    def _send(self) -> None:
        if not self._frames:
            return
        request, self._frames, self._queued = b"".join(self._frames), [], 0
        if self._broken:
            return
        try:
            self._requests.send_bytes(request)
        except (BrokenPipeError, OSError):
            self._broken = True
            return
        self._in_flight += 1
        # Replies are read as they come, so that neither pipe fills while the other waits.
        while self._in_flight and self._replies.poll(0):
            self._receive()

    def _receive(self) -> None:
        try:
            reply = self._replies.recv_bytes()
        except (EOFError, OSError):
            self._broken = True
            return
        self._in_flight -= 1
        self._returned.extend(reply[i : i + SIGNATURE_BYTES] for i in range(0, len(reply), SIGNATURE_BYTES))

    def close(self) -> None:
        """Stop the worker (it exits when its pipe closes)."""
        self._requests.close()
        self._replies.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> SigningWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    main()
