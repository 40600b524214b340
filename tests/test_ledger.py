"""The ledger on each real backend: batched appends, the chain, refusals that write nothing."""

from __future__ import annotations

import secrets

import pytest

from accord.ledger import Identity, Ledger, LedgerError, PublicKeys, Signer, verify_entries
from accord.ledger.envelope import Envelope, EnvelopeError
from tests.conftest import run


def _session(n_moves: int = 10) -> tuple[str, list[Envelope], Signer]:
    sid = f"t-{secrets.token_hex(4)}"
    chair, alice = Identity.generate("chair"), Identity.generate("alice")
    cs, al = Signer(chair, sid), Signer(alice, sid)
    keys = {"chair": chair.public_key, "alice": alice.public_key}
    envs = [cs.seal("session.open", {"keys": keys})]
    for n in range(n_moves):
        envs.append(cs.seal("call", {"round": n + 1, "to": "alice"}))
        envs.append(al.seal("move", {"round": n + 1, "n": n}))
    return sid, envs, al


def test_append_and_verify(ledger_location: str) -> None:
    async def go() -> None:
        sid, envs, _ = _session()
        async with await Ledger.open(ledger_location) as ledger:
            await ledger.create_session(sid, "t", "test", "sha256:0")
            await ledger.append(sid, envs[:5])
            await ledger.append(sid, envs[5:])
            rows = await ledger.entries(sid)
            assert [r.idx for r in rows] == list(range(len(envs)))
            assert rows[3].prev_hash == rows[2].entry_hash
            assert verify_entries(sid, rows).ok
            moves = await ledger.entries(sid, kinds=["move"])
            assert len(moves) == 10 and all(r.actor == "alice" for r in moves)
            assert (await ledger.find_session(sid)).entries == len(envs)

    run(go())


def test_a_replayed_sequence_number_is_refused_and_nothing_is_written(ledger_location: str) -> None:
    async def go() -> None:
        sid, envs, _ = _session(3)
        async with await Ledger.open(ledger_location) as ledger:
            await ledger.create_session(sid, "t", "test", "sha256:0")
            await ledger.append(sid, envs)
            before = await ledger.entries(sid)
            with pytest.raises(LedgerError, match="duplicate sequence"):
                await ledger.append(sid, [envs[-1]])
            assert await ledger.entries(sid) == before
            # The head is re-read after a refusal, so later appends still chain correctly.
            _, _, alice = _session(0)
            more = Signer(alice.identity, sid, next_seq=100).seal("move", {})
            await ledger.append(sid, [more])
            rows = await ledger.entries(sid)
            assert rows[-1].prev_hash == before[-1].entry_hash

    run(go())


def test_an_envelope_of_another_session_is_refused(ledger_location: str) -> None:
    async def go() -> None:
        sid, envs, _ = _session(1)
        other, _, _ = _session(1)
        async with await Ledger.open(ledger_location) as ledger:
            await ledger.create_session(sid, "t", "test", "sha256:0")
            with pytest.raises(LedgerError, match="belongs to session"):
                await ledger.append(other, envs)
            assert await ledger.entries(other) == []

    run(go())


def test_session_lookup(ledger_location: str) -> None:
    async def go() -> None:
        sid, envs, _ = _session(1)
        async with await Ledger.open(ledger_location) as ledger:
            await ledger.create_session(sid, "lookup-spec", "test", "sha256:0")
            with pytest.raises(LedgerError, match="already exists"):
                await ledger.create_session(sid, "lookup-spec", "test", "sha256:0")
            assert (await ledger.find_session(sid)).id == sid
            assert (await ledger.find_session("lookup-spec")).id == sid
            with pytest.raises(LedgerError, match="no session"):
                await ledger.find_session("no-such-session-anywhere")

    run(go())


def test_envelopes_reject_garbage_and_bad_signatures() -> None:
    with pytest.raises(EnvelopeError, match="not JSON"):
        Envelope.parse(b"\xff\x00")
    with pytest.raises(EnvelopeError, match="malformed envelope: seq"):
        Envelope.parse(b'{"session":"s","actor":"a","seq":0,"kind":"k","body":{},"ts":"t"}')
    with pytest.raises(EnvelopeError, match="exceeds"):
        Envelope.parse(b" " * (300 * 1024))
    sid, envs, alice = _session(1)
    keys = PublicKeys({"alice": alice.identity.public_key})
    good = envs[-1]
    assert good.verify(keys)
    assert not good.model_copy(update={"body": {"round": 2}}).verify(keys)
    assert not good.model_copy(update={"actor": "mallory"}).verify(keys)
    assert not good.model_copy(update={"sig": "not base64!"}).verify(keys)
