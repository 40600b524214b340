"""Checking a session's record: signatures, sequence numbers, links, the Merkle tree and
its signed checkpoints; naming the first bad entry and what happened to it.

What is checked, and what each check can tell:

* every envelope: well-formed, in canonical form, of this session, signed by a key the
  chair listed in the ``session.open`` entry (which must come first). A failure means
  the entry was **changed** (or forged);
* per-actor sequence numbers (signed, so nobody but the actor can change them): a gap
  means a message was **removed**, a repeat that one was **inserted** (replayed), a
  number out of order that entries were **reordered**;
* the links that record the order in which entries were appended: the hash chain of the
  database (``prev_hash``/``entry_hash``) or the leaf hashes of an exported bundle
  (``leaves.txt``, trusted only if they hash to a signed checkpoint). They tell an
  entry whose content no longer matches its record (**changed**) from one that is not
  part of the log (**inserted**), one whose predecessor is gone (**removed**) and one
  that belongs elsewhere (**reordered**);
* checkpoints: each must be signed by the chair's key (C2SP signed-note) and may be
  co-signed by delegates (tlog-cosignature); the tree of the entries as read must have
  each checkpoint's root at its size. This catches what an operator holding the chair's
  key could do to the other checks: a log that no longer matches a signed checkpoint
  has **diverged** from what was signed (and the entries between the last matching
  checkpoint and the first that does not are where).

Two passes. The quick pass proves a clean log clean: each process checks chunks of
entries and says only whether each chunk runs on without a break (and its leaf hashes),
so the calling process joins chunk ends and builds the tree; from a SQLite file each
process reads its own chunks. Anything out of place sends the log through the exact
pass, which keeps every entry's result and runs every scan, to name what happened.

Signature checking is the costly part and runs on several processes with
``workers=N``. The signing bytes are the stored bytes with the ``sig`` member cut out
(`envelope.unsigned_wire`: RFC 8785 orders members by name, so that is the canonical
form of the unsigned envelope exactly when the stored bytes are canonical, and a good
signature proves they are); re-serialising is only needed to explain a failure.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import multiprocessing
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel

from accord.ledger.chain import GENESIS
from accord.ledger.checkpoint import (
    Checkpoint,
    CheckpointCheck,
    CheckpointError,
    session_verifiers,
    verify_checkpoint,
)
from accord.ledger import sqlite_rows
from accord.ledger.envelope import MAX_ENVELOPE_BYTES, MAX_OPENING_BYTES, unsigned_wire
from accord.ledger.merkle import MerkleTree
from accord.ledger.store import Entry
from constituencies.hashing import canonical_json

OPEN_KIND = "session.open"
CLOSE_KIND = "session.close"
CHAIR = "chair"

CHANGED = "changed"
REMOVED = "removed"
REORDERED = "reordered"
INSERTED = "inserted"
DIVERGED = "diverged"
CHECKPOINT = "checkpoint"

_FIELDS = frozenset({"v", "session", "actor", "seq", "kind", "body", "ts", "sig"})
_LEAF_PREFIX = b"\x00"
_PARALLEL_CHUNKS_PER_WORKER = 16  # small chunks: a process slowed by other jobs takes fewer


class Problem(BaseModel):
    idx: int
    actor: str
    kind: str
    reason: str
    what: str = CHANGED
    """changed | removed | reordered | inserted | diverged | checkpoint."""


class VerifyReport(BaseModel):
    session_id: str
    entries: int
    signatures_checked: int
    problems: list[Problem]
    checkpoints_checked: int = 0
    """Checkpoints whose signatures verified."""
    covered: int = 0
    """Entries covered by the largest checkpoint that verified and matches the entries."""
    cosigners: list[str] = []
    """Actors who co-signed that checkpoint."""
    root: str | None = None
    """Hex RFC 9162 root of the entries as read."""
    notes: list[str] = []

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


# -- per-entry checks (run in worker processes) ----------------------------------------

Item = tuple[bytes, tuple[str, int, str] | None, tuple[str, str, str] | None]
"""(envelope bytes, stored (actor, seq, kind) or None, stored (prev, entry, leaf) hashes or None)."""

Result = tuple[bytes, tuple[str, int, str] | None, str | None, str | None]
"""(leaf hash, (actor, seq, kind) read from the envelope, content problem, chain problem)."""


def _header(doc: Any) -> tuple[tuple[str, int, str] | None, str | None]:
    if type(doc) is not dict:
        return None, "malformed envelope: not a JSON object"
    if doc.keys() != _FIELDS:
        missing = sorted(_FIELDS - doc.keys())
        extra = sorted(doc.keys() - _FIELDS)
        return None, f"malformed envelope: missing {missing}, unexpected {extra}"
    actor, seq, kind = doc["actor"], doc["seq"], doc["kind"]
    if type(actor) is not str or type(kind) is not str or type(seq) is not int or seq < 1:
        return None, "malformed envelope: actor, seq or kind"
    if type(doc["session"]) is not str or type(doc["body"]) is not dict:
        return None, "malformed envelope: session or body"
    if type(doc["ts"]) is not str or type(doc["sig"]) is not str or type(doc["v"]) is not int:
        return None, "malformed envelope: ts, sig or v"
    return (actor, seq, kind), None


def _explain_bad_signature(doc: dict[str, Any], raw: bytes, key: Ed25519PublicKey) -> str:
    """Slow path, failures only: say whether the bytes or the signed content changed."""
    try:
        canonical = canonical_json(doc)
        unsigned = canonical_json({k: v for k, v in doc.items() if k != "sig"})
    except Exception:  # noqa: BLE001 - e.g. NaN, which JSON allows and RFC 8785 does not
        return "envelope is not in canonical form (it was altered)"
    if canonical == raw:
        return "bad signature (the envelope was altered, or signed by another key)"
    try:
        key.verify(base64.b64decode(doc["sig"], validate=True), unsigned)
    except (InvalidSignature, binascii.Error, ValueError):
        return "bad signature, and the envelope is not in canonical form (it was altered)"
    return "envelope is not in canonical form (its bytes were altered; the signed content is intact)"


def check_envelope(
    raw: bytes, session_id: str, keys: dict[str, Ed25519PublicKey]
) -> tuple[tuple[str, int, str] | None, str | None]:
    """Form, session, signer and signature of one stored envelope: (header, problem)."""
    if len(raw) > MAX_OPENING_BYTES:
        return None, f"envelope of {len(raw)} bytes exceeds {MAX_OPENING_BYTES}"
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"not JSON: {exc}"
    header, problem = _header(doc)
    if header is None:
        return None, problem
    if len(raw) > MAX_ENVELOPE_BYTES and header != ("chair", 1, "session.open"):
        # Only the chair's opening (it carries the session file) may exceed the limit.
        return header, f"envelope of {len(raw)} bytes exceeds {MAX_ENVELOPE_BYTES}"
    if doc["session"] != session_id:
        return header, f"envelope belongs to session {doc['session']!r}"
    key = keys.get(header[0])
    if key is None:
        return header, f"signed by {header[0]!r}, which is not a participant of the session"
    unsigned = unsigned_wire(raw, doc["sig"])
    if unsigned is None:
        return header, _explain_bad_signature(doc, raw, key)
    try:
        key.verify(base64.b64decode(doc["sig"], validate=True), unsigned)
    except (InvalidSignature, binascii.Error, ValueError):
        return header, _explain_bad_signature(doc, raw, key)
    return header, None


def _chain_problem(raw: bytes, chain: tuple[str, str, str], leaf: bytes) -> str | None:
    """``leaf`` is the envelope's leaf hash, computed once by the caller."""
    prev, stored_entry, stored_leaf = chain
    try:
        computed = hashlib.sha256(bytes.fromhex(prev) + raw).hexdigest()
    except ValueError:
        return "its previous-hash column is not a hash"
    if computed != stored_entry:
        return "its entry hash does not match its envelope"
    if stored_leaf and leaf.hex() != stored_leaf:
        return "its leaf hash does not match its envelope"
    return None


@functools.lru_cache(maxsize=65_536)
def _public_key(key: str) -> Ed25519PublicKey | None:
    """A listed key, parsed once per process (a session of 1,000 delegates lists 1,001,
    and every chunk a process checks needs them)."""
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(key, validate=True))
    except (binascii.Error, ValueError):
        return None


def _parsed_keys(keys: dict[str, str]) -> dict[str, Ed25519PublicKey]:
    parsed = {actor: _public_key(key) for actor, key in keys.items()}
    return {actor: key for actor, key in parsed.items() if key is not None}


def _check_chunk(session_id: str, keys: dict[str, str], items: Sequence[Item]) -> list[Result]:
    parsed = _parsed_keys(keys)
    out: list[Result] = []
    for raw, columns, chain in items:
        leaf = hashlib.sha256(_LEAF_PREFIX + raw).digest()
        header, problem = check_envelope(raw, session_id, parsed)
        if problem is None and columns is not None and header != tuple(columns):
            problem = "envelope disagrees with its index columns (actor, seq, kind)"
        out.append((leaf, header, problem, _chain_problem(raw, chain, leaf) if chain is not None else None))
    return out


def _start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _in_processes(
    tasks: Sequence[tuple[Any, ...]], workers: int, give_up: Callable[[Any], bool] | None = None
) -> list[Any] | None:
    """The results of `tasks` (each a function and its arguments), in order, computed on
    this process and ``workers - 1`` helpers; None as soon as one result makes
    ``give_up`` true.

    The calling process runs tasks itself rather than wait idle for the helpers (one
    fewer process to start and to ship work to); tasks are handed out as processes free
    up, so a process slowed by other jobs on the machine takes fewer of them."""
    if workers <= 1 or len(tasks) < 2:
        out = []
        for fn, *args in tasks:
            out.append(fn(*args))
            if give_up is not None and give_up(out[-1]):
                return None
        return out
    done: list[Any] = [None] * len(tasks)
    helpers = min(workers - 1, len(tasks) - 1)
    context = multiprocessing.get_context(_start_method())
    with ProcessPoolExecutor(max_workers=helpers, mp_context=context) as pool:
        pending: dict[Future[Any], int] = {}
        following = 0
        while following < len(tasks) or pending:
            # Keep each helper one task ahead, so it never waits for this process.
            while following < len(tasks) and len(pending) < 2 * helpers:
                fn, *args = tasks[following]
                pending[pool.submit(fn, *args)] = following
                following += 1
            finished = []
            if following < len(tasks):
                fn, *args = tasks[following]
                done[following] = fn(*args)
                finished.append(following)
                following += 1
            else:
                wait(pending, return_when=FIRST_COMPLETED)
            for future in [f for f in pending if f.done()]:
                finished.append(pending[future])
                done[pending.pop(future)] = future.result()
            if give_up is not None and any(give_up(done[k]) for k in finished):
                for future in pending:
                    future.cancel()
                return None
    return done


def _run_checks(session_id: str, keys: dict[str, str], items: Sequence[Item], workers: int) -> list[Result]:
    """`_check_chunk` of every item, on `workers` processes (see `_in_processes`)."""
    size = max(1, len(items)) if workers <= 1 else max(1, -(-len(items) // (workers * _PARALLEL_CHUNKS_PER_WORKER)))
    tasks = [(_check_chunk, session_id, keys, items[s : s + size]) for s in range(0, len(items), size)]
    return [result for chunk in _in_processes(tasks, workers) or () for result in chunk]


def default_workers(n: int) -> int:
    """One process per 20,000 entries, up to the number of CPUs."""
    return max(1, min(os.cpu_count() or 1, n // 20_000))


# -- the quick pass: what a clean log needs ---------------------------------------------
#
# Most logs are intact, and proving that needs far less than naming what is wrong: the
# per-entry checks, then (per chunk) whether the links and sequence numbers run on
# without a break, which the process that checked the chunk can tell. The calling
# process then only joins the chunks' ends and builds the tree from their leaf hashes.
# Anything out of place sends the whole log through the exact pass below, which
# explains it; so a clean quick pass must imply that the exact pass finds nothing:
#
# * every entry passes `check_envelope` (and agrees with its index columns, and with
#   its stored hashes): no content finding;
# * each entry's recorded predecessor is the entry before it (the first's is GENESIS):
#   `link_scan` finds nothing, as its only other finding, a duplicate, would repeat an
#   actor's sequence number too;
# * each actor's sequence numbers run 1, 2, 3, ...: `seq_scan` finds nothing;
# * entries are numbered 0..n-1 and nothing follows the chair's session.close.

_CHUNK = 16_384  # entries per task in the quick pass: results are small, chunks can be too


class _Summary(NamedTuple):
    """What the quick pass learns from one chunk (``clean`` False: nothing else)."""

    clean: bool
    leaves: bytes = b""
    first_pred: str | None = None
    last_ident: str | None = None
    first_seq: dict[str, int] = {}
    last_seq: dict[str, int] = {}
    closes: tuple[int, ...] = ()


_UNCLEAN = _Summary(False)


def _summarise(session_id: str, keys: dict[str, str], items: Sequence[Item]) -> _Summary:
    parsed = _parsed_keys(keys)
    leaves: list[bytes] = []
    first_seq: dict[str, int] = {}
    last_seq: dict[str, int] = {}
    closes: list[int] = []
    first_pred = ident = None
    for k, (raw, columns, chain) in enumerate(items):
        leaf = hashlib.sha256(_LEAF_PREFIX + raw).digest()
        header, problem = check_envelope(raw, session_id, parsed)
        if problem is not None or header is None or (columns is not None and header != tuple(columns)):
            return _UNCLEAN
        if chain is not None:
            if _chain_problem(raw, chain, leaf) is not None or (k and chain[0] != ident):
                return _UNCLEAN
            if not k:
                first_pred = chain[0]
            ident = chain[1]
        actor, seq, kind = header
        last = last_seq.get(actor)
        if last is None:
            first_seq[actor] = seq
        elif seq != last + 1:
            return _UNCLEAN
        last_seq[actor] = seq
        if kind == CLOSE_KIND and actor == CHAIR:
            closes.append(k)
        leaves.append(leaf)
    return _Summary(True, b"".join(leaves), first_pred, ident, first_seq, last_seq, tuple(closes))


def _summarise_rows(session_id: str, keys: dict[str, str], path: Path, start: int, stop: int) -> _Summary:
    """`_summarise` of entries ``start..stop - 1`` of a SQLite ledger, read here."""
    rows = sqlite_rows.read(path, session_id, start, stop)
    if [row[0] for row in rows] != list(range(start, stop)) or any(type(row[0]) is not int for row in rows):
        return _UNCLEAN  # an entry number missing, or not an integer (SQLite keeps 1.5 as given)
    return _summarise(session_id, keys, _items_of(rows))


def _items_of(rows: Sequence[sqlite_rows.Row]) -> list[Item]:
    return [
        (envelope.encode("utf-8"), (actor, seq, kind), (prev, ident, leaf))
        for _, actor, seq, kind, envelope, prev, ident, leaf in rows
    ]


def _joined(summaries: Sequence[_Summary], n: int, chained: bool) -> bytes | None:
    """The leaf hashes of the whole log if its chunks join up cleanly; else None."""
    pred = GENESIS
    next_seq: dict[str, int] = {}
    start = 0
    for summary in summaries:
        if not summary.clean or (chained and summary.first_pred != pred):
            return None
        pred = summary.last_ident
        for actor, first in summary.first_seq.items():
            if first != next_seq.get(actor, 1):
                return None
            next_seq[actor] = summary.last_seq[actor] + 1
        if any(start + k != n - 1 for k in summary.closes):
            return None
        start += len(summary.leaves) // 32
    return b"".join(s.leaves for s in summaries) if start == n else None


def _run_summaries(tasks: Sequence[tuple[Any, ...]], workers: int) -> list[_Summary]:
    """The chunks' summaries, stopping at the first unclean one (then just that one)."""
    return _in_processes(tasks, workers, give_up=lambda summary: not summary.clean) or [_UNCLEAN]


# -- order: links, sequence numbers -----------------------------------------------------

Finding = tuple[int, str, str]
"""(position, what, reason)."""


def link_scan(
    idents: Sequence[Any],
    preds: Sequence[Any],
    intact: Sequence[bool],
    genesis: Any,
    label: Any = str,
    last: Any = None,
) -> Finding | None:
    """The first position where the entries as read depart from the recorded order.

    ``idents[i]`` names entry i, ``preds[i]`` names the entry recorded before it
    (``genesis`` for the first), and ``intact[i]`` says whether entry i's content still
    matches its record. ``label(i)`` is how position i is named in reasons; ``last``,
    if known, names the last entry recorded (what follows it was not).
    """
    n = len(idents)
    positions: dict[Any, list[int]] = defaultdict(list)
    for i, x in enumerate(idents):
        positions[x].append(i)
    for i in range(n):
        prev = idents[i - 1] if i else genesis
        next_pred = preds[i + 1] if i + 1 < n else None
        if not intact[i]:
            if last is not None and prev == last and i:
                return i, INSERTED, f"it comes after the last recorded entry ({label(i - 1)})"
            if next_pred is not None and next_pred == prev:
                return i, INSERTED, (
                    f"it is not part of the log: entry {label(i + 1)} was appended right "
                    f"after {'the start' if i == 0 else f'entry {label(i - 1)}'}"
                )
            return i, CHANGED, "its content no longer matches what was recorded"
        copies = positions[idents[i]]
        fits = preds[i] == prev
        if len(copies) > 1 and (not fits or copies[0] != i):
            other = copies[0] if copies[0] != i else copies[1]
            return i, INSERTED, f"it is a second copy of entry {label(other)}"
        if fits:
            continue
        where = positions.get(preds[i])
        j = where[0] if where else None
        if j is not None and j > i:
            return i, REORDERED, f"it was recorded after entry {label(j)}, which now comes later"
        if j is not None and j < i - 1:
            span = f"entry {label(j + 1)}" if j + 1 == i - 1 else f"entries {label(j + 1)}..{label(i - 1)}"
            return j + 1, INSERTED, (
                f"{span} {'is' if j + 1 == i - 1 else 'are'} not part of the log: "
                f"entry {label(i)} was appended right after entry {label(j)}"
            )
        if next_pred is not None and next_pred == prev:
            return i, INSERTED, (
                f"it is not part of the log: entry {label(i + 1)} was appended right after "
                f"{'the start' if i == 0 else f'entry {label(i - 1)}'}"
            )
        return i, REMOVED, (
            "the entry recorded before it is missing"
            + (f" (it should follow entry {label(i - 1)} directly)" if i else " (it should be first)")
        )
    return None


def seq_scan(headers: Sequence[tuple[str, int, str] | None], label: Any = str) -> Finding | None:
    """The first per-actor sequence number out of place (gap, repeat or disorder)."""
    where: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, h in enumerate(headers):
        if h is not None:
            where[(h[0], h[1])].append(i)
    expected: dict[str, int] = {}
    for i, h in enumerate(headers):
        if h is None:
            continue
        actor, seq = h[0], h[1]
        want = expected.get(actor, 1)
        if seq == want:
            expected[actor] = seq + 1
            continue
        if seq > want:
            later = [p for p in where.get((actor, want), []) if p > i]
            if later:
                return i, REORDERED, (
                    f"{actor}'s message {seq} comes before its message {want} (entry {label(later[0])})"
                )
            missing = f"message {want} is" if seq == want + 1 else f"messages {want}..{seq - 1} are"
            return i, REMOVED, f"{actor}'s {missing} missing (sequence number {seq} where {want} was expected)"
        earlier = [p for p in where[(actor, seq)] if p < i]
        if earlier:
            return i, INSERTED, f"{actor}'s message {seq} appears twice (first at entry {label(earlier[0])})"
        return i, REORDERED, f"{actor}'s message {seq} comes after its message {want - 1}"
    return None


# -- the whole check -------------------------------------------------------------------

_PRIORITY = {INSERTED: 0, REMOVED: 0, REORDERED: 0, CHANGED: 1, DIVERGED: 2, CHECKPOINT: 3}


class _Findings:
    """Problems by position; several findings at one position merge into one problem."""

    def __init__(self) -> None:
        self.by_pos: dict[tuple[int, int], list[tuple[int, str, str]]] = defaultdict(list)

    def add(self, pos: int, what: str, reason: str, *, source: int, tier: int = 0) -> None:
        entry = (source, what, reason)
        if entry not in self.by_pos[(tier, pos)]:
            self.by_pos[(tier, pos)].append(entry)

    def problems(self, describe: Any) -> list[Problem]:
        out = []
        for (_, pos), found in sorted(self.by_pos.items()):
            found.sort(key=lambda f: (f[0], _PRIORITY.get(f[1], 9)))
            what = found[0][1]
            reasons = []
            for _, _, reason in found:
                if reason not in reasons:
                    reasons.append(reason)
            actor, kind, idx = describe(pos)
            out.append(Problem(idx=idx, actor=actor, kind=kind, what=what, reason="; ".join(reasons)))
        return out


def _find_opening(session_id: str, raws: Sequence[bytes]) -> tuple[int, dict[str, str]] | None:
    """The first session.open of this session's chair (normally entry 0), and its keys."""
    candidates = [pos for pos, raw in enumerate(raws) if pos == 0 or b'"kind":"session.open"' in raw]
    for pos in candidates:
        raw = raws[pos]
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if (
            isinstance(doc, dict)
            and doc.get("kind") == OPEN_KIND
            and doc.get("actor") == CHAIR
            and doc.get("session") == session_id
            and isinstance(doc.get("body"), dict)
            and isinstance(doc["body"].get("keys"), dict)
        ):
            keys = {k: v for k, v in doc["body"]["keys"].items() if isinstance(v, str)}
            return pos, keys
    return None


class _Records:
    """Entries already in memory: database rows, or the lines of a bundle."""

    def __init__(self, items: Sequence[Item], labels: Sequence[int]) -> None:
        self.items, self.labels, self.n = items, labels, len(items)
        self.chained = bool(items) and items[0][2] is not None
        if any((item[2] is not None) is not self.chained for item in items):
            raise ValueError("verify_records: give every item its stored hashes (database rows) or none (bundle lines)")

    def raw(self, pos: int) -> bytes:
        return self.items[pos][0]

    def quick_tasks(self, session_id: str, keys: dict[str, str], size: int) -> list[tuple[Any, ...]] | None:
        if self.labels and (
            list(self.labels) != list(range(self.n)) or any(type(label) is not int for label in self.labels)
        ):
            return None
        return [(_summarise, session_id, keys, self.items[s : s + size]) for s in range(0, self.n, size)]

    def load(self) -> tuple[Sequence[Item], Sequence[int]]:
        return self.items, self.labels


class _SqliteFile:
    """A session's entries in a SQLite ledger file, read by each process that checks them."""

    chained = True

    def __init__(self, path: Path, session_id: str) -> None:
        self.path, self.session_id = path, session_id
        self.n, self._top = sqlite_rows.count(path, session_id)

    def raw(self, pos: int) -> bytes:
        rows = sqlite_rows.read(self.path, self.session_id, pos, pos + 1)
        return rows[0][4].encode("utf-8") if rows else b""

    def quick_tasks(self, session_id: str, keys: dict[str, str], size: int) -> list[tuple[Any, ...]] | None:
        if self._top != self.n:
            return None  # an entry number is missing: the exact pass says which
        return [
            (_summarise_rows, session_id, keys, self.path, s, min(s + size, self.n))
            for s in range(0, self.n, size)
        ]

    def load(self) -> tuple[Sequence[Item], Sequence[int]]:
        rows = sqlite_rows.read(self.path, self.session_id)
        return _items_of(rows), [row[0] for row in rows]


def verify_records(
    session_id: str,
    items: Sequence[Item],
    labels: Sequence[int],
    *,
    reference: Sequence[bytes] | None = None,
    checkpoints: Iterable[Checkpoint | str] = (),
    workers: int | None = 1,
) -> VerifyReport:
    """The check behind `verify_entries` (database rows, whose ``chain`` is given) and
    bundle verification (lines of entries.jsonl, with the leaf hashes of ``reference``).

    ``labels[i]`` is the entry number reported for position i.
    """
    return _verify(session_id, _Records(items, labels), reference, checkpoints, workers)


def verify_sqlite(
    path: str | Path,
    session_id: str,
    *,
    checkpoints: Iterable[Checkpoint | str] = (),
    workers: int | None = 1,
) -> VerifyReport:
    """`verify_entries` of a session stored in a SQLite ledger file, each process reading
    the entries it checks (see `accord.ledger.sqlite_rows`)."""
    return _verify(session_id, _SqliteFile(Path(path), session_id), None, checkpoints, workers)


def _verify(
    session_id: str,
    source: _Records | _SqliteFile,
    reference: Sequence[bytes] | None,
    checkpoints: Iterable[Checkpoint | str],
    workers: int | None,
) -> VerifyReport:
    """The quick pass if the log is clean, else the exact pass (which names what is not)."""
    checkpoints = list(checkpoints)
    if workers is None:
        workers = default_workers(source.n)
    report = _quick(session_id, source, reference, checkpoints, workers)
    if report is not None:
        return report
    items, labels = source.load()
    return _exact(session_id, items, labels, reference, checkpoints, workers)


def _quick(
    session_id: str,
    source: _Records | _SqliteFile,
    reference: Sequence[bytes] | None,
    checkpoints: Sequence[Checkpoint | str],
    workers: int,
) -> VerifyReport | None:
    """The report of a log whose entries are all in order, or None if any may not be."""
    n = source.n
    opening = _find_opening(session_id, [source.raw(0)]) if n else None
    if opening is None:
        return None
    keys = opening[1]
    tasks = source.quick_tasks(session_id, keys, max(1, min(_CHUNK, -(-n // (_PARALLEL_CHUNKS_PER_WORKER * workers)))))
    if tasks is None:
        return None
    findings = _Findings()
    notes: list[str] = []
    verified = _checked_checkpoints(session_id, keys, checkpoints, n, findings, notes)
    if reference is not None:
        reference = _trusted_reference(reference, verified, findings, notes, n)
    packed = _joined(_run_summaries(tasks, workers), n, source.chained)
    if packed is None or (reference is not None and packed != b"".join(reference)):
        return None
    tree = MerkleTree()
    tree.append_packed_leaf_hashes(packed)
    good = _match_tree(tree, verified, n, findings, notes)

    def describe(pos: int) -> tuple[str, str, int]:
        if 0 <= pos < n:
            header = check_envelope(source.raw(pos), session_id, {})[0]
            return (header[0], header[2], pos) if header else ("?", "?", pos)
        return "", "", pos

    return _report(session_id, n, n, findings, describe, verified, good, tree, notes)


def _checked_checkpoints(
    session_id: str,
    keys: dict[str, str],
    checkpoints: Iterable[Checkpoint | str],
    n: int,
    findings: _Findings,
    notes: list[str],
) -> list[CheckpointCheck]:
    """The checkpoints whose signatures verify (chair's, and co-signers'), by size."""
    verified: list[CheckpointCheck] = []
    log_verifier = witnesses = None
    if CHAIR in keys:
        try:
            log_verifier, witnesses = session_verifiers(session_id, keys)
        except (CheckpointError, ValueError, binascii.Error) as exc:
            notes.append(f"checkpoints cannot be checked: {exc}")
    for cp in checkpoints:
        try:
            parsed = cp if isinstance(cp, Checkpoint) else Checkpoint.parse(cp)
        except CheckpointError as exc:
            findings.add(n, CHECKPOINT, f"a checkpoint is malformed: {exc}", source=3, tier=1)
            continue
        if log_verifier is None:
            findings.add(
                min(parsed.size, n), CHECKPOINT,
                f"checkpoint {parsed.size} cannot be checked without the chair's key", source=3, tier=1,
            )
            continue
        try:
            verified.append(verify_checkpoint(parsed, log_verifier, witnesses or []))
        except CheckpointError as exc:
            findings.add(min(parsed.size, n), CHECKPOINT, f"checkpoint {parsed.size}: {exc}", source=3, tier=1)
    verified.sort(key=lambda c: c.checkpoint.size)
    return verified


def _match_tree(
    tree: MerkleTree, verified: Sequence[CheckpointCheck], n: int, findings: _Findings, notes: list[str]
) -> CheckpointCheck | None:
    """Does the tree of the entries as read have each signed root? The largest
    checkpoint that matches (and all before it do), if any."""
    good: CheckpointCheck | None = None
    last_good = 0
    roots: dict[int, bytes] = {}
    for check in verified:
        cp = check.checkpoint
        if roots.setdefault(cp.size, cp.root) != cp.root:
            findings.add(
                min(cp.size, n), CHECKPOINT,
                f"two checkpoints signed by the chair give different roots for {cp.size} entries",
                source=3, tier=1,
            )
        if cp.size > n:
            findings.add(
                n, REMOVED,
                f"the log has {n} entries but checkpoint {cp.size}, signed by the chair, "
                f"covers {cp.size}: entries {n}..{cp.size - 1} are missing",
                source=2, tier=1,
            )
        elif tree.root(cp.size) != cp.root:
            findings.add(
                last_good, DIVERGED,
                f"entries {last_good}..{cp.size - 1} differ from what checkpoint {cp.size} "
                "(signed by the chair) commits to: the tree root does not match",
                source=2, tier=1,
            )
        else:
            last_good = cp.size
            good = check
    if good is not None and good.checkpoint.size < n:
        notes.append(
            f"entries {good.checkpoint.size}..{n - 1} are not covered by a checkpoint: "
            "only their senders' signatures vouch for them"
        )
    elif not verified and n:
        notes.append("no checkpoint covers this log: only the senders' signatures and the links vouch for it")
    return good


def _report(
    session_id: str,
    n: int,
    checked: int,
    findings: _Findings,
    describe: Any,
    verified: Sequence[CheckpointCheck],
    good: CheckpointCheck | None,
    tree: MerkleTree,
    notes: list[str],
) -> VerifyReport:
    cosigners = []
    if good is not None:
        prefix = good.log.name + "/"
        cosigners = [name[len(prefix) :] for name in good.cosigners if name.startswith(prefix)]
    return VerifyReport(
        session_id=session_id,
        entries=n,
        signatures_checked=checked,
        problems=findings.problems(describe),
        checkpoints_checked=len(verified),
        covered=good.checkpoint.size if good else 0,
        cosigners=cosigners,
        root=tree.root().hex(),
        notes=notes,
    )


def _exact(
    session_id: str,
    items: Sequence[Item],
    labels: Sequence[int],
    reference: Sequence[bytes] | None,
    checkpoints: Sequence[Checkpoint | str],
    workers: int,
) -> VerifyReport:
    """Every entry's result kept and every scan run, so every problem is named."""
    n = len(items)
    raws = [item[0] for item in items]
    findings = _Findings()
    notes: list[str] = []
    odd = next((pos for pos, idx in enumerate(labels) if type(idx) is not int), None)
    if odd is not None:
        # A database edited by hand (SQLite keeps a REAL where an INTEGER was declared):
        # name it by position, and number the odd entries by position from here on.
        findings.add(odd, CHANGED, f"its entry number {labels[odd]!r} is not a whole number", source=2)
        labels = [idx if type(idx) is int else pos for pos, idx in enumerate(labels)]
    label = (lambda i: labels[i] if 0 <= i < n else i) if labels else str

    opening = _find_opening(session_id, raws)
    keys: dict[str, str] = opening[1] if opening else {}
    if n and opening is None:
        findings.add(0, REMOVED, f"no {OPEN_KIND} entry signed by the chair: signatures cannot be checked", source=2)
    elif n and opening is not None and opening[0] != 0:
        findings.add(0, REORDERED, f"the first entry must be {OPEN_KIND} (found at entry {label(opening[0])})", source=2)

    verified = _checked_checkpoints(session_id, keys, checkpoints, n, findings, notes)
    if reference is not None:
        reference = _trusted_reference(reference, verified, findings, notes, n)

    results = _run_checks(session_id, keys, items, workers) if n else []
    leaves = [r[0] for r in results]
    headers = [r[1] for r in results]
    checked = 0
    for pos, (_, header, problem, _) in enumerate(results):
        if problem is None:
            checked += 1
        else:
            findings.add(pos, CHANGED, problem, source=1)

    # Order: the recorded links (database chain or trusted leaf hashes), then the
    # signed sequence numbers, then the entry numbers themselves.
    link: Finding | None = None
    if items and items[0][2] is not None:
        idents = [item[2][1] for item in items]  # type: ignore[index]
        preds = [item[2][0] for item in items]  # type: ignore[index]
        intact = [r[3] is None for r in results]
        for pos, r in enumerate(results):
            if r[3] is not None:
                findings.add(pos, CHANGED, r[3], source=1)
        link = link_scan(idents, preds, intact, GENESIS, label)
    elif reference is not None:
        ref_pos = {leaf: k for k, leaf in enumerate(reference)}
        preds = [
            (reference[ref_pos[leaf] - 1] if ref_pos[leaf] else b"") if leaf in ref_pos else None
            for leaf in leaves
        ]
        intact = [leaf in ref_pos for leaf in leaves]
        link = link_scan(leaves, preds, intact, b"", label, reference[-1] if reference else None)
        if link is None and n < len(reference):
            link = (n, REMOVED, f"entries {n}..{len(reference) - 1} are missing at the end")
    if link is not None:
        findings.add(link[0], link[1], link[2], source=0)
    seq = seq_scan(headers, label)
    if seq is not None:
        findings.add(seq[0], seq[1], seq[2], source=2)
    if labels:
        for pos, idx in enumerate(labels):
            if idx != pos:
                what = REMOVED if idx > pos else INSERTED
                findings.add(pos, what, f"entry number {idx} where {pos} was expected", source=2)
                break
    closes = [pos for pos, h in enumerate(headers) if h is not None and h[2] == CLOSE_KIND and h[0] == CHAIR]
    if closes and closes[0] != n - 1:
        findings.add(closes[0] + 1, INSERTED, f"it comes after the session's {CLOSE_KIND}", source=0)

    tree = MerkleTree(leaves)
    good = _match_tree(tree, verified, n, findings, notes)

    def describe(pos: int) -> tuple[str, str, int]:
        if 0 <= pos < n:
            header = headers[pos]
            if header is None and items[pos][1] is not None:
                header = items[pos][1]
            if header is not None:
                return header[0], header[2], label(pos)
            return "?", "?", label(pos)
        return "", "", pos if not labels or pos >= n else label(pos)

    return _report(session_id, n, checked, findings, describe, verified, good, tree, notes)


def _trusted_reference(
    reference: Sequence[bytes],
    verified: Sequence[CheckpointCheck],
    findings: _Findings,
    notes: list[str],
    n: int,
) -> Sequence[bytes] | None:
    """The recorded leaf hashes, if they hash to every verified checkpoint; else None."""
    if not verified:
        notes.append("leaves.txt is not used: no verified checkpoint vouches for it")
        return None
    tree = MerkleTree(reference)
    for check in verified:
        cp = check.checkpoint
        if cp.size > tree.size or tree.root(cp.size) != cp.root:
            findings.add(
                min(cp.size, n), CHECKPOINT,
                f"leaves.txt does not hash to checkpoint {cp.size} (it was altered); "
                "it is not used to place entries",
                source=3, tier=1,
            )
            return None
    return reference


def verify_entries(
    session_id: str,
    rows: Sequence[Entry],
    *,
    checkpoints: Iterable[Checkpoint | str] = (),
    workers: int | None = 1,
) -> VerifyReport:
    """Check a session's stored entries (and its checkpoints, if given).

    Keys come from the chair's signed `session.open` entry, which must come first; any
    entry signed by a key not listed there fails. The report's first problem names the
    first bad entry and says what happened to it: changed, removed, reordered, inserted
    (or diverged from a signed checkpoint). ``workers=N`` checks signatures on N
    processes (None: one per 20,000 entries, up to the CPUs).
    """
    items: list[Item] = [
        (
            row.envelope.encode("utf-8"),
            (row.actor, row.seq, row.kind),
            (row.prev_hash, row.entry_hash, row.leaf_hash),
        )
        for row in rows
    ]
    return verify_records(
        session_id, items, [row.idx for row in rows], checkpoints=checkpoints, workers=workers
    )
