"""Tampering with a stored ledger, on each real backend: `verify` names the first bad entry
and says what happened to it (changed, removed, reordered, inserted, diverged)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from accord.ledger import Envelope, Identity, Ledger, Signer, verify_entries
from accord.ledger.chain import entry_hash
from accord.ledger.merkle import leaf_hash
from accord.ledger.schema import checkpoints, entries
from tests.conftest import run

CARDS = {"alice": ["a-home", "a-green"], "bob": ["b-books", "b-jobs"]}


def build_session(rounds: int = 5, sid: str | None = None) -> tuple[str, list[Envelope], dict[str, Identity]]:
    """A small signed session: session.open, then per round a call to and a move from
    alice, then bob (moves cite values cards), then `ended` and session.close."""
    sid = sid or f"t-{secrets.token_hex(4)}"
    ids = {a: Identity.generate(a) for a in ("chair", "alice", "bob")}
    signers = {a: Signer(i, sid) for a, i in ids.items()}
    keys = {a: i.public_key for a, i in ids.items()}
    envs = [signers["chair"].seal("session.open", {"session_id": sid, "keys": keys})]
    for r in range(1, rounds + 1):
        for who in ("alice", "bob"):
            envs.append(signers["chair"].seal("call", {"round": r, "to": who}))
            cited = [{"card": c, "contribution": 0.1 * (i + 1)} for i, c in enumerate(CARDS[who][: 1 + r % 2])]
            move = {
                "kind": "offer",
                "offer": {"housing": f"a{r}"},
                "justification": {"utility": 0.5, "cited": cited, "rationale": f"honours round {r}"},
            }
            envs.append(signers[who].seal("move", {"round": r, "move": move}))
    envs.append(signers["chair"].seal("ended", {"reason": "deadline", "round": rounds}))
    envs.append(signers["chair"].seal("session.close", {"reason": "deadline"}))
    return sid, envs, ids


async def stored_session(ledger: Ledger, rounds: int = 5) -> tuple[str, list[Envelope], dict[str, Identity]]:
    sid, envs, ids = build_session(rounds)
    await ledger.create_session(sid, "t", "test", "sha256:0")
    await ledger.append(sid, envs)
    await ledger.seal(sid, ids["chair"], [ids["alice"], ids["bob"]])
    return sid, envs, ids


async def _shift(conn: Any, sid: str, start: int, by: int) -> None:
    """Renumber entries idx >= start by `by`, in two steps so the primary key never clashes."""
    where = (entries.c.session_id == sid) & (entries.c.idx >= start)
    await conn.execute(update(entries).where(where).values(idx=entries.c.idx + 1_000_000))
    await conn.execute(
        update(entries)
        .where((entries.c.session_id == sid) & (entries.c.idx >= 1_000_000))
        .values(idx=entries.c.idx - 1_000_000 + by)
    )


async def tamper(ledger: Ledger, sid: str, how: str, k: int) -> None:
    async with ledger.engine.begin() as conn:
        at = (entries.c.session_id == sid) & (entries.c.idx == k)
        if how == "changed":
            env = (await conn.execute(select(entries.c.envelope).where(at))).scalar_one()
            assert "honours" in env
            await conn.execute(update(entries).where(at).values(envelope=env.replace("honours", "betrays", 1)))
        elif how == "removed":
            await conn.execute(delete(entries).where(at))
            await _shift(conn, sid, k + 1, -1)
        elif how == "removed-leaving-a-gap":
            await conn.execute(delete(entries).where(at))
        elif how == "reordered":
            nxt = (entries.c.session_id == sid) & (entries.c.idx == k + 1)
            await conn.execute(update(entries).where(at).values(idx=-1))
            await conn.execute(update(entries).where(nxt).values(idx=k))
            await conn.execute(
                update(entries).where((entries.c.session_id == sid) & (entries.c.idx == -1)).values(idx=k + 1)
            )
        elif how == "inserted":
            prev = (
                await conn.execute(
                    select(entries.c.entry_hash).where((entries.c.session_id == sid) & (entries.c.idx == k - 1))
                )
            ).scalar_one()
            forged = Signer(Identity.generate("alice"), sid, next_seq=99).seal("move", {"round": 2, "move": {}})
            raw = forged.canonical()
            await _shift(conn, sid, k, +1)
            await conn.execute(
                insert(entries),
                [
                    {
                        "session_id": sid,
                        "idx": k,
                        "actor": "alice",
                        "seq": 99,
                        "kind": "move",
                        "envelope": raw.decode(),
                        "prev_hash": prev,
                        "entry_hash": entry_hash(prev, raw),
                        "leaf_hash": leaf_hash(raw).hex(),
                    }
                ],
            )
        else:  # pragma: no cover
            raise AssertionError(how)


# Entries: 0 open; round r: 4r-3 call alice, 4r-2 move alice, 4r-1 call bob, 4r move bob.
CASES = [
    ("changed", 6, 6, "changed", "bad signature"),
    ("removed", 5, 5, "removed", "missing"),
    ("removed-leaving-a-gap", 6, 7, "removed", "missing"),
    ("reordered", 5, 5, "reordered", "now comes later"),
    ("inserted", 6, 6, "inserted", "not part of the log"),
]


@pytest.mark.parametrize(("how", "k", "named", "what", "words"), CASES, ids=[c[0] for c in CASES])
def test_tampering_is_detected_named_and_classified(
    ledger_location: str, how: str, k: int, named: int, what: str, words: str
) -> None:
    async def go() -> None:
        async with await Ledger.open(ledger_location) as ledger:
            sid, _, _ = await stored_session(ledger)
            assert (await ledger.verify(sid)).ok
            await tamper(ledger, sid, how, k)
            report = await ledger.verify(sid)
            assert not report.ok
            first = report.first
            assert first is not None
            assert (first.idx, first.what) == (named, what), report.problems
            assert words in first.reason
            # The signed checkpoint no longer matches either (reported after the entry).
            assert any(p.what in ("diverged", "removed") for p in report.problems[1:])

    run(go())


def test_a_removed_last_entry_is_caught_by_the_checkpoint(ledger_location: str) -> None:
    async def go() -> None:
        async with await Ledger.open(ledger_location) as ledger:
            sid, envs, _ = await stored_session(ledger)
            async with ledger.engine.begin() as conn:
                await conn.execute(
                    delete(entries).where((entries.c.session_id == sid) & (entries.c.idx == len(envs) - 1))
                )
            report = await ledger.verify(sid)
            assert report.first is not None
            assert (report.first.idx, report.first.what) == (len(envs) - 1, "removed")
            assert f"checkpoint {len(envs)}" in report.first.reason

    run(go())


def test_history_rewritten_with_the_chairs_key_diverges_from_the_cosigned_checkpoint(
    ledger_location: str,
) -> None:
    """An operator holding the chair's key swaps two entries of different actors and
    recomputes every hash: signatures and sequence numbers still hold; the checkpoint
    the delegates co-signed does not."""

    async def go() -> None:
        async with await Ledger.open(ledger_location) as ledger:
            sid, envs, _ = await stored_session(ledger)
            # Re-chain with entries 6 (alice's move) and 7 (call to bob) swapped.
            order = [*envs[:6], envs[7], envs[6], *envs[8:]]
            rows = []
            prev = "0" * 64
            for i, env in enumerate(order):
                raw = env.canonical()
                digest = entry_hash(prev, raw)
                rows.append({"idx": i, "prev_hash": prev, "entry_hash": digest, "leaf_hash": leaf_hash(raw).hex(),
                             "envelope": raw.decode(), "actor": env.actor, "seq": env.seq, "kind": env.kind})
                prev = digest
            async with ledger.engine.begin() as conn:
                await conn.execute(delete(entries).where(entries.c.session_id == sid))
                await conn.execute(insert(entries), [{"session_id": sid, **r} for r in rows])
            report = await ledger.verify(sid)
            assert report.first is not None and report.first.what == "diverged", report.problems
            assert f"checkpoint {len(envs)}" in report.first.reason
            # The chair may even sign a new checkpoint of the rewritten log: the delegates'
            # cosignatures are on the old one, and both cannot hold.
            rewritten = await Ledger.open(ledger_location)
            try:
                fresh = (await rewritten.tree(sid)).root()
                assert fresh != (await rewritten.checkpoints(sid))[-1].root
            finally:
                await rewritten.close()

    run(go())


def test_a_tampered_checkpoint_is_reported(ledger_location: str) -> None:
    async def go() -> None:
        async with await Ledger.open(ledger_location) as ledger:
            sid, envs, _ = await stored_session(ledger)
            async with ledger.engine.begin() as conn:
                at = checkpoints.c.session_id == sid
                note = (await conn.execute(select(checkpoints.c.note).where(at))).scalar_one()
                lines = note.split("\n")
                lines[2] = lines[2][:5] + ("A" if lines[2][5] != "A" else "B") + lines[2][6:]
                await conn.execute(update(checkpoints).where(at).values(note="\n".join(lines)))
            report = await ledger.verify(sid)
            assert report.first is not None and report.first.what == "checkpoint"
            assert "bad ed25519 signature" in report.first.reason

    run(go())


def test_bundle_style_verification_without_the_chain_still_classifies_by_sequence_numbers() -> None:
    """With only signatures and sequence numbers (a log whose chain was recomputed),
    same-actor reorders, replays and gaps are still named."""
    from accord.ledger.verify import verify_records

    sid, envs, _ = build_session(4)
    raws = [e.canonical() for e in envs]

    def check(lines: list[bytes]) -> Any:
        items = [(r, None, None) for r in lines]
        return verify_records(sid, items, list(range(len(items)))).first

    assert check(raws) is None
    # alice's moves are entries 2, 6, 10, 14: swap 6 and 10 (same actor).
    swapped = [*raws[:6], raws[10], *raws[7:10], raws[6], *raws[11:]]
    first = check(swapped)
    assert (first.idx, first.what) == (6, "reordered")
    replay = [*raws[:8], raws[6], *raws[8:]]
    first = check(replay)
    assert (first.idx, first.what) == (8, "inserted") and "appears twice" in first.reason
    gap = [*raws[:6], *raws[7:]]
    first = check(gap)
    assert (first.idx, first.what) == (9, "removed") and "alice's message 2 is missing" in first.reason
    bad = [*raws[:3], raws[3].replace(b"round", b"ROUND", 1), *raws[4:]]
    first = check(bad)
    assert (first.idx, first.what) == (3, "changed")


def test_parallel_verification_agrees_with_serial(tmp_path) -> None:  # noqa: ANN001
    async def go() -> None:
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            sid, envs, _ = await stored_session(ledger, rounds=30)
            await tamper(ledger, sid, "changed", 22)
            rows = await ledger.entries(sid)
            notes = await ledger.checkpoint_notes(sid)
        serial = verify_entries(sid, rows, checkpoints=notes, workers=1)
        parallel = verify_entries(sid, rows, checkpoints=notes, workers=2)
        assert serial == parallel
        assert serial.first is not None and serial.first.idx == 22
        assert serial.signatures_checked == len(envs) - 1

    run(go())


def test_verify_cli_names_the_entry_and_what_happened(tmp_path) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from accord.cli import app

    db = tmp_path / "l.db"

    async def go() -> str:
        async with await Ledger.open(db) as ledger:
            sid, _, _ = await stored_session(ledger)
            await tamper(ledger, sid, "reordered", 9)
            return sid

    sid = run(go())
    out = CliRunner().invoke(app, ["verify", sid, "--ledger", str(db)])
    assert out.exit_code == 1
    assert "FAILED" in out.output and "entry 9 " in out.output and "reordered" in out.output
