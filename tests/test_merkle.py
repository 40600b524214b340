"""Tests for accord.ledger.merkle (RFC 9162 Merkle trees).

Three kinds of evidence:

* conformance: the transparency-dev/merkle JSON vectors in ../shared/testdata/merkle
  (``inclusion/`` and ``consistency/``).  The ``subtreeinclusion/`` and
  ``subtreeconsistency/`` folders are not used: they exercise proofs about arbitrary
  ``[start, end)`` subtrees (Merkle Tree Certificates draft), an API this module does
  not have, rather than plain RFC 9162 proofs;
* known answers from RFC 6962 / transparency-dev (hash prefixes, reference roots);
* a naive recursive transcription of RFC 9162 2.1.1 (MTH), 2.1.3.1 (PATH) and 2.1.4.1
  (PROOF) that the incremental tree must agree with, plus tampering and properties.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.ledger.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    ProofError,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
VECTORS = SHARED / "testdata" / "merkle"

SMALL_SIZES = list(range(1, 71))
LARGE_SIZES = [127, 128, 129, 255, 256, 257, 1000, 1025]


# -- naive reference: RFC 9162 section 2.1, transcribed recursively ------------------
# Deliberately independent of the module: it hashes with hashlib itself and recomputes
# every subtree from the leaf data.


def _k(n: int) -> int:
    """Largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return sha256(b"").digest()
    if n == 1:
        return sha256(b"\x00" + d[0]).digest()
    k = _k(n)
    return sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


# -- helpers -------------------------------------------------------------------------


def entries(n: int, seed: int = 0) -> list[bytes]:
    """n leaf inputs of varying length (including empty ones)."""
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 40)) for _ in range(n)]


def tree_of(data: list[bytes]) -> MerkleTree:
    tree = MerkleTree()
    for d in data:
        tree.append(d)
    return tree


def flip_bit(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def sample(population: range, k: int, seed: int) -> list[int]:
    """All of a small range, or k spread-out members of a large one (ends included)."""
    if len(population) <= k:
        return list(population)
    picked = set(random.Random(seed).sample(population, k - 2))
    return sorted(picked | {population[0], population[-1]})


def assert_inclusion_rejected(
    h: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> None:
    with pytest.raises(ProofError):
        verify_inclusion(h, index, size, proof, root)


def assert_consistency_rejected(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    with pytest.raises(ProofError):
        verify_consistency(old_size, new_size, old_root, new_root, proof)


# -- known answers -------------------------------------------------------------------

# From transparency-dev/merkle rfc6962/rfc6962_test.go and testonly/constants.go.
REFERENCE_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
REFERENCE_ROOTS = [
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]


def test_hash_known_answers() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert (
        leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert (
        leaf_hash(b"L123456").hex()
        == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert (
        node_hash(b"N123", b"N456").hex()
        == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_reference_roots() -> None:
    tree = tree_of(REFERENCE_LEAVES)
    for size, want in enumerate(REFERENCE_ROOTS):
        assert tree.root(size) == want, size
        assert tree_of(REFERENCE_LEAVES[:size]).root() == want, size


# -- conformance vectors (transparency-dev/merkle) ----------------------------------


def _vector_params(kind: str) -> list[Any]:
    folder = VECTORS / kind
    if not folder.is_dir():
        reason = f"shared Merkle test vectors not found at {folder} (they live outside the project)"
        return [
            pytest.param(None, id=f"{kind}-vectors-absent", marks=pytest.mark.skip(reason=reason))
        ]
    return [
        pytest.param(p, id=p.relative_to(folder).as_posix()) for p in sorted(folder.rglob("*.json"))
    ]


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _load(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return vector


@pytest.mark.parametrize("path", _vector_params("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    v = _load(path)
    h, root = _b64(v["leafHash"]), _b64(v["root"])
    proof = [_b64(p) for p in v["proof"] or []]
    if v["wantErr"]:
        assert_inclusion_rejected(h, v["leafIdx"], v["treeSize"], proof, root)
    else:
        verify_inclusion(h, v["leafIdx"], v["treeSize"], proof, root)
        assert root_from_inclusion_proof(h, v["leafIdx"], v["treeSize"], proof) == root


@pytest.mark.parametrize("path", _vector_params("consistency"))
def test_consistency_vector(path: Path) -> None:
    v = _load(path)
    args = (
        v["size1"],
        v["size2"],
        _b64(v["root1"]),
        _b64(v["root2"]),
        [_b64(p) for p in v["proof"] or []],
    )
    if v["wantErr"]:
        assert_consistency_rejected(*args)
    else:
        verify_consistency(*args)


def test_vector_corpus_has_both_outcomes() -> None:
    """Guards the parametrised tests against an emptied or half-copied vector folder."""
    if not VECTORS.is_dir():
        pytest.skip(f"shared Merkle test vectors not found at {VECTORS}")
    for kind in ("inclusion", "consistency"):
        outcomes = [_load(p)["wantErr"] for p in (VECTORS / kind).rglob("*.json")]
        assert outcomes.count(False) >= 5 and outcomes.count(True) >= 50, kind


# -- agreement with the naive reference ----------------------------------------------


@pytest.mark.parametrize("size", SMALL_SIZES + LARGE_SIZES)
def test_root_matches_reference(size: int) -> None:
    data = entries(size, seed=size)
    tree = tree_of(data)
    assert tree.size == len(tree) == size
    assert tree.root() == tree.root(size) == ref_mth(data)
    for earlier in sample(range(size + 1), 12, seed=size):
        assert tree.root(earlier) == ref_mth(data[:earlier]), earlier
        assert tree.root(earlier) == MerkleTree(leaf_hash(d) for d in data[:earlier]).root(), (
            earlier
        )


@pytest.mark.parametrize("size", SMALL_SIZES + LARGE_SIZES)
def test_inclusion_proofs_match_reference_and_verify(size: int) -> None:
    data = entries(size, seed=size)
    tree = tree_of(data)
    root = tree.root()
    for index in sample(range(size), 40, seed=size):
        proof = tree.inclusion_proof(index, size)
        assert proof == ref_path(index, data), index
        verify_inclusion(leaf_hash(data[index]), index, size, proof, root)
        assert root_from_inclusion_proof(leaf_hash(data[index]), index, size, proof) == root
    # Proofs against an earlier tree head, as a log serves for an old signed root.
    for earlier in sample(range(1, size + 1), 6, seed=size + 1):
        index = random.Random(earlier).randrange(earlier)
        proof = tree.inclusion_proof(index, earlier)
        assert proof == ref_path(index, data[:earlier])
        verify_inclusion(leaf_hash(data[index]), index, earlier, proof, tree.root(earlier))


@pytest.mark.parametrize("size", SMALL_SIZES + LARGE_SIZES)
def test_consistency_proofs_match_reference_and_verify(size: int) -> None:
    data = entries(size, seed=size)
    tree = tree_of(data)
    for new in sample(range(1, size + 1), 8, seed=size):
        for old in sample(range(1, new + 1), 20, seed=new):
            proof = tree.consistency_proof(old, new)
            assert proof == ref_proof(old, data[:new]), (old, new)
            verify_consistency(old, new, tree.root(old), tree.root(new), proof)


def test_leaf_hash_at() -> None:
    data = entries(9)
    tree = tree_of(data)
    assert [tree.leaf_hash_at(i) for i in range(9)] == [leaf_hash(d) for d in data]
    with pytest.raises(IndexError):
        tree.leaf_hash_at(9)


# -- tampering -----------------------------------------------------------------------


@pytest.mark.parametrize("size", SMALL_SIZES + LARGE_SIZES)
def test_tampered_inclusion_proofs_rejected(size: int) -> None:
    data = entries(size, seed=size)
    tree = tree_of(data)
    root = tree.root()
    for index in sample(range(size), 12, seed=size):
        h = leaf_hash(data[index])
        proof = tree.inclusion_proof(index)
        for i in range(len(proof)):
            bad = list(proof)
            bad[i] = flip_bit(bad[i], 7 * i + index)
            assert_inclusion_rejected(h, index, size, bad, root)
        assert_inclusion_rejected(flip_bit(h, index), index, size, proof, root)
        assert_inclusion_rejected(h, index, size, proof, flip_bit(root, size))
        assert_inclusion_rejected(h, index, size, [*proof, root], root)
        if proof:
            assert_inclusion_rejected(h, index, size, proof[:-1], root)
            assert_inclusion_rejected(h, index, size, proof[1:], root)
            if len(set(proof)) > 1:
                assert_inclusion_rejected(h, index, size, proof[::-1], root)
        for other in (index - 1, index + 1, index ^ 2, size, size + 5):
            if other != index and other >= 0:
                assert_inclusion_rejected(h, other, size, proof, root)
        # Sizes are bound by the signed tree head, so pair a wrong size with its root.
        for other_size in (size - 1, size // 2):
            if index < other_size < size:
                assert_inclusion_rejected(h, index, other_size, proof, tree.root(other_size))


@pytest.mark.parametrize("size", SMALL_SIZES + LARGE_SIZES)
def test_tampered_consistency_proofs_rejected(size: int) -> None:
    data = entries(size, seed=size)
    tree = tree_of(data)
    new_root = tree.root()
    for old in sample(range(1, size), 12, seed=size):
        old_root = tree.root(old)
        proof = tree.consistency_proof(old, size)
        for i in range(len(proof)):
            bad = list(proof)
            bad[i] = flip_bit(bad[i], 5 * i + old)
            assert_consistency_rejected(old, size, old_root, new_root, bad)
        assert_consistency_rejected(old, size, flip_bit(old_root, old), new_root, proof)
        assert_consistency_rejected(old, size, old_root, flip_bit(new_root, old), proof)
        assert_consistency_rejected(old, size, new_root, old_root, proof)
        assert_consistency_rejected(old, size, old_root, new_root, [*proof, old_root])
        assert_consistency_rejected(old, size, old_root, new_root, proof[:-1])
        assert_consistency_rejected(old, size, old_root, new_root, proof[1:])
        assert_consistency_rejected(old, size, old_root, new_root, [])
        assert_consistency_rejected(size, old, new_root, old_root, proof)
        for other in (old - 1, old + 1):
            if 0 < other < size:
                assert_consistency_rejected(other, size, tree.root(other), new_root, proof)
        if old < size - 1:
            assert_consistency_rejected(old, size - 1, old_root, tree.root(size - 1), proof)


def test_every_old_size_has_a_distinct_consistency_proof() -> None:
    """A proof for one old size must never pass for another (all pairs up to 70)."""
    data = entries(70)
    tree = tree_of(data)
    for new in range(2, 71):
        new_root = tree.root(new)
        proofs = {old: tree.consistency_proof(old, new) for old in range(1, new)}
        for old, proof in proofs.items():
            for other in range(1, new):
                if other != old:
                    assert_consistency_rejected(other, new, tree.root(other), new_root, proof)


# -- error reporting and argument checks ---------------------------------------------


def test_error_messages() -> None:
    tree = tree_of(entries(5))
    h, root = tree.leaf_hash_at(1), tree.root()
    proof = tree.inclusion_proof(1)
    with pytest.raises(ProofError, match=r"^index 7 is beyond tree size 5$"):
        verify_inclusion(h, 7, 5, proof, root)
    with pytest.raises(ProofError, match=r"^proof has 3 extra hashes$"):
        verify_inclusion(h, 1, 5, [*proof, root, root, root], root)
    with pytest.raises(ProofError, match=r"^proof is missing 1 hash$"):
        verify_inclusion(h, 1, 5, proof[:-1], root)
    with pytest.raises(ProofError, match=r"^calculated root differs from expected$"):
        verify_inclusion(h, 1, 5, proof, tree.root(4))
    with pytest.raises(ProofError, match=r"^leaf hash is 0 bytes, expected 32$"):
        verify_inclusion(b"", 1, 5, proof, root)
    with pytest.raises(ProofError, match=r"not a uint64"):
        verify_inclusion(h, 1, 2**64, proof, root)

    c = tree.consistency_proof(3, 5)
    with pytest.raises(ProofError, match=r"^old size 6 is beyond new size 5$"):
        verify_consistency(6, 5, root, root, c)
    with pytest.raises(ProofError, match=r"empty tree"):
        verify_consistency(0, 5, EMPTY_ROOT, root, [])
    with pytest.raises(ProofError, match=r"^consistency proof is empty$"):
        verify_consistency(3, 5, tree.root(3), root, [])
    with pytest.raises(ProofError, match=r"^proof has 1 extra hash$"):
        verify_consistency(3, 5, tree.root(3), root, [*c, root])
    with pytest.raises(ProofError, match=r"^calculated old root differs from expected$"):
        verify_consistency(3, 5, tree.root(2), root, c)
    with pytest.raises(ProofError, match=r"^calculated new root differs from expected$"):
        verify_consistency(3, 5, tree.root(3), tree.root(4), c)
    with pytest.raises(ProofError, match=r"^sizes are equal but the roots differ$"):
        verify_consistency(5, 5, tree.root(4), root, [])
    verify_consistency(5, 5, root, root, [])


def test_tree_argument_checks() -> None:
    tree = tree_of(entries(5))
    with pytest.raises(ValueError, match=r"size 6 is beyond tree size 5"):
        tree.root(6)
    with pytest.raises(ValueError, match=r"index 5 is beyond tree size 5"):
        tree.inclusion_proof(5)
    with pytest.raises(ValueError, match=r"index 3 is beyond tree size 3"):
        tree.inclusion_proof(3, 3)
    with pytest.raises(ValueError):
        tree.consistency_proof(0, 5)
    with pytest.raises(ValueError):
        tree.consistency_proof(4, 3)
    assert tree.consistency_proof(5) == tree.consistency_proof(3, 3) == []
    assert MerkleTree().root() == EMPTY_ROOT


def test_bad_leaf_hashes_leave_tree_unchanged() -> None:
    tree = tree_of(entries(3))
    before = tree.root()
    with pytest.raises(ValueError, match=r"leaf hash 4 is 31 bytes"):
        tree.append_leaf_hashes([b"\x00" * 32, b"\x00" * 31])
    with pytest.raises(ValueError, match=r"leaf hash 3 is 33 bytes"):
        tree.append_leaf_hash(b"\x00" * 33)
    assert tree.size == 3 and tree.root() == before


# -- properties ----------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(st.binary(max_size=8), max_size=300),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=6),
)
def test_batch_and_single_appends_agree(data: list[bytes], cuts: list[int]) -> None:
    hashes = [leaf_hash(d) for d in data]
    batched = MerkleTree()
    bounds = sorted({0, len(hashes), *(c for c in cuts if c <= len(hashes))})
    for lo, hi in itertools.pairwise(bounds):
        batched.append_leaf_hashes(iter(hashes[lo:hi]))
    single = tree_of(data)
    assert batched.size == single.size == len(data)
    for size in sorted({0, len(data), *(c for c in cuts if c <= len(data))}):
        assert batched.root(size) == single.root(size) == ref_mth(data[:size])


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[MerkleTree, int, int]:
    total = draw(st.integers(min_value=1, max_value=600))
    size = draw(st.integers(min_value=1, max_value=total))
    index = draw(st.integers(min_value=0, max_value=size - 1))
    return MerkleTree(leaf_hash(i.to_bytes(4, "big")) for i in range(total)), size, index


@settings(max_examples=200, deadline=None)
@given(
    case=tree_and_index(),
    bit=st.integers(min_value=0, max_value=255),
    pick=st.integers(min_value=0),
)
def test_inclusion_property(case: tuple[MerkleTree, int, int], bit: int, pick: int) -> None:
    tree, size, index = case
    h, root = tree.leaf_hash_at(index), tree.root(size)
    proof = tree.inclusion_proof(index, size)
    verify_inclusion(h, index, size, proof, root)
    if proof:
        bad = list(proof)
        bad[pick % len(bad)] = flip_bit(bad[pick % len(bad)], bit)
        assert_inclusion_rejected(h, index, size, bad, root)
    assert_inclusion_rejected(h, index, size, proof, flip_bit(root, bit))


@settings(max_examples=200, deadline=None)
@given(
    case=tree_and_index(),
    bit=st.integers(min_value=0, max_value=255),
    pick=st.integers(min_value=0),
)
def test_consistency_property(case: tuple[MerkleTree, int, int], bit: int, pick: int) -> None:
    tree, new, old = case
    old += 1  # 1 <= old <= new
    old_root, new_root = tree.root(old), tree.root(new)
    proof = tree.consistency_proof(old, new)
    verify_consistency(old, new, old_root, new_root, proof)
    if proof:
        bad = list(proof)
        bad[pick % len(bad)] = flip_bit(bad[pick % len(bad)], bit)
        assert_consistency_rejected(old, new, old_root, new_root, bad)
    assert_consistency_rejected(old, new, old_root, flip_bit(new_root, bit), proof)
    if old < new:
        assert_consistency_rejected(old, new, flip_bit(old_root, bit), new_root, proof)


def test_large_tree_batch_matches_incremental() -> None:
    """Crosses several level boundaries at once, with mixed batch sizes."""
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range((1 << 16) + 3)]
    single = MerkleTree()
    for h in hashes:
        single.append_leaf_hash(h)
    batched = MerkleTree(hashes[:1000])
    batched.append_leaf_hashes(hashes[1000:40_000])
    batched.append_leaf_hashes(hashes[40_000:])
    for size in (1, 1000, 1 << 15, 40_000, 1 << 16, len(hashes)):
        assert batched.root(size) == single.root(size), size
    index = 54_321
    proof = batched.inclusion_proof(index)
    verify_inclusion(hashes[index], index, len(hashes), proof, single.root())
    verify_consistency(
        40_000, len(hashes), single.root(40_000), single.root(), batched.consistency_proof(40_000)
    )
