"""The quick pass of verification (clean logs: per-chunk summaries joined up) must say
exactly what the exact pass says, and must give way to the exact pass whenever anything
is out of place, wherever chunk boundaries fall."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accord.ledger import Identity, Ledger, Signer, verify_entries
from accord.ledger import verify as verify_module
from accord.ledger.chain import GENESIS, entry_hash
from accord.ledger.merkle import MerkleTree, leaf_hash
from accord.ledger.verify import _exact, _quick, _Records, _SqliteFile, verify_records, verify_sqlite
from tests.conftest import run
from tests.test_ledger_tamper import build_session, stored_session, tamper


def chained(raws: list[bytes]) -> list[Any]:
    """Items as database rows give them: index columns and the hash chain."""
    import json

    items, prev = [], GENESIS
    for raw in raws:
        doc = json.loads(raw)
        ident = entry_hash(prev, raw)
        items.append((raw, (doc["actor"], doc["seq"], doc["kind"]), (prev, ident, leaf_hash(raw).hex())))
        prev = ident
    return items


def both(sid: str, items: list[Any], labels: list[int], **kw: Any) -> tuple[Any, Any]:
    checkpoints = list(kw.pop("checkpoints", ()))
    reference = kw.pop("reference", None)
    quick = _quick(sid, _Records(items, labels), reference, checkpoints, kw.pop("workers", 1))
    exact = _exact(sid, items, labels, reference, checkpoints, 1)
    return quick, exact


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Chunks of 3 entries: every tampering below falls on, next to or inside a boundary.
    monkeypatch.setattr(verify_module, "_CHUNK", 3)


def test_on_a_clean_log_the_quick_pass_reports_what_the_exact_pass_does(small_chunks: None) -> None:
    sid, envs, ids = build_session(6)
    items = chained([e.canonical() for e in envs])
    quick, exact = both(sid, items, list(range(len(items))))
    assert quick is not None and quick == exact and quick.ok
    assert quick.signatures_checked == len(envs) and quick.root == MerkleTree(
        [leaf_hash(e.canonical()) for e in envs]
    ).root().hex()
    # Without the chain (a bundle's lines), and with the bundle's trusted leaf hashes.
    bare = [(raw, None, None) for raw, _, _ in items]
    quick, exact = both(sid, bare, list(range(len(bare))))
    assert quick is not None and quick == exact


def test_checkpoint_findings_are_the_same_on_both_passes(tmp_path: Path, small_chunks: None) -> None:
    async def go() -> None:
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            sid, envs, ids = await stored_session(ledger)
            notes = await ledger.checkpoint_notes(sid)
        items = chained([e.canonical() for e in envs])
        labels = list(range(len(items)))
        for checkpoints in (
            notes,
            [],
            ["not a checkpoint"],
            [notes[-1].replace("\n\n", "\n\nextra\n", 1)],
            [n[: len(n) // 2] for n in notes],
        ):
            quick, exact = both(sid, items, labels, checkpoints=checkpoints)
            assert quick is not None and quick == exact, checkpoints
        # A log missing its last entry: the entries that remain are in order, so the quick
        # pass reports it, with the exact pass's finding from the co-signed checkpoint.
        quick, exact = both(sid, items[:-1], labels[:-1], checkpoints=notes)
        assert quick is not None and quick == exact
        assert exact.first is not None and exact.first.what == "removed"

    run(go())


def _forged(sid: str) -> bytes:
    return Signer(Identity.generate("alice"), sid, next_seq=99).seal("move", {"round": 2, "move": {}}).canonical()


def tamperings(sid: str, raws: list[bytes]) -> dict[str, list[Any]]:
    """(items, labels) of the log after each kind of tampering, at every position."""
    n = len(raws)
    out: dict[str, Any] = {}
    items = chained(raws)
    for k in range(1, n - 1):
        changed = list(items)
        raw, cols, chain = items[k]
        changed[k] = (raw.replace(b'"seq"', b'"seq" ', 1), cols, chain)
        out[f"changed-{k}"] = (changed, list(range(n)))
        removed = chained(raws[:k] + raws[k + 1 :])
        out[f"removed-and-rechained-{k}"] = (removed, list(range(n - 1)))
        out[f"removed-leaving-a-gap-{k}"] = (items[:k] + items[k + 1 :], [*range(k), *range(k + 1, n)])
        if k + 1 < n - 1:
            swapped = list(items)
            swapped[k], swapped[k + 1] = swapped[k + 1], swapped[k]
            out[f"reordered-{k}"] = (swapped, list(range(n)))
            out[f"reordered-and-rechained-{k}"] = (chained(raws[:k] + [raws[k + 1], raws[k]] + raws[k + 2 :]), list(range(n)))
        out[f"inserted-{k}"] = (chained(raws[:k] + [_forged(sid)] + raws[k:]), list(range(n + 1)))
        out[f"replayed-{k}"] = (chained(raws[:k] + [raws[k]] + raws[k:]), list(range(n + 1)))
        relinked = list(items)
        raw, cols, (prev, ident, leaf) = items[k]
        relinked[k] = (raw, cols, (GENESIS, ident, leaf))
        out[f"link-broken-{k}"] = (relinked, list(range(n)))
        renumbered = list(range(n))
        renumbered[k] = k + 100
        out[f"renumbered-{k}"] = (items, renumbered)
    out["after-the-close"] = (chained(raws + [raws[-1]]), list(range(n + 1)))
    out["opening-moved"] = (chained(raws[1:3] + [raws[0]] + raws[3:]), list(range(n)))
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_anything_out_of_place_sends_the_log_to_the_exact_pass(small_chunks: None, workers: int) -> None:
    sid, envs, _ = build_session(3)
    raws = [e.canonical() for e in envs]
    cases = tamperings(sid, raws)
    if workers == 2:  # real processes: a sample, to keep the test short
        cases = {name: case for i, (name, case) in enumerate(sorted(cases.items())) if i % 20 == 0}
    caught = 0
    for name, (items, labels) in cases.items():
        quick = _quick(sid, _Records(items, labels), None, [], workers)
        exact = _exact(sid, items, labels, None, [], 1)
        assert verify_records(sid, items, labels, workers=workers) == exact, name
        if exact.ok:
            # Entries of different actors swapped, or an actor's last message dropped, and
            # the chain recomputed: only a checkpoint could tell, and neither pass claims to.
            assert "rechained" in name and quick == exact, name
        else:
            assert quick is None, name
            caught += 1
    assert caught >= 0.8 * len(cases)


def test_a_bundle_whose_leaves_do_not_match_goes_to_the_exact_pass(small_chunks: None) -> None:
    sid, envs, _ = build_session(3)
    raws = [e.canonical() for e in envs]
    bare = [(raw, None, None) for raw in raws]
    leaves = [leaf_hash(raw) for raw in raws]
    labels = list(range(len(bare)))
    assert _quick(sid, _Records(bare, labels), leaves, [], 1) is not None
    # Without a verified checkpoint the leaves are not trusted, so not compared either.
    swapped = [leaves[1], leaves[0], *leaves[2:]]
    quick, exact = both(sid, bare, labels, reference=swapped)
    assert quick == exact


def test_sqlite_files_are_checked_by_the_processes_that_read_them(tmp_path: Path, small_chunks: None) -> None:
    async def go() -> None:
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            sid, envs, _ = await stored_session(ledger, rounds=6)
            notes = await ledger.checkpoint_notes(sid)
            rows = await ledger.entries(sid)
            expected = verify_entries(sid, rows, checkpoints=notes)
            assert expected.ok
            for workers in (1, 2):
                assert verify_sqlite(tmp_path / "l.db", sid, checkpoints=notes, workers=workers) == expected
            assert await ledger.verify(sid) == expected
            # Each tampering, wherever it falls: the same report as from the rows.
            for how, k in (("changed", 6), ("removed", 3), ("removed-leaving-a-gap", 9), ("reordered", 5),
                           ("inserted", 4)):
                sid, envs, _ = await stored_session(ledger, rounds=6)
                await tamper(ledger, sid, how, k)
                notes = await ledger.checkpoint_notes(sid)
                rows = await ledger.entries(sid)
                source = _SqliteFile(tmp_path / "l.db", sid)
                assert _quick(sid, source, None, notes, 1) is None, how
                report = await ledger.verify(sid)
                assert not report.ok and report == verify_entries(sid, rows, checkpoints=notes), how

    run(go())


def test_packed_leaf_hashes_build_the_same_tree() -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(1000)]
    one, packed = MerkleTree(leaves[:300]), MerkleTree(leaves[:300])
    one.append_leaf_hashes(leaves[300:])
    packed.append_packed_leaf_hashes(b"".join(leaves[300:]))
    assert all(one.root(m) == packed.root(m) for m in (1, 299, 300, 301, 512, 1000))
    with pytest.raises(ValueError, match="not a whole number of 32-byte leaf hashes"):
        packed.append_packed_leaf_hashes(b"x" * 33)
    assert packed.size == 1000


def test_a_file_the_checkers_cannot_open_is_read_through_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from accord.ledger import sqlite_rows

    def refuse(*_: object) -> None:
        raise sqlite3.OperationalError("unable to open database file")

    async def go() -> None:
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            sid, envs, _ = await stored_session(ledger)
            expected = verify_entries(sid, await ledger.entries(sid), checkpoints=await ledger.checkpoint_notes(sid))
            monkeypatch.setattr(sqlite_rows, "count", refuse)
            report = await ledger.verify(sid)
        assert report == expected and report.ok and report.covered == len(envs)

    run(go())


def test_an_entry_number_that_is_not_an_integer_is_named_not_passed(tmp_path: Path) -> None:
    """SQLite keeps a REAL where INTEGER was declared: renumbering entry 2 as 1.5 inside a
    chunk keeps the row count and each chunk's first and last numbers."""
    import sqlite3

    async def go() -> None:
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            sid, _, _ = await stored_session(ledger, rounds=12)
            notes = await ledger.checkpoint_notes(sid)
            with sqlite3.connect(tmp_path / "l.db") as conn:
                conn.execute("UPDATE entries SET idx = 1.5 WHERE session_id = ? AND idx = 2", (sid,))
            assert _quick(sid, _SqliteFile(tmp_path / "l.db", sid), None, notes, 1) is None
            report = await ledger.verify(sid)
            assert report.first is not None and report.first.idx == 2
            assert "entry number 1.5 is not a whole number" in report.first.reason
            assert report == verify_entries(sid, await ledger.entries(sid), checkpoints=notes)

    run(go())


def test_items_with_and_without_stored_hashes_are_refused() -> None:
    sid, envs, _ = build_session(2)
    items = chained([e.canonical() for e in envs])
    raw, cols, _ = items[3]
    items[3] = (raw, cols, None)
    with pytest.raises(ValueError, match="every item its stored hashes"):
        verify_records(sid, items, list(range(len(items))))
