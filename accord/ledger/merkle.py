"""Append-only Merkle tree with inclusion and consistency proofs (RFC 9162, RFC 6962).

Hashing follows RFC 9162 section 2.1.1 with SHA-256: a leaf hashes as
``SHA-256(0x00 || data)``, an interior node as ``SHA-256(0x01 || left || right)``, and
the empty tree as ``SHA-256("")``.  The distinct prefixes keep a leaf from ever being
passed off as an interior node (second-preimage resistance).

Proofs are generated as defined in RFC 9162 sections 2.1.3.1 (``PATH``) and 2.1.4.1
(``PROOF``), and checked with the verification algorithms of sections 2.1.3.2 and
2.1.4.2.  Verifiers raise :class:`ProofError` with the reason instead of returning a
bool, so a caller cannot forget to look at the result.

The module is pure: no I/O, no clock, no dependencies beyond :mod:`hashlib`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "ProofError",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_NODE_HASHER = sha256(_NODE_PREFIX)
# RFC 9162 carries tree sizes and indexes as uint64.  Rejecting larger values also
# bounds the work an attacker can cause with a huge claimed size.
_MAX_SIZE = 2**64 - 1


class ProofError(ValueError):
    """An inclusion or consistency proof does not verify; the message says why."""


def leaf_hash(data: bytes) -> bytes:
    """``MTH({d}) = SHA-256(0x00 || d)`` (RFC 9162 section 2.1.1)."""
    return sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)`` (RFC 9162 section 2.1.1)."""
    return sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly less than ``n`` (``k`` in RFC 9162 2.1.1); n >= 2."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only RFC 9162 Merkle tree over leaf hashes, kept in memory.

    ``self._levels[k]`` holds, back to back, the 32-byte hashes of every complete
    subtree of ``2**k`` leaves that starts at a multiple of ``2**k`` (level 0 holds the
    leaf hashes).  Appends never change a stored hash, so any earlier tree is still
    present: the tree of size ``m`` is the run of complete subtrees given by the set
    bits of ``m``, which is why ``root(m)`` and every proof cost O(log n) hashes.  The
    last entry of each level whose bit is set in ``size`` is the usual compact
    "frontier".

    Levels are ``bytearray`` rather than lists of ``bytes`` because that stores a hash
    in 32 bytes instead of about 80, and puts the two children of a node next to each
    other, so hashing a node is one 64-byte slice.  A million leaves take about 64 MB.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        self.append_leaf_hashes(leaf_hashes)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"MerkleTree(size={self._size}, root={self.root().hex()})"

    # -- appending ---------------------------------------------------------------

    def append(self, data: bytes) -> int:
        """Append a leaf by its data; return its index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, hash_: bytes) -> int:
        """Append one leaf hash; return its index.  O(1) amortised hashes."""
        _require_leaf_hash_size(hash_, self._size)
        index = self._size
        self._levels[0] += hash_
        self._size = index + 1
        # Each complete pair closes a subtree one level up; the number of levels that
        # close is the number of trailing zero bits of the new size.
        level, count = 0, self._size
        while count % 2 == 0:
            if level + 1 == len(self._levels):
                self._levels.append(bytearray())
            self._levels[level + 1] += sha256(_NODE_PREFIX + self._levels[level][-64:]).digest()
            level += 1
            count //= 2
        return index

    def append_leaf_hashes(self, hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes, building each level in one pass."""
        batch = list(hashes)
        if not batch:
            return
        if set(map(len, batch)) != {HASH_SIZE}:  # C-speed check; find the culprit only on failure
            for offset, hash_ in enumerate(batch):
                _require_leaf_hash_size(hash_, self._size + offset)
        self._append_packed(b"".join(batch))

    def append_packed_leaf_hashes(self, packed: bytes) -> None:
        """Append leaf hashes given back to back (32 bytes each), as verification's
        worker processes return them: no list of a million small objects to build."""
        if len(packed) % HASH_SIZE:
            raise ValueError(f"{len(packed)} bytes are not a whole number of {HASH_SIZE}-byte leaf hashes")
        if packed:
            self._append_packed(packed)

    def _append_packed(self, packed: bytes) -> None:
        old_size = self._size
        self._levels[0] += packed
        self._size += len(packed) // HASH_SIZE
        level = 0
        while True:
            first, stop = old_size >> (level + 1), self._size >> (level + 1)
            if first == stop:
                # No new complete subtree here means none can complete higher up.
                break
            if level + 1 == len(self._levels):
                self._levels.append(bytearray())
            self._levels[level + 1] += _parent_hashes(self._levels[level], first, stop)
            level += 1

    # -- reading -----------------------------------------------------------------

    def leaf_hash_at(self, index: int) -> bytes:
        """The hash of leaf ``index``."""
        if not 0 <= index < self._size:
            raise IndexError(f"index {index} is beyond tree size {self._size}")
        return self._node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """``MTH`` of the first ``size`` leaves (default: all of them)."""
        size = self._check_size(size)
        return self._range_hash(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """``PATH(index, D[0:size])`` from RFC 9162 section 2.1.3.1, leaf end first."""
        size = self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"index {index} is beyond tree size {size}")
        # Walk the RFC recursion top-down: keep the half that holds the leaf, record
        # the hash of the other half.  PATH lists those from the leaf up, hence reverse.
        proof: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            mid = lo + _split(hi - lo)
            if index < mid:
                proof.append(self._range_hash(mid, hi))
                hi = mid
            else:
                proof.append(self._range_hash(lo, mid))
                lo = mid
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """``PROOF(old_size, D[0:new_size])`` from RFC 9162 section 2.1.4.1.

        Empty when the sizes are equal.  ``old_size`` must be positive: the RFC defines
        no proof from the empty tree, and :func:`verify_consistency` rejects one.
        """
        new_size = self._check_size(new_size)
        if not 0 < old_size <= new_size:
            raise ValueError(f"need 0 < old size <= new size, got {old_size} and {new_size}")
        proof: list[bytes] = []
        lo, hi = 0, new_size
        while hi != old_size:
            mid = lo + _split(hi - lo)
            if old_size <= mid:
                proof.append(self._range_hash(mid, hi))
                hi = mid
            else:
                proof.append(self._range_hash(lo, mid))
                lo = mid
        # SUBPROOF(m, D[m], b): while lo is still 0 (b is true) D[lo:hi] is the whole
        # old tree, whose root the verifier already has; otherwise it must be sent.
        if lo > 0:
            proof.append(self._range_hash(lo, hi))
        proof.reverse()
        return proof

    # -- internals ---------------------------------------------------------------

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise ValueError(f"size {size} is beyond tree size {self._size}")
        return size

    def _node(self, level: int, index: int) -> bytes:
        """Hash of the complete subtree of ``2**level`` leaves starting at ``index << level``."""
        start = index * HASH_SIZE
        return bytes(self._levels[level][start : start + HASH_SIZE])

    def _range_hash(self, start: int, end: int) -> bytes:
        """``MTH(D[start:end])`` for a non-empty range the RFC recursion can produce.

        Such ranges start at a multiple of the largest power of two <= their width, so
        they split into complete stored subtrees of decreasing size; MTH always splits
        off the largest power of two on the left, which is a fold from the right.
        """
        width = end - start
        if width & (width - 1) == 0:  # one complete subtree: the common case in proofs
            level = width.bit_length() - 1
            return self._node(level, start >> level)
        pieces: list[bytes] = []
        for level in range(width.bit_length() - 1, -1, -1):
            if width >> level & 1:
                pieces.append(self._node(level, start >> level))
                start += 1 << level
        root = pieces.pop()
        while pieces:
            root = node_hash(pieces.pop(), root)
        return root


def _parent_hashes(children: bytearray, first: int, stop: int) -> bytes:
    """Concatenated node hashes of the child pairs ``first .. stop - 1`` of a level."""
    # Hashing each 64-byte pair straight from a view into a copy of the prefixed
    # hasher avoids two copies per node; it is the hot loop of bulk appends.
    new_hasher = _NODE_HASHER.copy
    parents: list[bytes] = []
    with memoryview(children) as view:
        for offset in range(64 * first, 64 * stop, 64):
            hasher = new_hasher()
            hasher.update(view[offset : offset + 64])
            parents.append(hasher.digest())
    return b"".join(parents)


def _require_leaf_hash_size(hash_: bytes, index: int) -> None:
    if len(hash_) != HASH_SIZE:
        raise ValueError(f"leaf hash {index} is {len(hash_)} bytes, expected {HASH_SIZE}")


# -- verification (pure functions) ------------------------------------------------


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")


def _check_tree_size(value: int, what: str) -> None:
    if not 0 <= value <= _MAX_SIZE:
        raise ProofError(f"{what} {value} is not a uint64")


def _check_proof_length(got: int, want: int) -> None:
    if got > want:
        extra = got - want
        raise ProofError(f"proof has {extra} extra hash{'es' if extra != 1 else ''}")
    if got < want:
        missing = want - got
        raise ProofError(f"proof is missing {missing} hash{'es' if missing != 1 else ''}")


def _sibling_sides(fn: int, sn: int) -> list[bool]:
    """Replay the ``fn``/``sn`` walk of RFC 9162 2.1.3.2 step 4 (the same walk as 2.1.4.2
    step 6) without hashing.

    Returns, per proof hash in order, True if it is a left sibling (the RFC's
    ``HASH(0x01 || p || r)`` branch) and False if a right one.  The RFC fails when a hash
    arrives with ``sn == 0`` or when ``sn != 0`` at the end, i.e. exactly when the
    proof length differs from ``len(result)``; knowing the length up front lets the
    error say how many hashes are extra or missing.
    """
    sides: list[bool] = []
    while sn:
        if fn & 1 or fn == sn:
            sides.append(True)
            # b.ii: on the right edge a node with no right sibling moves up unchanged.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sides.append(False)
        fn >>= 1
        sn >>= 1
    return sides


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` implies for leaf ``index`` of a tree of ``size`` leaves.

    RFC 9162 section 2.1.3.2 steps 1-4 and the ``sn == 0`` check of step 5; raises
    :class:`ProofError` when the proof is malformed.  Comparing the result against a
    trusted root is the caller's job (see :func:`verify_inclusion`).
    """
    _check_tree_size(size, "tree size")
    _check_tree_size(index, "index")
    if index >= size:
        raise ProofError(f"index {index} is beyond tree size {size}")
    _check_hash(leaf_hash, "leaf hash")
    sides = _sibling_sides(index, size - 1)
    _check_proof_length(len(proof), len(sides))
    for position, p in enumerate(proof):
        _check_hash(p, f"proof hash {position}")
    r = leaf_hash
    for p, is_left in zip(proof, sides, strict=True):
        r = node_hash(p, r) if is_left else node_hash(r, p)
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree with ``size`` leaves and
    ``root`` (RFC 9162 section 2.1.3.2).  Returns None or raises :class:`ProofError`."""
    calculated = root_from_inclusion_proof(leaf_hash, index, size, proof)
    _check_hash(root, "root")
    if calculated != root:
        raise ProofError("calculated root differs from expected")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (``new_size``, ``new_root``) extends (``old_size``, ``old_root``)
    (RFC 9162 section 2.1.4.2).  Returns None or raises :class:`ProofError`.

    ``old_size`` must be positive.  Every tree trivially extends the empty tree, so
    there is nothing to prove; callers special-case it instead of passing a proof
    (as transparency-dev/merkle does, whose test vectors require the rejection).
    """
    _check_tree_size(old_size, "old size")
    _check_tree_size(new_size, "new size")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is beyond new size {new_size}")
    if old_size == 0:
        raise ProofError("old size is 0: a consistency proof from the empty tree is meaningless")
    if old_size == new_size:
        # Nothing is hashed: two heads of one size are consistent iff they are the same.
        _check_proof_length(len(proof), 0)
        if old_root != new_root:
            raise ProofError("sizes are equal but the roots differ")
        return

    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    # Step 1.
    if not proof:
        raise ProofError("consistency proof is empty")
    # Step 2: a power-of-two old tree is a complete subtree of the new one, so its root
    # is the first node of the path and the proof omits it.
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    # Steps 3 and 4: the lowest levels, where the old tree's last node is a right
    # child, lie inside the subtree whose hash is path[0]; the walk starts above them.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    sides = _sibling_sides(fn, sn)
    _check_proof_length(len(path) - 1, len(sides))
    for position, c in enumerate(proof):
        _check_hash(c, f"proof hash {position}")
    # Steps 5 and 6: left siblings are in both trees, right siblings only in the new one.
    fr = sr = path[0]
    for c, is_left in zip(path[1:], sides, strict=True):
        if is_left:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
        else:
            sr = node_hash(sr, c)
    # Step 7 (sn == 0 is guaranteed by the length check).
    if fr != old_root:
        raise ProofError("calculated old root differs from expected")
    if sr != new_root:
        raise ProofError("calculated new root differs from expected")
