"""Bad messages on the bus are refused with a logged reason, and the session goes on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from accord.bus import open_bus
from accord.bus.topics import delegate_outbox, outboxes_filter
from accord.ledger import Identity, Ledger, Signer, verify_entries
from accord.session import run_session
from accord.session_plan import load_plan
from accord.simulate import simulate
from tests.conftest import FIXTURES, run

SESSION = "rogue-test"


async def _rogue(url: str, ready: asyncio.Event) -> None:
    """Wait for a genuine move, then throw every kind of bad message at the chair."""
    async with open_bus(url) as bus, bus.subscribe(outboxes_filter(SESSION)) as outboxes:
        ready.set()
        genuine = None
        async for message in outboxes:
            if json.loads(message.payload)["kind"] == "move":
                genuine = message
                break
        assert genuine is not None
        doc = json.loads(genuine.payload)
        impostor = Signer(Identity.generate(doc["actor"]), SESSION, next_seq=doc["seq"] + 1)
        mallory = Signer(Identity.generate("mallory"), SESSION)
        shops_outbox = delegate_outbox(SESSION, "shops")
        bad = [
            (shops_outbox, b"\x00 not json at all"),
            (shops_outbox, b"{" + b" " * (300 * 1024) + b"}"),
            (shops_outbox, b'{"session": "rogue-test", "actor": "shops"}'),
            (delegate_outbox(SESSION, doc["actor"]), impostor.seal("move", {"move": doc["body"]["move"]}).canonical()),
            (delegate_outbox(SESSION, "mallory"), mallory.seal("move", {"move": doc["body"]["move"]}).canonical()),
            (shops_outbox if doc["actor"] != "shops" else delegate_outbox(SESSION, "parents"), genuine.payload),
            (genuine.topic, genuine.payload),  # a replay of a message already recorded
        ]
        for topic, payload in bad:
            await bus.publish(topic, payload)


def test_each_bad_message_is_refused_and_logged(tmp_path: Path) -> None:
    url = "memory://bad-messages"
    plan, _ = load_plan(FIXTURES / "tiny.yaml")

    async def go():  # noqa: ANN202
        ready = asyncio.Event()
        rogue = asyncio.create_task(_rogue(url, ready))
        await ready.wait()
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            result = await run_session(plan, ledger, bus_url=url, session_id=SESSION)
            rows = await ledger.entries(SESSION)
        await rogue
        return result, rows

    result, rows = run(go())
    assert verify_entries(SESSION, rows).ok
    reasons = [r.body["reason"] for r in rows if r.kind == "refused-message"]
    expected = ["not JSON", "exceeds", "malformed envelope", "bad signature", "unknown sender 'mallory'",
                "but sent on", "replayed sequence number"]
    for words in expected:
        assert any(words in reason for reason in reasons), (words, reasons)
    # Nothing a rogue sent changed the course of the session.
    clean = simulate(load_plan(FIXTURES / "tiny.yaml")[0])
    assert result.ended == clean.ended
    assert [(r.actor, r.body["move"]) for r in rows if r.kind == "move"] == [
        (a, m.model_dump(mode="json")) for a, m in clean.moves
    ]
