"""The in-process bus: MQTT's semantics without a broker, for tests and single-process runs.

Why it is built the way it is:

* A `MemoryBus` is a client handle on a `_Broker` that holds the subscriptions and
  retained messages, as an MQTT connection is a client of a broker. `memory://`
  gets a private broker; every `memory://NAME` in the process shares one. Closing
  a handle ends only that handle's subscriptions, so a delegate leaving its
  `async with open_bus(url)` block does not shut the bus for the chair, just as
  one client disconnecting does not stop a broker.
* `publish` never suspends. It appends to each matching subscription's unbounded
  FIFO and returns, so a subscriber that publishes from inside its own `async for`
  loop can never deadlock against itself or a slow peer, and delivery order is
  exactly publish-call order (deterministic runs, reproducible logs). The flip
  side: a producer that publishes in a loop without ever awaiting anything else
  starves the event loop; give it an `await asyncio.sleep(0)` now and then.
* Routing is cached per topic name: the first publish to a topic validates it and
  computes which subscriptions match; later publishes to that topic are one dict
  lookup. Any subscribe or unsubscribe drops the cache. Filters are split once, on
  subscribe; nothing is parsed per message and there are no regular expressions.
* One event loop, one thread: like asyncio itself, it is not thread-safe.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import Final, Self

from accord.bus.base import (
    NO_PROPERTIES,
    Bus,
    BusClosed,
    Message,
    Subscription,
    _trusted_message,
)
from accord.bus.topics import (
    InvalidTopic,
    _filter_levels,
    _levels_match,
    _name_levels,
    validate_topic_filter,
)

__all__ = ["MemoryBus", "MemorySubscription", "named_memory_bus"]

_ROUTE_CACHE_LIMIT: Final = 8192
"""Topic names whose routes are remembered; past this the cache restarts (bounds memory)."""

_NEW, _ACTIVE, _DONE = 0, 1, 2


class _Broker:
    """What an MQTT broker holds: who subscribes to what, retained messages, traffic counts."""

    __slots__ = ("delivered", "exact", "name", "published", "retained", "routes", "wild")

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.exact: dict[str, list[MemorySubscription]] = {}  # filters without wildcards
        self.wild: list[MemorySubscription] = []
        self.routes: dict[str, tuple[MemorySubscription, ...]] = {}
        self.retained: dict[str, Message] = {}
        self.published = 0
        self.delivered = 0

    def route(self, topic: str) -> tuple[MemorySubscription, ...]:
        """Validate a topic name not seen since the last (un)subscribe; cache who gets it."""
        if type(topic) is not str:
            raise InvalidTopic(f"topic name must be a str, got {type(topic).__name__}: {topic!r}")
        levels = _name_levels(topic)  # raises InvalidTopic
        subs = list(self.exact.get(topic, ()))
        subs.extend(sub for sub in self.wild if _levels_match(sub._levels, levels))
        route = tuple(subs)
        if len(self.routes) >= _ROUTE_CACHE_LIMIT:
            self.routes.clear()
        self.routes[topic] = route
        return route

    def attach(self, sub: MemorySubscription) -> None:
        """Register and queue matching retained messages, with no await in between, so
        nothing published afterwards can overtake or miss them."""
        levels = sub._levels
        if "+" in levels or "#" in levels:
            self.wild.append(sub)
            retained = [
                m for t, m in self.retained.items() if _levels_match(levels, _name_levels(t))
            ]
        else:
            self.exact.setdefault(sub.topic_filter, []).append(sub)
            held = self.retained.get(sub.topic_filter)
            retained = [] if held is None else [held]
        self.routes.clear()
        sub._items.extend(retained)
        self.delivered += len(retained)

    def detach(self, sub: MemorySubscription) -> None:
        subs = self.exact.get(sub.topic_filter)
        if subs is not None and sub in subs:
            subs.remove(sub)
            if not subs:
                del self.exact[sub.topic_filter]
        elif sub in self.wild:
            self.wild.remove(sub)
        self.routes.clear()


_named: dict[str, _Broker] = {}


def named_memory_bus(name: str) -> MemoryBus:
    """A new handle on the process-wide bus called `name` (what `memory://NAME` gives).

    All handles of one name see the same subscriptions and retained messages. The
    named bus outlives its handles, as a broker outlives its clients, so retained
    state (e.g. presence) is still there for the next one to open it.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a named memory bus needs a non-empty str name, got {name!r}")
    broker = _named.get(name)
    if broker is None:
        broker = _named[name] = _Broker(name)
    return MemoryBus(_broker=broker)


class MemorySubscription(Subscription):
    """A filter plus a FIFO; the publisher appends to the FIFO directly.

    A bare deque plus waiter futures instead of `asyncio.Queue`: the queue's
    bookkeeping (maxsize checks, task counting, an Event per put) roughly doubles
    the cost of each delivery, and an unbounded FIFO with a wake-up is all this needs.
    Several tasks may read one subscription; each message goes to one of them.
    """

    __slots__ = ("_bus", "_ended", "_items", "_levels", "_state", "_waiters", "topic_filter")

    def __init__(self, bus: MemoryBus, topic_filter: str, levels: tuple[str, ...]) -> None:
        self.topic_filter = topic_filter
        self._bus = bus
        self._levels = levels
        self._items: deque[Message] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._state = _NEW
        self._ended = False  # the bus closed: drain what is queued, then stop

    def __repr__(self) -> str:
        state = ("new", "active", "done")[self._state]
        return f"<MemorySubscription {self.topic_filter!r} {state} pending={len(self._items)}>"

    @property
    def pending(self) -> int:
        """Messages queued and not yet taken (useful to spot a consumer falling behind)."""
        return len(self._items)

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_all(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _end(self) -> None:
        """Called by the bus on close: readers drain what is queued, then stop."""
        self._ended = True
        self._wake_all()

    async def __aenter__(self) -> Self:
        if self._state != _NEW:
            raise RuntimeError(
                f"subscription to {self.topic_filter!r} was already entered; "
                "call bus.subscribe() again for a new one"
            )
        self._bus._attach(self)
        self._state = _ACTIVE
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state == _ACTIVE:
            self._bus._detach(self)
        self._state = _DONE
        self._items.clear()
        self._wake_all()  # a reader in another task must not wait forever

    async def __anext__(self) -> Message:
        if self._state != _ACTIVE:
            if self._state == _NEW:
                raise RuntimeError(
                    f"subscription to {self.topic_filter!r} is not active; "
                    "enter it with 'async with bus.subscribe(...)' before iterating"
                )
            raise StopAsyncIteration
        items = self._items
        while not items:
            if self._ended or self._state != _ACTIVE:
                raise StopAsyncIteration
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # Woken and cancelled at once: hand the wake-up to the next reader,
                # or a queued message could sit there with a reader asleep.
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                if items:
                    self._wake_one()
                raise
        return items.popleft()


class MemoryBus(Bus):
    """An in-process bus handle. Create one directly, or through `open_bus("memory://[NAME]")`.

    `MemoryBus()` has a private broker nobody else can reach; `named_memory_bus(name)`
    handles share one. The counters and `retained_topics` describe the whole broker
    (all handles): `published` counts accepted publish calls, `delivered` counts
    messages put on subscription queues (retained ones on subscribe included), so
    one publish that three subscriptions match adds three.
    """

    def __init__(self, *, _broker: _Broker | None = None) -> None:
        self._broker = _Broker(None) if _broker is None else _broker
        self._closed = False
        self._subscriptions: dict[MemorySubscription, None] = {}  # ordered set

    def __repr__(self) -> str:
        label = f"memory://{self.name}" if self.name else "memory://"
        state = "closed" if self._closed else "open"
        return f"<MemoryBus {label} {state} subscriptions={len(self._subscriptions)}>"

    @property
    def name(self) -> str | None:
        """The shared bus's name, or None for a private one."""
        return self._broker.name

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def published(self) -> int:
        """Publish calls accepted so far, on any handle of this bus."""
        return self._broker.published

    @property
    def delivered(self) -> int:
        """Messages handed to subscription queues so far (one per matching subscription)."""
        return self._broker.delivered

    @property
    def subscription_count(self) -> int:
        """Subscriptions currently active through this handle."""
        return len(self._subscriptions)

    @property
    def retained_topics(self) -> frozenset[str]:
        """Topics that currently hold a retained message."""
        return frozenset(self._broker.retained)

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        properties: Mapping[str, str] | None = None,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
    ) -> None:
        if self._closed:
            raise BusClosed(f"cannot publish to {topic!r}: {self!r} is closed")
        broker = self._broker
        subs = broker.routes.get(topic)
        if subs is None:
            subs = broker.route(topic)  # validates the topic name
        if response_topic is not None:
            _check_response_topic(response_topic)
        if (
            properties is None
            and type(payload) is bytes
            and (correlation_data is None or type(correlation_data) is bytes)
        ):
            message = _trusted_message(
                topic, payload, False, NO_PROPERTIES, response_topic, correlation_data
            )
        else:  # the checked constructor converts and freezes what needs it
            message = Message(
                topic,
                payload,
                False,
                NO_PROPERTIES if properties is None else properties,
                response_topic,
                correlation_data,
            )
        broker.published += 1
        for sub in subs:
            sub._items.append(message)
            if sub._waiters:
                sub._wake_one()
        broker.delivered += len(subs)
        if retain:
            if message.payload:
                broker.retained[topic] = _trusted_message(
                    topic,
                    message.payload,
                    True,
                    message.properties,
                    response_topic,
                    message.correlation_data,
                )
            else:
                # MQTT: a zero-byte retained publish is delivered normally and deletes
                # the topic's retained message.
                broker.retained.pop(topic, None)

    def subscribe(self, topic_filter: str) -> MemorySubscription:
        if self._closed:
            raise BusClosed(f"cannot subscribe to {topic_filter!r}: {self!r} is closed")
        levels = _filter_levels(validate_topic_filter(topic_filter))
        return MemorySubscription(self, topic_filter, levels)

    def _attach(self, sub: MemorySubscription) -> None:
        if self._closed:
            raise BusClosed(f"cannot subscribe to {sub.topic_filter!r}: {self!r} is closed")
        self._broker.attach(sub)
        self._subscriptions[sub] = None

    def _detach(self, sub: MemorySubscription) -> None:
        if sub in self._subscriptions:
            del self._subscriptions[sub]
            self._broker.detach(sub)

    async def close(self) -> None:
        """End this handle's subscriptions (after what they hold) and refuse further use.

        Other handles of a named bus, and its retained messages, are unaffected.
        """
        if self._closed:
            return
        self._closed = True
        subs = list(self._subscriptions)
        self._subscriptions.clear()
        for sub in subs:
            self._broker.detach(sub)
            sub._end()


def _check_response_topic(value: object) -> None:
    """A response topic is published to later, so it obeys topic-name rules (no wildcards)."""
    if type(value) is not str:
        raise InvalidTopic(
            f"response_topic must be a str or None, got {type(value).__name__}: {value!r}"
        )
    try:
        _name_levels(value)
    except InvalidTopic as exc:
        raise InvalidTopic(f"response_topic: {exc}") from None
