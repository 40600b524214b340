"""The bus contract, run on every transport: the in-process bus and a real MQTT broker.

Code written against `memory://` must run unchanged on `mqtt://`, so the behaviour a
session relies on is written once here and checked on both. Each test works under
its own topic root, because the broker (unlike a fresh memory bus) is shared by the
whole test session and keeps retained messages. MQTT-only behaviour (sessions,
reconnects, wills, URLs) is in test_bus_mqtt.py.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass

import pytest

from accord.bus import Bus, BusClosed, InvalidTopic, Message, Subscription, open_bus, topic_matches
from tests.test_bus_memory import MATCHES

_names = itertools.count()


@dataclass
class Transport:
    """How a test reaches one bus, whatever carries it."""

    name: str
    url: str
    root: str
    quiet: float  # how long "nothing more arrives" waits: a broker needs a round trip
    timeout: float

    def open(self) -> Bus:
        """Another client of the same bus (a handle on the named memory bus, or a connection)."""
        return open_bus(self.url)

    def t(self, topic: str) -> str:
        """`topic` under this test's private root."""
        return f"{self.root}/{topic}"

    async def take(self, sub: Subscription, n: int) -> list[Message]:
        async def collect() -> list[Message]:
            return [await anext(sub) for _ in range(n)]

        return await asyncio.wait_for(collect(), self.timeout)

    async def nothing_more(self, sub: Subscription) -> bool:
        await asyncio.sleep(0)
        try:
            await asyncio.wait_for(anext(sub), self.quiet)
        except TimeoutError:
            return True
        return False


@pytest.fixture(params=["memory", "mqtt"])
def transport(request: pytest.FixtureRequest) -> Transport:
    root = f"accord-test/{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        return Transport("memory", f"memory://contract-{next(_names)}", root, 0.01, 1.0)
    broker = request.getfixturevalue("mqtt_broker")
    return Transport("mqtt", broker.url, root, 0.2, 10.0)


# --- routing --------------------------------------------------------------------------


async def test_publish_and_receive_with_wildcards(transport: Transport) -> None:
    t = transport.t
    async with transport.open() as bus, bus.subscribe(t("s1/delegates/+/outbox")) as outboxes:
        async with bus.subscribe(t("s1/#")) as everything:
            await bus.publish(t("s1/delegates/alice/outbox"), b"offer")
            await bus.publish(t("s1/delegates/alice/inbox"), b"call")
            await bus.publish(t("s2/delegates/alice/outbox"), b"elsewhere")
            [got] = await transport.take(outboxes, 1)
            assert got == Message(t("s1/delegates/alice/outbox"), b"offer")
            assert [m.payload for m in await transport.take(everything, 2)] == [b"offer", b"call"]
            assert await transport.nothing_more(outboxes)
            assert await transport.nothing_more(everything)


async def test_routing_follows_the_mqtt_matching_table(transport: Transport) -> None:
    """Every filter of the MQTT spec examples at once on one bus: each subscription gets
    exactly the names `topic_matches` says, once each, even where filters overlap."""
    pairs = [(f, n) for f, n, _ in MATCHES if "$" not in f + n and len(f + n) < 200]
    filters = sorted({transport.t(f) for f, _ in pairs})
    names = sorted({transport.t(n) for _, n in pairs})
    async with transport.open() as bus:
        subs = {f: bus.subscribe(f) for f in filters}
        for sub in subs.values():
            await sub.__aenter__()
        try:
            for name in names:
                await bus.publish(name, b"x")
            for f, sub in subs.items():
                expected = [n for n in names if topic_matches(f, n)]
                got = [m.topic for m in await transport.take(sub, len(expected))]
                assert got == expected, f
            await asyncio.sleep(transport.quiet)  # anything extra has arrived by now
            leftover = {f: sub.pending for f, sub in subs.items()}  # type: ignore[attr-defined]
            assert {f: n for f, n in leftover.items() if n} == {}
        finally:
            for sub in subs.values():
                await sub.__aexit__(None, None, None)


async def test_order_is_kept_per_publisher(transport: Transport) -> None:
    t = transport.t
    async with transport.open() as reader, reader.subscribe(t("o/#")) as sub:
        async with transport.open() as alice, transport.open() as bob:

            async def send(bus: Bus, who: str) -> None:
                for i in range(100):
                    await bus.publish(t(f"o/{who}/{i % 3}"), f"{who}{i}".encode())

            await asyncio.gather(send(alice, "a"), send(bob, "b"))
            got = [m.payload.decode() for m in await transport.take(sub, 200)]
    assert [p for p in got if p[0] == "a"] == [f"a{i}" for i in range(100)]
    assert [p for p in got if p[0] == "b"] == [f"b{i}" for i in range(100)]


async def test_several_subscriptions_share_one_bus(transport: Transport) -> None:
    """Same filter twice, overlapping filters: every subscription gets its own single copy."""
    t = transport.t
    async with transport.open() as bus:
        async with (
            bus.subscribe(t("x/+")) as one,
            bus.subscribe(t("x/+")) as two,
            bus.subscribe(t("x/#")) as three,
            bus.subscribe(t("x/a")) as four,
        ):
            await bus.publish(t("x/a"), b"1")
            await bus.publish(t("x/b"), b"2")
            for sub, expected in ((one, [b"1", b"2"]), (two, [b"1", b"2"]), (three, [b"1", b"2"])):
                assert [m.payload for m in await transport.take(sub, 2)] == expected
            assert [m.payload for m in await transport.take(four, 1)] == [b"1"]
            for sub in (one, two, three, four):
                assert await transport.nothing_more(sub)


async def test_leaving_unsubscribes_but_keeps_other_subscriptions_on_the_filter(
    transport: Transport,
) -> None:
    t = transport.t
    async with transport.open() as bus, transport.open() as publisher:
        async with bus.subscribe(t("u")) as stays:
            async with bus.subscribe(t("u")) as leaves:
                await publisher.publish(t("u"), b"both")
                assert (await transport.take(leaves, 1))[0].payload == b"both"
            await publisher.publish(t("u"), b"one left")
            assert [m.payload for m in await transport.take(stays, 2)] == [b"both", b"one left"]
            with pytest.raises(StopAsyncIteration):
                await anext(leaves)
        # Nobody subscribes now: what is published meanwhile is not kept for a later one.
        await publisher.publish(t("u"), b"unheard")
        await asyncio.sleep(transport.quiet)
        async with bus.subscribe(t("u")) as later:
            await publisher.publish(t("u"), b"heard")
            assert [m.payload for m in await transport.take(later, 1)] == [b"heard"]
            assert await transport.nothing_more(later)


async def test_subscriber_can_publish_from_its_own_loop(transport: Transport) -> None:
    t = transport.t
    async with transport.open() as bus:
        async with bus.subscribe(t("ping")) as pings, bus.subscribe(t("pong")) as pongs:

            async def echo() -> None:
                async for message in pings:
                    await bus.publish(t("pong"), message.payload)
                    if message.payload == b"19":
                        return

            echoer = asyncio.create_task(echo())
            for i in range(20):
                await bus.publish(t("ping"), str(i).encode())
                [reply] = await transport.take(pongs, 1)
                assert reply.payload == str(i).encode()
            await asyncio.wait_for(echoer, transport.timeout)


async def test_cancelled_reader_does_not_swallow_a_message(transport: Transport) -> None:
    async with transport.open() as bus, bus.subscribe(transport.t("c")) as sub:
        first = asyncio.create_task(anext(sub))
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await bus.publish(transport.t("c"), b"1")
        assert (await transport.take(sub, 1))[0].payload == b"1"


# --- metadata -------------------------------------------------------------------------


async def test_properties_response_topic_and_correlation_data_are_carried(
    transport: Transport,
) -> None:
    t = transport.t
    async with transport.open() as bus, transport.open() as requester:
        async with bus.subscribe(t("req/+")) as sub:
            properties = {"content-type": "application/json", "sender": "alice", "é": "ü"}
            await requester.publish(
                t("req/1"),
                b"{}",
                properties=properties,
                response_topic=t("resp/alice"),
                correlation_data=b"\x00\x01\xff",
            )
            await requester.publish(t("req/2"), bytearray(b"plain"))  # type: ignore[arg-type]
            first, second = await transport.take(sub, 2)
    assert dict(first.properties) == properties
    assert first.response_topic == t("resp/alice")
    assert first.correlation_data == b"\x00\x01\xff"
    assert second == Message(t("req/2"), b"plain")
    assert type(second.payload) is bytes
    with pytest.raises(TypeError):
        first.properties["sender"] = "mallory"  # type: ignore[index]


async def test_bad_input_is_refused_before_anything_is_sent(transport: Transport) -> None:
    async with transport.open() as bus, bus.subscribe(transport.t("#")) as sub:
        with pytest.raises(InvalidTopic, match="wildcard"):
            await bus.publish(transport.t("a/+"), b"x")
        with pytest.raises(InvalidTopic, match="empty"):
            await bus.publish("", b"x")
        with pytest.raises(InvalidTopic, match="response_topic"):
            await bus.publish(transport.t("a"), b"x", response_topic="r/#")
        with pytest.raises(TypeError, match="encode"):
            await bus.publish(transport.t("a"), "text")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="str to str"):
            await bus.publish(transport.t("a"), b"", properties={"n": 1})  # type: ignore[dict-item]
        with pytest.raises(InvalidTopic, match="'#' must be the last level"):
            bus.subscribe("a/#/b")
        assert await transport.nothing_more(sub)


# --- retained messages ----------------------------------------------------------------


async def test_retained_message_goes_to_later_subscribers(transport: Transport) -> None:
    t = transport.t
    async with transport.open() as bus:
        async with bus.subscribe(t("state/+")) as early:
            await bus.publish(t("state/a"), b"1", retain=True, properties={"v": "1"})
            [live] = await transport.take(early, 1)
        assert live.retain is False  # a live delivery, even of a retained publish
        async with transport.open() as late_bus, late_bus.subscribe(t("state/a")) as late:
            [stored] = await transport.take(late, 1)
            assert await transport.nothing_more(late)
        assert stored == Message(t("state/a"), b"1", retain=True, properties={"v": "1"})
        await bus.publish(t("state/a"), b"", retain=True)


async def test_retained_is_replaced_by_the_latest_and_cleared_by_empty(
    transport: Transport,
) -> None:
    t = transport.t
    async with transport.open() as bus:
        await bus.publish(t("s"), b"1", retain=True)
        await bus.publish(t("s"), b"2", retain=True)
        await bus.publish(t("s"), b"3")  # not retained: does not replace
        async with bus.subscribe(t("s")) as sub:
            assert [(m.payload, m.retain) for m in await transport.take(sub, 1)] == [(b"2", True)]
            await bus.publish(t("s"), b"", retain=True)
            [cleared] = await transport.take(sub, 1)
            assert cleared.payload == b"" and cleared.retain is False
        async with bus.subscribe(t("#")) as late:
            assert await transport.nothing_more(late)


async def test_retained_come_first_then_live_in_order(transport: Transport) -> None:
    t = transport.t
    async with transport.open() as bus:
        await bus.publish(t("p/a"), b"A", retain=True)
        await bus.publish(t("p/b"), b"B", retain=True)
        async with bus.subscribe(t("+/#")) as sub:
            await bus.publish(t("p/a"), b"A2")
            got = await transport.take(sub, 3)
            assert await transport.nothing_more(sub)
        for topic in ("p/a", "p/b"):
            await bus.publish(t(topic), b"", retain=True)
    assert sorted((m.topic, m.payload, m.retain) for m in got[:2]) == [
        (t("p/a"), b"A", True),
        (t("p/b"), b"B", True),
    ]
    assert (got[2].topic, got[2].payload, got[2].retain) == (t("p/a"), b"A2", False)


async def test_a_second_subscription_on_a_filter_gets_the_retained_too(
    transport: Transport,
) -> None:
    """Presence discovery must work for every subscriber, not only the first on a filter."""
    t = transport.t
    async with transport.open() as bus:
        await bus.publish(t("presence/alice"), b"online", retain=True)
        async with bus.subscribe(t("presence/+")) as first:
            assert [m.payload for m in await transport.take(first, 1)] == [b"online"]
            async with bus.subscribe(t("presence/+")) as second:
                [seen] = await transport.take(second, 1)
                assert (seen.payload, seen.retain) == (b"online", True)
                assert await transport.nothing_more(first)  # no replay to the first
        await bus.publish(t("presence/alice"), b"", retain=True)


# --- closing --------------------------------------------------------------------------


async def test_close_ends_iteration_after_queued_messages(transport: Transport) -> None:
    bus = transport.open()
    await bus.connect()
    async with bus.subscribe(transport.t("a")) as sub:
        await bus.publish(transport.t("a"), b"1")
        await bus.publish(transport.t("a"), b"2")
        while getattr(sub, "pending", 2) < 2:  # on a broker, let both arrive first
            await asyncio.sleep(0.01)
        await bus.close()
        assert [m.payload async for m in sub] == [b"1", b"2"]
        with pytest.raises(StopAsyncIteration):
            await anext(sub)


async def test_close_wakes_a_waiting_reader(transport: Transport) -> None:
    bus = transport.open()
    await bus.connect()
    async with bus.subscribe(transport.t("#")) as sub:
        reader = asyncio.create_task(_read_all(sub))
        await asyncio.sleep(0)
        await bus.close()
        assert await asyncio.wait_for(reader, transport.timeout) == []


async def _read_all(sub: Subscription) -> list[Message]:
    return [m async for m in sub]


async def test_closed_bus_refuses_publish_and_subscribe(transport: Transport) -> None:
    bus = transport.open()
    await bus.connect()
    pending = bus.subscribe(transport.t("late"))
    await bus.close()
    await bus.close()  # idempotent
    assert bus.closed
    with pytest.raises(BusClosed, match="cannot publish to"):
        await bus.publish(transport.t("a"), b"x")
    with pytest.raises(BusClosed, match="cannot subscribe to"):
        bus.subscribe(transport.t("a"))
    with pytest.raises(BusClosed, match="cannot subscribe to"):
        await pending.__aenter__()


async def test_subscription_must_be_entered_once(transport: Transport) -> None:
    async with transport.open() as bus:
        sub = bus.subscribe(transport.t("a"))
        with pytest.raises(RuntimeError, match="not active.*async with"):
            await anext(sub)
        async with sub:
            with pytest.raises(RuntimeError, match="already entered"):
                await sub.__aenter__()
        with pytest.raises(StopAsyncIteration):
            await anext(sub)


async def test_closing_one_client_leaves_the_others_working(transport: Transport) -> None:
    t = transport.t
    async with transport.open() as chair, chair.subscribe(t("out/+")) as outbox:
        async with transport.open() as delegate, delegate.subscribe(t("in")) as inbox:
            await delegate.publish(t("out/d"), b"bye")
            await chair.publish(t("in"), b"noted")
            assert [m.payload for m in await transport.take(inbox, 1)] == [b"noted"]
        assert delegate.closed and not chair.closed
        async with transport.open() as late:
            await late.publish(t("out/e"), b"hello")
        assert [m.payload for m in await transport.take(outbox, 2)] == [b"bye", b"hello"]

