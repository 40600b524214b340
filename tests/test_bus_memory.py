"""The bus interface and its in-process transport.

The matching and validation tables follow MQTT v5 section 4.7 (same as 3.1.1), so
that these tests also describe what the MQTT transport must do.
"""

from __future__ import annotations

import asyncio
import itertools
import re

import pytest

from accord.bus import (
    Bus,
    BusClosed,
    InvalidTopic,
    MemoryBus,
    Message,
    Subscription,
    broadcast_topic,
    chair_topic,
    delegate_inbox,
    delegate_outbox,
    open_bus,
    outboxes_filter,
    presence_filter,
    presence_topic,
    session_filter,
    session_root,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)

_names = itertools.count()


def unique_name() -> str:
    """Named buses are process-wide; each test gets its own name so tests stay independent."""
    return f"test-bus-{next(_names)}"


async def take(sub: Subscription, n: int, timeout: float = 1.0) -> list[Message]:
    """The next `n` messages, failing instead of hanging if they never come."""

    async def collect() -> list[Message]:
        return [await anext(sub) for _ in range(n)]

    return await asyncio.wait_for(collect(), timeout)


async def nothing_more(sub: Subscription) -> bool:
    """True if no further message is waiting (after letting other tasks run)."""
    await asyncio.sleep(0)
    try:
        await asyncio.wait_for(anext(sub), 0.01)
    except TimeoutError:
        return True
    return False


# --- topic matching -------------------------------------------------------------------

MATCHES = [
    # MQTT 4.7.1.2 multi-level wildcard
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/tennis/player1/#", "sport/tennis/player2", False),
    ("sport/#", "sport", True),
    ("#", "sport", True),
    ("#", "sport/tennis/player1", True),
    ("#", "/", True),
    ("#", "/finance", True),
    # MQTT 4.7.1.3 single-level wildcard
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player2", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+", "sport", True),
    ("+", "/finance", False),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+/tennis/#", "sport/tennis", True),
    ("+/tennis/#", "sport/tennis/player1/ranking", True),
    ("+/tennis/#", "sport/golf", False),
    ("+/#", "sport", True),
    ("a/+/b", "a//b", True),
    # MQTT 4.7.2 topics beginning with $
    ("#", "$SYS", False),
    ("#", "$SYS/x", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("+", "$SYS", False),
    ("$SYS/#", "$SYS/monitor/Clients", True),
    ("$SYS/#", "$SYS", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("$SYS", "$SYS", True),
    ("a/+", "a/$b", True),  # only the first level is special
    # exact, case-sensitive, levels are significant
    ("accord/v1/s", "accord/v1/s", True),
    ("ACCOUNTS", "Accounts", False),
    ("a/b", "a/b/", False),
    ("a/b/", "a/b", False),
    ("a/b", "a", False),
    ("a b/+", "a b/c", True),
    ("/", "/", True),
]


@pytest.mark.parametrize(("topic_filter", "name", "expected"), MATCHES)
def test_topic_matches(topic_filter: str, name: str, expected: bool) -> None:
    assert topic_matches(topic_filter, name) is expected


@pytest.mark.parametrize(("topic_filter", "name", "expected"), MATCHES)
async def test_bus_routes_like_topic_matches(topic_filter: str, name: str, expected: bool) -> None:
    async with MemoryBus() as bus, bus.subscribe(topic_filter) as sub:
        await bus.publish(name, b"x")
        assert bus.delivered == int(expected)
        if expected:
            assert (await take(sub, 1))[0].topic == name


@pytest.mark.parametrize(
    ("topic_filter", "problem"),
    [
        ("", "empty"),
        ("sport/tennis#", "'#' must occupy a whole level"),
        ("sport/tennis/#/ranking", "'#' must be the last level"),
        ("#/a", "'#' must be the last level"),
        ("##", "'#' must occupy a whole level"),
        ("sport+", "'+' must occupy a whole level"),
        ("a/+b/c", "'+' must occupy a whole level"),
        ("a/b\0", "NUL"),
        ("$share/group/a/b", "shared subscriptions"),
        ("a" * 65536, "65535"),
    ],
)
def test_invalid_filters(topic_filter: str, problem: str) -> None:
    with pytest.raises(InvalidTopic, match=re.escape(problem)) as info:
        validate_topic_filter(topic_filter)
    assert repr(topic_filter[:20]).rstrip("'") in str(info.value)  # names the filter
    with pytest.raises(InvalidTopic):
        MemoryBus().subscribe(topic_filter)


@pytest.mark.parametrize(
    "topic_filter", ["#", "+", "+/+", "/", "a/#", "+/b/#", "a//b", "$SYS/#", "a" * 65535, "é/+"]
)
def test_valid_filters(topic_filter: str) -> None:
    assert validate_topic_filter(topic_filter) == topic_filter


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("a/+", "wildcard"),
        ("a/#", "wildcard"),
        ("+", "wildcard"),
        ("a/b+c", "wildcard"),
        ("a\0b", "NUL"),
        ("a" * 65536, "65536 bytes"),
        ("é" * 32768, "65536 bytes"),  # 32768 characters, but two UTF-8 bytes each
        ("a/\ud800", "UTF-8"),
    ],
)
async def test_invalid_names(name: str, problem: str) -> None:
    with pytest.raises(InvalidTopic, match=problem) as info:
        validate_topic_name(name)
    assert repr(name[:20]).rstrip("'") in str(info.value)
    async with MemoryBus() as bus:
        with pytest.raises(InvalidTopic, match=problem):
            await bus.publish(name, b"x")
        with pytest.raises(InvalidTopic, match="response_topic"):
            await bus.publish("ok", b"x", response_topic=name)
        assert bus.published == 0


@pytest.mark.parametrize("name", ["a", "/", "a//b", "$SYS/x", "a b", "a" * 65535, "é" * 32767])
def test_valid_names(name: str) -> None:
    assert validate_topic_name(name) == name


def test_non_str_topics_are_invalid() -> None:
    with pytest.raises(InvalidTopic, match="must be a str"):
        validate_topic_name(b"a/b")  # type: ignore[arg-type]
    with pytest.raises(InvalidTopic, match="must be a str"):
        validate_topic_filter(["a"])  # type: ignore[arg-type]
    with pytest.raises(InvalidTopic, match="must be a str"):
        topic_matches("#", None)  # type: ignore[arg-type]


def test_invalid_topic_is_a_value_error() -> None:
    assert issubclass(InvalidTopic, ValueError)


# --- session layout -------------------------------------------------------------------


def test_layout() -> None:
    assert session_root("s1") == "accord/v1/s1"
    assert session_filter("s1") == "accord/v1/s1/#"
    assert chair_topic("s1", "status") == "accord/v1/s1/chair/status"
    assert chair_topic("s1", "round/3") == "accord/v1/s1/chair/round/3"
    assert broadcast_topic("s1") == "accord/v1/s1/broadcast"
    assert delegate_inbox("s1", "alice") == "accord/v1/s1/delegates/alice/inbox"
    assert delegate_outbox("s1", "alice") == "accord/v1/s1/delegates/alice/outbox"
    assert presence_topic("s1", "alice") == "accord/v1/s1/presence/alice"
    assert outboxes_filter("s1") == "accord/v1/s1/delegates/+/outbox"
    assert presence_filter("s1") == "accord/v1/s1/presence/+"


def test_layout_filters_select_the_right_topics() -> None:
    s = "s1"
    outboxes = outboxes_filter(s)
    assert topic_matches(outboxes, delegate_outbox(s, "alice"))
    assert not topic_matches(outboxes, delegate_inbox(s, "alice"))
    assert not topic_matches(outboxes, delegate_outbox("s2", "alice"))
    assert topic_matches(presence_filter(s), presence_topic(s, "bob"))
    assert not topic_matches(presence_filter(s), broadcast_topic(s))
    for topic in (
        chair_topic(s, "status"),
        broadcast_topic(s),
        delegate_inbox(s, "a"),
        delegate_outbox(s, "a"),
        presence_topic(s, "a"),
    ):
        assert topic.startswith(session_root(s) + "/")
        assert topic_matches(session_filter(s), topic)
        assert not topic_matches(session_filter("s"), topic)  # no prefix leak between ids
        validate_topic_name(topic)


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "a+", "x#", "a\0"])
def test_layout_rejects_ids_that_are_not_one_level(bad: str) -> None:
    with pytest.raises(InvalidTopic, match="cannot be a topic level|non-empty"):
        session_root(bad)
    with pytest.raises(InvalidTopic, match="delegate id"):
        delegate_inbox("s", bad)
    with pytest.raises(InvalidTopic, match="delegate id"):
        delegate_outbox("s", bad)
    with pytest.raises(InvalidTopic, match="delegate id"):
        presence_topic("s", bad)


@pytest.mark.parametrize("bad", ["", "a//b", "/a", "a/", "a/+", "#"])
def test_chair_topic_rejects_bad_parts(bad: str) -> None:
    with pytest.raises(InvalidTopic, match="chair topic"):
        chair_topic("s", bad)


# --- delivery and ordering ------------------------------------------------------------


async def test_publish_and_receive() -> None:
    async with MemoryBus() as bus, bus.subscribe("a/b") as sub:
        await bus.publish("a/b", b"hello")
        [message] = await take(sub, 1)
    assert message == Message("a/b", b"hello")
    assert message.retain is False
    assert message.properties == {}
    assert message.response_topic is None
    assert message.correlation_data is None


async def test_no_delivery_without_a_match() -> None:
    async with MemoryBus() as bus, bus.subscribe("a/+") as sub:
        await bus.publish("b/a", b"x")
        await bus.publish("a/b/c", b"x")
        assert bus.published == 2
        assert bus.delivered == 0
        assert await nothing_more(sub)


async def test_order_is_publish_order_across_topics() -> None:
    async with (
        MemoryBus() as bus,
        bus.subscribe("t/#") as everything,
        bus.subscribe("t/a") as only_a,
    ):
        sent = [(f"t/{'ab'[i % 2]}", str(i).encode()) for i in range(200)]
        for topic, payload in sent:
            await bus.publish(topic, payload)
        got = await take(everything, 200)
        got_a = await take(only_a, 100)
    assert [(m.topic, m.payload) for m in got] == sent
    assert [(m.topic, m.payload) for m in got_a] == [s for s in sent if s[0] == "t/a"]


async def test_every_matching_subscription_gets_its_own_copy() -> None:
    async with MemoryBus() as bus:
        filters = ["x/y", "x/y", "x/+", "+/y", "#", "x/#"]
        subs = [bus.subscribe(f) for f in filters]
        for sub in subs:
            await sub.__aenter__()
        await bus.publish("x/y", b"1")
        await bus.publish("x/y", b"2")
        for sub in subs:
            assert [m.payload for m in await take(sub, 2)] == [b"1", b"2"]
            assert await nothing_more(sub)
        assert bus.published == 2
        assert bus.delivered == 2 * len(filters)
        assert bus.subscription_count == len(filters)
        for sub in subs:
            await sub.__aexit__(None, None, None)
        assert bus.subscription_count == 0


async def test_subscription_is_live_once_entered() -> None:
    """A message published right after entering, with no yield in between, is not lost."""
    async with MemoryBus() as bus:
        await bus.publish("a", b"before")  # nobody listening: gone, as in MQTT
        async with bus.subscribe("a") as sub:
            await bus.publish("a", b"after")
            assert [m.payload for m in await take(sub, 1)] == [b"after"]


async def test_routes_follow_subscribe_and_unsubscribe() -> None:
    """Publishing caches who gets a topic; the cache must not outlive a (un)subscribe."""
    async with MemoryBus() as bus:
        async with bus.subscribe("r/+") as first:
            await bus.publish("r/1", b"a")
            async with bus.subscribe("r/1") as second:
                await bus.publish("r/1", b"b")
                assert [m.payload for m in await take(second, 1)] == [b"b"]
            await bus.publish("r/1", b"c")
            assert [m.payload for m in await take(first, 3)] == [b"a", b"b", b"c"]
        await bus.publish("r/1", b"d")
        assert bus.delivered == 4


async def test_waiting_reader_is_woken() -> None:
    async with MemoryBus() as bus, bus.subscribe("w") as sub:
        reader = asyncio.create_task(take(sub, 3))
        await asyncio.sleep(0)
        for i in range(3):
            await bus.publish("w", bytes([i]))
            await asyncio.sleep(0)
        assert [m.payload for m in await reader] == [b"\0", b"\1", b"\2"]


async def test_subscriber_can_publish_from_its_own_loop() -> None:
    """Ping-pong over the bus: each side publishes while handling; nothing deadlocks."""
    async with MemoryBus() as bus, bus.subscribe("ping") as pings, bus.subscribe("pong") as pongs:

        async def echo() -> None:
            async for message in pings:
                await bus.publish("pong", message.payload)
                await bus.publish("ping/seen", b"")  # and to a topic nobody reads
                if message.payload == b"99":
                    return

        echoer = asyncio.create_task(echo())
        for i in range(100):
            await bus.publish("ping", str(i).encode())
            [reply] = await take(pongs, 1)
            assert reply.payload == str(i).encode()
        await asyncio.wait_for(echoer, 1)


async def test_publisher_that_also_subscribes_to_its_topic_gets_its_own_message() -> None:
    async with MemoryBus() as bus, bus.subscribe("self/#") as sub:
        for i in range(3):
            await bus.publish(f"self/{i}", b"x")
        # Publishing from inside the loop while reading must neither block nor reorder.
        seen = []
        async for message in sub:
            seen.append(message.topic)
            if message.topic == "self/0":
                await bus.publish("self/3", b"x")
            if len(seen) == 4:
                break
    assert seen == ["self/0", "self/1", "self/2", "self/3"]


async def test_cancelled_reader_does_not_swallow_a_message() -> None:
    async with MemoryBus() as bus, bus.subscribe("c") as sub:
        first = asyncio.create_task(anext(sub))
        second = asyncio.create_task(anext(sub))
        await asyncio.sleep(0)  # both are waiting
        await bus.publish("c", b"1")
        first.cancel()  # woken and cancelled in the same step
        with pytest.raises(asyncio.CancelledError):
            await first
        assert (await asyncio.wait_for(second, 1)).payload == b"1"


# --- metadata -------------------------------------------------------------------------


async def test_properties_response_topic_and_correlation_data_are_carried() -> None:
    async with MemoryBus() as bus, bus.subscribe("req/+") as sub:
        properties = {"content-type": "application/json", "sender": "alice"}
        await bus.publish(
            "req/1",
            b"{}",
            properties=properties,
            response_topic="resp/alice",
            correlation_data=b"\x00\x01",
        )
        properties["sender"] = "mallory"  # the caller's dict is copied, not shared
        [message] = await take(sub, 1)
    assert dict(message.properties) == {"content-type": "application/json", "sender": "alice"}
    assert message.response_topic == "resp/alice"
    assert message.correlation_data == b"\x00\x01"
    with pytest.raises(TypeError):
        message.properties["sender"] = "mallory"  # type: ignore[index]


async def test_bytes_like_payloads_are_copied_to_bytes() -> None:
    async with MemoryBus() as bus, bus.subscribe("b") as sub:
        buffer = bytearray(b"abc")
        await bus.publish("b", buffer, correlation_data=bytearray(b"id"))  # type: ignore[arg-type]
        buffer[0] = ord("X")
        [message] = await take(sub, 1)
    assert message.payload == b"abc" and type(message.payload) is bytes
    assert message.correlation_data == b"id" and type(message.correlation_data) is bytes


async def test_bad_metadata_is_refused_before_delivery() -> None:
    async with MemoryBus() as bus, bus.subscribe("#") as sub:
        with pytest.raises(TypeError, match="encode"):
            await bus.publish("t", "text")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="str to str"):
            await bus.publish("t", b"", properties={"n": 1})  # type: ignore[dict-item]
        with pytest.raises(TypeError, match="correlation_data"):
            await bus.publish("t", b"", correlation_data="id")  # type: ignore[arg-type]
        with pytest.raises(InvalidTopic, match="response_topic"):
            await bus.publish("t", b"", response_topic="r/+")
        assert bus.published == 0 and bus.delivered == 0
        assert await nothing_more(sub)


def test_message_is_frozen_and_hashable() -> None:
    message = Message("t", b"p", properties={"k": "v"}, correlation_data=b"c")
    with pytest.raises(AttributeError):
        message.topic = "u"  # type: ignore[misc]
    assert message == Message("t", b"p", properties={"k": "v"}, correlation_data=b"c")
    assert message != Message("t", b"p", properties={"k": "w"}, correlation_data=b"c")
    assert len({message, Message("t", b"p", properties={"k": "v"}, correlation_data=b"c")}) == 1
    assert Message("t", b"p").properties == {}


# --- retained messages ----------------------------------------------------------------


async def test_retained_message_goes_to_later_subscribers() -> None:
    async with MemoryBus() as bus:
        async with bus.subscribe("state/+") as early:
            await bus.publish("state/a", b"1", retain=True, properties={"v": "1"})
            [live] = await take(early, 1)
        assert live.retain is False  # live delivery: MQTT v5 default, Retain As Published off
        async with bus.subscribe("state/a") as late:
            [stored] = await take(late, 1)
        assert stored == Message("state/a", b"1", retain=True, properties={"v": "1"})
        assert bus.retained_topics == {"state/a"}


async def test_retained_is_replaced_by_the_latest() -> None:
    async with MemoryBus() as bus:
        await bus.publish("s", b"1", retain=True)
        await bus.publish("s", b"2", retain=True)
        await bus.publish("s", b"3")  # not retained: does not replace
        async with bus.subscribe("s") as sub:
            assert [m.payload for m in await take(sub, 1)] == [b"2"]
            assert await nothing_more(sub)


async def test_empty_retained_payload_clears_and_is_still_delivered() -> None:
    async with MemoryBus() as bus:
        await bus.publish("s/x", b"here", retain=True)
        async with bus.subscribe("s/x") as current:
            assert (await take(current, 1))[0].payload == b"here"
            await bus.publish("s/x", b"", retain=True)
            [cleared] = await take(current, 1)
            assert cleared.payload == b"" and cleared.retain is False
        assert bus.retained_topics == frozenset()
        async with bus.subscribe("s/#") as late:
            assert await nothing_more(late)
        await bus.publish("s/none", b"", retain=True)  # clearing nothing is fine
        assert bus.retained_topics == frozenset()


async def test_retained_come_first_then_live_in_order() -> None:
    async with MemoryBus() as bus:
        await bus.publish("p/a", b"A", retain=True)
        await bus.publish("p/b", b"B", retain=True)
        await bus.publish("q/c", b"C", retain=True)
        await bus.publish("$SYS/p", b"S", retain=True)
        async with bus.subscribe("+/#") as sub:
            await bus.publish("p/a", b"A2")
            got = await take(sub, 4)
            assert await nothing_more(sub)  # $SYS/p is not matched by a wildcard filter
    assert [(m.topic, m.payload, m.retain) for m in got] == [
        ("p/a", b"A", True),
        ("p/b", b"B", True),
        ("q/c", b"C", True),
        ("p/a", b"A2", False),
    ]
    assert bus.delivered == 4


async def test_retained_for_session_presence() -> None:
    """A chair that starts late still learns who is present, via retained presence."""
    async with MemoryBus() as bus:
        for who in ("alice", "bob"):
            await bus.publish(presence_topic("s", who), b"online", retain=True)
        await bus.publish(presence_topic("s", "bob"), b"", retain=True)  # bob left
        async with bus.subscribe(presence_filter("s")) as chair:
            [present] = await take(chair, 1)
            assert await nothing_more(chair)
    assert present.topic == presence_topic("s", "alice")


# --- named buses and URLs -------------------------------------------------------------


async def test_named_bus_is_shared() -> None:
    name = unique_name()
    one = open_bus(f"memory://{name}")
    two = open_bus(f"memory://{name}")
    other = open_bus(f"memory://{unique_name()}")
    assert isinstance(one, MemoryBus) and isinstance(one, Bus)
    assert isinstance(two, MemoryBus) and isinstance(other, MemoryBus)
    assert one.name == two.name == name
    async with one.subscribe("x") as sub:
        await two.publish("x", b"via two")
        await other.publish("x", b"elsewhere")
        assert [m.payload for m in await take(sub, 1)] == [b"via two"]
        assert await nothing_more(sub)
    assert one.published == two.published == 1  # counters describe the shared bus
    assert other.published == 1 and other.delivered == 0
    await one.close()
    await two.close()
    await other.close()


async def test_named_bus_keeps_retained_between_users() -> None:
    """Like a broker outliving its clients: presence published by one is there for the next."""
    name = unique_name()
    async with open_bus(f"memory://{name}") as first:
        await first.publish("cfg", b"v", retain=True)
    async with open_bus(f"memory://{name}") as second, second.subscribe("cfg") as sub:
        assert (await take(sub, 1))[0].payload == b"v"


async def test_closing_one_handle_leaves_the_others_working() -> None:
    """A delegate leaving its `async with open_bus(url)` must not shut the bus for the chair."""
    url = f"memory://{unique_name()}"
    chair = open_bus(url)
    assert isinstance(chair, MemoryBus)
    async with chair, chair.subscribe("out/+") as outbox:
        async with open_bus(url) as delegate, delegate.subscribe("in") as inbox:
            await delegate.publish("out/d", b"bye")
            await chair.publish("in", b"noted")
            assert [m.payload for m in await take(inbox, 1)] == [b"noted"]
        assert delegate.closed and not chair.closed
        with pytest.raises(StopAsyncIteration):
            await anext(inbox)
        async with open_bus(url) as late:
            await late.publish("out/e", b"hello")
            await chair.publish("in", b"nobody listens")  # the closed handle's sub is gone
        assert [m.payload for m in await take(outbox, 2)] == [b"bye", b"hello"]
        assert chair.delivered == 3


async def test_anonymous_memory_url_gives_a_private_bus() -> None:
    async with open_bus("memory://") as a, open_bus("memory://") as b:
        assert isinstance(a, MemoryBus) and a.name is None
        await a.publish("t", b"retained on a", retain=True)
        async with b.subscribe("#") as sub:
            await a.publish("t", b"live on a")
            assert await nothing_more(sub)
        assert isinstance(b, MemoryBus) and b.published == 0


def test_mqtt_urls_open_the_mqtt_transport() -> None:
    from accord.bus.mqtt import MqttBus

    for url in ("mqtt://localhost:1883", "mqtts://broker.example:8883"):
        assert isinstance(open_bus(url), MqttBus)  # not connected until entered


@pytest.mark.parametrize(
    "url",
    [
        "http://x",
        "redis://localhost",
        "",
        "localhost:1883",
        "memory:x",
        "memory:///p",
        "memory://n/p",
        "memory://n?q=1",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError) as info:
        open_bus(url)
    message = str(info.value)
    assert repr(url) in message
    assert "memory://" in message


# --- closing --------------------------------------------------------------------------


async def test_close_ends_iteration_after_queued_messages() -> None:
    bus = MemoryBus()
    async with bus.subscribe("a") as sub:
        await bus.publish("a", b"1")
        await bus.publish("a", b"2")
        await bus.close()
        assert [m.payload async for m in sub] == [b"1", b"2"]
        with pytest.raises(StopAsyncIteration):
            await anext(sub)  # and stays ended


async def test_close_wakes_a_waiting_reader() -> None:
    bus = MemoryBus()
    async with bus.subscribe("#") as sub:

        async def read_all() -> list[Message]:
            return [m async for m in sub]

        reader = asyncio.create_task(read_all())
        await asyncio.sleep(0)
        await bus.close()
        assert await asyncio.wait_for(reader, 1) == []


async def test_closed_bus_refuses_publish_and_subscribe() -> None:
    bus = MemoryBus()
    pending = bus.subscribe("late")
    await bus.close()
    await bus.close()  # idempotent
    assert bus.closed
    with pytest.raises(BusClosed, match="cannot publish to 'a'.*closed"):
        await bus.publish("a", b"x")
    with pytest.raises(BusClosed, match="cannot subscribe to 'a'"):
        bus.subscribe("a")
    with pytest.raises(BusClosed, match="cannot subscribe to 'late'"):
        await pending.__aenter__()
    assert issubclass(BusClosed, RuntimeError)


async def test_async_with_closes_the_bus() -> None:
    async with open_bus("memory://") as bus, bus.subscribe("a") as sub:
        pass
    assert bus.closed
    with pytest.raises(StopAsyncIteration):
        await anext(sub)


async def test_leaving_a_subscription_stops_it_and_its_reader() -> None:
    async with MemoryBus() as bus:
        sub = bus.subscribe("a")
        async with sub:
            await bus.publish("a", b"queued, then dropped")
            reader = asyncio.create_task(anext(sub))
            await asyncio.sleep(0)
            assert reader.done()  # took the queued one
            reader = asyncio.create_task(anext(sub))
            await asyncio.sleep(0)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reader, 1)
        await bus.publish("a", b"after")
        assert bus.subscription_count == 0
        assert bus.delivered == 1
        with pytest.raises(StopAsyncIteration):
            await anext(sub)


async def test_subscription_must_be_entered_once() -> None:
    async with MemoryBus() as bus:
        sub = bus.subscribe("a")
        with pytest.raises(RuntimeError, match="not active.*async with"):
            await anext(sub)
        async with sub:
            with pytest.raises(RuntimeError, match="already entered"):
                await sub.__aenter__()
        with pytest.raises(RuntimeError, match="already entered"):
            await sub.__aenter__()


async def test_counters() -> None:
    async with MemoryBus() as bus:
        await bus.publish("k", b"r", retain=True)
        async with bus.subscribe("k") as a, bus.subscribe("+") as b:
            await bus.publish("k", b"1")
            await bus.publish("other/level", b"2")
            assert bus.published == 3
            assert bus.delivered == 2 + 2  # two retained on subscribe, two live
            assert a.pending == 2 and b.pending == 2
            await take(a, 2)
            assert a.pending == 0
