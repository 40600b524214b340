"""The MQTT v5 transport: the `Bus` interface over a broker (Mosquitto or any v5 broker).

What is guaranteed, and why it is built the way it is:

* **At least once (QoS 1), so consumers dedupe.** Publishes and subscriptions are
  QoS 1. `publish` returns after the broker's PUBACK; if the connection drops before
  that, the message is sent again on the next connection, so a subscriber may see it
  twice. Consumers must dedupe, in Accord by the signed envelope's `(actor, seq)`.
  A message is lost only if the broker loses it or the session: a broker restarted
  without persistence (or killed before saving it) forgets sessions, and whatever is
  published between its restart and our re-subscribe is not kept for us; a session
  also expires `session_expiry_s` after its client went away. A message already
  handed to a local subscription (acknowledged to the broker) is lost if this
  process dies before the consumer reads it, as with any MQTT client.
* **Order.** Sequential publishes from one bus arrive in order at each subscription.
  Concurrent publishes that are interrupted by a reconnect are re-sent in the order
  they wake, which may differ from call order; never rely on order across publishers.
* **One connection, many subscriptions.** One aiomqtt client at a time per bus; a
  background task reads `client.messages` and hands each message to every local
  subscription whose filter matches, each with its own FIFO (like `memory.py`).
  Every broker subscription carries an MQTT v5 *subscription identifier* derived
  from its filter, and the broker stamps each delivery with the identifiers it was
  sent for; so overlapping filters (`a/+` and `a/#`) each get a message exactly once,
  as on the memory bus, instead of each local subscription seeing every copy.
* **Persistent session.** The bus connects with a stable client id, Clean Start off
  and a Session Expiry Interval, so the broker keeps its subscriptions and queues
  QoS 1 messages while it is away. After a reconnect nothing queued is lost. Messages
  the broker delivers for subscriptions made by an *earlier* bus with the same client
  id (after a process restart) are held as *unclaimed* until a subscription to that
  filter is entered, which then gets them first, in order. Leaving a subscription
  (its `async with`) unsubscribes at the broker: you no longer want those messages.
  Closing the bus with a subscription still open keeps it at the broker, so a bus
  that comes back with the same `client_id` gets what was published meanwhile. A bus
  without an explicit client id gets a random one and asks the broker, on `close()`,
  to drop its session, so abandoned sessions do not pile up on the broker.
* **Reconnect.** If the connection drops, the bus reconnects with exponential backoff
  (`reconnect_min_s` .. `reconnect_max_s`, jittered) and re-subscribes with Retain
  Handling 1 (retained messages only where the broker had lost the subscription).
  Meanwhile `publish` and `subscribe` wait up to `timeout_s` for a connection, then
  raise `BusUnavailable` naming the broker. Iteration does not end on a drop.
* **Retained messages.** As on the memory bus: a new subscription first gets the
  retained messages that match (`retain=True`), live messages come with
  `retain=False` (Retain As Published off). A second local subscription on a filter
  already subscribed re-subscribes so that it, too, gets the retained messages; a
  subscription never gets the same retained message twice in a row for a topic.
* **Will (presence).** `will=Message(...)` is published by the broker if the
  connection dies without DISCONNECT (crash, network loss); `will.retain` makes it
  a retained publish, e.g. an empty retained payload on the presence topic clears
  presence. After a reconnect the will is armed again but presence is not
  re-announced by the bus: the application publishes it again if it needs to.
* **Latency.** TCP_NODELAY is set on the socket (`tcp_nodelay=True`): with Nagle's
  algorithm a QoS 1 round trip (PUBLISH, PUBACK) stalls ~40 ms on delayed ACKs.
  The number of unacknowledged publishes in flight is the broker's Receive Maximum
  (20 on a default Mosquitto), capped by `max_inflight`; more are queued client-side.
* **Throughput.** `publish` hands the message to paho at once and waits only for its
  own PUBACK, so concurrent publishes (a host's delegates answering a call together)
  are pipelined on the connection; it bypasses `aiomqtt.Client.publish`, whose per-call
  bookkeeping (a task, an Event, two scans of every pending call) made a burst of n
  publishes cost O(n^2). One caller publishing in a loop still pays one round trip per
  message, by design: `publish` returning means the broker has the message.

URLs (`open_bus`, `MqttBus.from_url`)::

    mqtt://[user[:password]@]host[:port][?client_id=ID&session_expiry=S&keepalive=S&timeout=S]
    mqtts://...[?ca=PATH]    TLS, verified against the system CAs or the CA file PATH

Default ports are 1883 (mqtt) and 8883 (mqtts).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import secrets
import socket
import ssl
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import aiomqtt
from paho.mqtt.client import MQTT_ERR_SUCCESS
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from accord.bus.base import NO_PROPERTIES, Bus, BusClosed, Message, Subscription, _trusted_message
from accord.bus.memory import _check_response_topic
from accord.bus.topics import (
    InvalidTopic,
    _filter_levels,
    _levels_match,
    _name_levels,
    validate_topic_filter,
)

__all__ = ["BusUnavailable", "MqttBus", "MqttSubscription", "parse_mqtt_url"]

log = logging.getLogger(__name__)


def _share_property_tables() -> None:
    """Make paho's `Properties(...)` cheap: share its lookup tables between instances.

    paho builds a `Properties` for every PUBLISH received with v5 properties (ours all
    carry a subscription identifier) and for every PUBACK, and its constructor rebuilds
    three tables each time (a dict of ~40 tuples, with a `list.index` per entry): in a
    1,000-delegate session that was a tenth of the chair's MQTT reading (py-spy). The
    tables are constants that paho only reads (checked for paho-mqtt 2.x: `types`,
    `names` and `properties` are never assigned to or mutated after `__init__`), so
    every instance can share one copy. Only these four attributes are set, exactly as
    the original constructor sets them; if a paho version sets anything else, or the
    tables differ by packet type, this leaves paho alone.
    """
    original = Properties.__init__
    if getattr(original, "_accord_shared_tables", False):
        return
    template = Properties(PacketTypes.PUBLISH)
    other = Properties(PacketTypes.PUBACK)
    if set(vars(template)) != {"packetType", "types", "names", "properties"} or any(
        getattr(template, name) != getattr(other, name) for name in ("types", "names", "properties")
    ):
        log.debug("paho's Properties is not as expected: its tables are left per instance")
        return
    types, names, properties = template.types, template.names, template.properties
    setattr_ = object.__setattr__

    def __init__(self: Properties, packetType: int) -> None:  # noqa: N803 - paho's name
        setattr_(self, "packetType", packetType)
        setattr_(self, "types", types)
        setattr_(self, "names", names)
        setattr_(self, "properties", properties)

    __init__._accord_shared_tables = True  # type: ignore[attr-defined]
    __init__.__doc__ = original.__doc__
    Properties.__init__ = __init__  # type: ignore[method-assign]


_share_property_tables()

T = TypeVar("T")

DEFAULT_PORTS: Final = {"mqtt": 1883, "mqtts": 8883}
_URL_OPTIONS: Final = ("client_id", "session_expiry", "keepalive", "timeout", "ca")
_MAX_SUBSCRIPTION_ID: Final = 268_435_455  # a Variable Byte Integer, MQTT v5 3.8.2.1.2
_RETAIN_ALWAYS, _RETAIN_IF_NEW = (
    SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE,
    SubscribeOptions.RETAIN_SEND_IF_NEW_SUB,
)
_NEW, _ACTIVE, _DONE = 0, 1, 2


class BusUnavailable(ConnectionError):
    """The broker cannot be reached, refused us, or did not answer in time.

    The message names the broker and what to check; a `ConnectionError`, so callers
    that already handle network failures handle this too.
    """


def subscription_id(topic_filter: str) -> int:
    """The MQTT v5 subscription identifier of a filter: stable across processes.

    Stable so that messages queued by the broker for a subscription made by an earlier
    process with the same client id can be matched to the filter they were sent for.
    Two filters sharing an id is harmless: delivery also checks the topic against the
    filter, so a collision can only cost a duplicate, never a wrong delivery.
    """
    return zlib.crc32(topic_filter.encode("utf-8")) % _MAX_SUBSCRIPTION_ID + 1


# --- URLs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MqttSettings:
    """Everything a URL can say about a broker connection (`parse_mqtt_url`)."""

    host: str
    port: int
    tls: bool = False
    ca: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    session_expiry_s: int | None = None
    keepalive_s: int | None = None
    timeout_s: float | None = None


def parse_mqtt_url(url: str) -> MqttSettings:
    """Split `mqtt[s]://[user[:pass]@]host[:port][?option=value...]`, with clear errors."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not url[len(parts.scheme) :].startswith("://"):
        raise ValueError(
            f"bus URL {url!r}: an MQTT URL is mqtt://host[:port] or mqtts://host[:port]"
        )
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError(
            f"bus URL {url!r}: an MQTT URL has no path or fragment "
            "(options go in the query, e.g. ?client_id=chair)"
        )
    if not parts.hostname:
        raise ValueError(f"bus URL {url!r} names no broker host (e.g. mqtt://127.0.0.1:1883)")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise ValueError(f"bus URL {url!r}: {exc}") from None
    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key not in _URL_OPTIONS:
            raise ValueError(
                f"bus URL {url!r}: unknown option {key!r}; known: {', '.join(_URL_OPTIONS)}"
            )
        if key in options:
            raise ValueError(f"bus URL {url!r}: option {key!r} is given twice")
        options[key] = value

    def number(key: str, kind: type[int] | type[float]) -> Any:
        if key not in options:
            return None
        try:
            value = kind(options[key])
        except ValueError:
            raise ValueError(
                f"bus URL {url!r}: option {key}={options[key]!r} must be a {kind.__name__}"
            ) from None
        if value < 0 or (kind is float and not math.isfinite(value)):
            raise ValueError(f"bus URL {url!r}: option {key}={options[key]!r} must be >= 0")
        return value

    if "ca" in options and scheme != "mqtts":
        raise ValueError(f"bus URL {url!r}: option 'ca' needs TLS; use mqtts://")
    client_id = options.get("client_id")
    if client_id == "":
        raise ValueError(f"bus URL {url!r}: client_id is empty")
    return MqttSettings(
        host=parts.hostname,
        port=port,
        tls=scheme == "mqtts",
        ca=options.get("ca") or None,
        username=None if parts.username is None else unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
        client_id=client_id,
        session_expiry_s=number("session_expiry", int),
        keepalive_s=number("keepalive", int),
        timeout_s=number("timeout", float),
    )


# --- subscriptions ----------------------------------------------------------------------


class _Filter:
    """One broker subscription and the local subscriptions that share it."""

    __slots__ = ("levels", "sub_id", "subs", "topic_filter")

    def __init__(self, topic_filter: str, levels: tuple[str, ...]) -> None:
        self.topic_filter = topic_filter
        self.levels = levels
        self.sub_id = subscription_id(topic_filter)
        self.subs: list[MqttSubscription] = []


class MqttSubscription(Subscription):
    """A filter plus a FIFO, fed by the bus's reader task (see `MemorySubscription`)."""

    __slots__ = ("_bus", "_ended", "_items", "_last_retained", "_levels", "_state", "_waiters")

    def __init__(self, bus: MqttBus, topic_filter: str, levels: tuple[str, ...]) -> None:
        self.topic_filter = topic_filter
        self._bus = bus
        self._levels = levels
        self._items: deque[Message] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._state = _NEW
        self._ended = False
        # The last retained message handed over per topic: a re-subscribe or a
        # reconnect that replays an unchanged retained message must not repeat it.
        self._last_retained: dict[str, Message] = {}

    def __repr__(self) -> str:
        state = ("new", "active", "done")[self._state]
        return f"<MqttSubscription {self.topic_filter!r} {state} pending={len(self._items)}>"

    @property
    def pending(self) -> int:
        """Messages queued and not yet taken (useful to spot a consumer falling behind)."""
        return len(self._items)

    def _put(self, message: Message) -> bool:
        if message.retain:
            if self._last_retained.get(message.topic) == message:
                return False
            self._last_retained[message.topic] = message
        self._items.append(message)
        if self._waiters:
            self._wake_one()
        return True

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
        self._state = _ACTIVE
        try:
            await self._bus._join(self)
        except BaseException:
            self._state = _DONE
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        was_active = self._state == _ACTIVE
        self._state = _DONE
        self._items.clear()
        self._wake_all()  # a reader in another task must not wait forever
        if was_active:
            await self._bus._leave(self)

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
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                if items:
                    self._wake_one()
                raise
        return items.popleft()


# --- connections ------------------------------------------------------------------------


class _Lost(Exception):
    """The connection an operation was sent on dropped before the broker answered."""


class _Connection:
    """One aiomqtt client, the future that resolves when its connection drops, and the
    operations (publish, subscribe, unsubscribe) waiting on it.

    `acks`: PUBACKs awaited, by packet id, resolved from paho's `on_publish` (wrapped
    in `MqttBus._open`)."""

    __slots__ = ("acks", "client", "lost", "pending")

    def __init__(
        self,
        client: aiomqtt.Client,
        lost: asyncio.Future[None],
        acks: dict[int, asyncio.Future[None]] | None = None,
    ) -> None:
        self.client = client
        self.lost = lost
        self.pending: set[asyncio.Task[Any]] = set()
        self.acks: dict[int, asyncio.Future[None]] = {} if acks is None else acks
        lost.add_done_callback(self._abort)

    def _abort(self, _: object) -> None:
        for task in list(self.pending):
            task.cancel()
        acks = list(self.acks.values())
        self.acks.clear()  # the same dict: paho's on_publish callback holds it
        for ack in acks:
            if not ack.done():
                ack.set_exception(_Lost())

    async def publish(
        self, topic: str, payload: bytes, retain: bool, properties: Properties | None, timeout_s: float
    ) -> None:
        """QoS 1 publish straight through paho, then wait for its PUBACK.

        Not through `aiomqtt.Client.publish`: per call, that wraps the wait in a task
        (`asyncio.wait_for` on an Event), scans every pending call twice (to check the
        packet id and to count them for a warning: O(outstanding) per publish, so a
        burst of n concurrent publishes costs O(n^2)), and takes a semaphore. Here a
        publish is one paho call and one future in a dict, so a delegate host's
        concurrent answers and the chair's messages pipeline on the connection (paho
        holds back more than the broker's Receive Maximum and sends them as PUBACKs
        come in). Raises `_Lost` if the connection drops first, `MqttError` on timeout.
        """
        if self.lost.done():
            raise _Lost
        paho = self.client._client  # noqa: SLF001
        info = paho.publish(topic, payload, 1, retain, properties)
        if info.rc != MQTT_ERR_SUCCESS:
            if self.lost.done() or not paho.is_connected():
                raise _Lost
            raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks[info.mid] = ack
        try:
            await asyncio.wait_for(ack, timeout_s)
        except TimeoutError:
            raise aiomqtt.MqttError(f"no PUBACK within {timeout_s:g} s") from None
        finally:
            if self.acks.get(info.mid) is ack:
                del self.acks[info.mid]

    async def run(self, operation: Coroutine[Any, Any, T]) -> T:
        """Await `operation`, raising `_Lost` as soon as the connection drops.

        aiomqtt waits for an acknowledgement until its timeout even after the socket
        is gone; cancelling what is pending when the drop is seen lets `publish` retry
        on the next connection at once. (One callback for all pending operations: an
        `asyncio.wait` per operation on the shared `lost` future costs O(n) each.)
        """
        if self.lost.done():
            operation.close()
            raise _Lost
        task = asyncio.ensure_future(operation)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self.lost.done() and (current is None or not current.cancelling()):
                raise _Lost from None  # cancelled by _abort, not by our caller
            raise
        except aiomqtt.MqttError:
            if self.lost.done() or not self.client._client.is_connected():  # noqa: SLF001
                raise _Lost from None
            raise


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _user_properties(properties: Mapping[str, str]) -> list[tuple[str, str]]:
    return list(properties.items())


# --- the bus ----------------------------------------------------------------------------


class MqttBus(Bus):
    """A bus over an MQTT v5 broker. Create it with `open_bus("mqtt://...")` or directly.

    `host`, `port`: the broker. `tls`: connect with TLS, verifying the broker against
    the system CAs or `ca` (a PEM file). `username`/`password`: broker credentials.
    `client_id`: give one to resume the broker session across processes (see the
    module docstring); without it a random id is used, stable for this bus's life.
    `will`: published by the broker if the connection dies without a DISCONNECT.
    `session_expiry_s`: how long the broker keeps the session (subscriptions and
    queued messages) while nobody is connected. `timeout_s`: how long an operation
    waits for a connection or an acknowledgement before `BusUnavailable`.
    `max_inflight`: cap on unacknowledged publishes on the wire (the broker's Receive
    Maximum applies too). `max_outstanding`: subscribe and unsubscribe operations
    handed to aiomqtt at once; more wait their turn, in call order, because aiomqtt's
    bookkeeping costs time proportional to the number outstanding on every call
    (publishes do not go through it: see `_Connection.publish`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        tls: bool = False,
        ca: str | None = None,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        will: Message | None = None,
        session_expiry_s: int = 3600,
        keepalive_s: int = 30,
        timeout_s: float = 10.0,
        tcp_nodelay: bool = True,
        max_inflight: int = 65535,
        max_outstanding: int = 128,
        reconnect_min_s: float = 0.05,
        reconnect_max_s: float = 2.0,
        max_unclaimed: int = 100_000,
    ) -> None:
        if not host:
            raise ValueError("MqttBus needs a broker host")
        if ca is not None and not tls:
            raise ValueError("MqttBus: a CA file (ca=...) only makes sense with tls=True")
        if will is not None:
            if not isinstance(will, Message):
                raise TypeError(f"will must be a Message, got {type(will).__name__}")
            _name_levels(will.topic)  # a will is published, so its topic is a topic name
            if will.response_topic is not None:
                _check_response_topic(will.response_topic)
        if client_id is not None and (not isinstance(client_id, str) or not client_id):
            raise ValueError(f"client_id must be a non-empty str, got {client_id!r}")
        if timeout_s <= 0 or reconnect_min_s <= 0 or reconnect_max_s < reconnect_min_s:
            raise ValueError(
                "MqttBus: timeout_s and reconnect_min_s must be > 0 and "
                "reconnect_max_s >= reconnect_min_s"
            )
        self.host = host
        self.port = port if port is not None else DEFAULT_PORTS["mqtts" if tls else "mqtt"]
        self.tls = tls
        self._ca = ca
        self._username = username
        self._password = password
        self._own_id = client_id is None
        self.client_id = client_id if client_id is not None else f"accord-{secrets.token_hex(8)}"
        self.will = will
        self.session_expiry_s = session_expiry_s
        self.keepalive_s = keepalive_s
        self.timeout_s = timeout_s
        self.tcp_nodelay = tcp_nodelay
        self.max_inflight = max_inflight
        self.max_outstanding = max_outstanding
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self._max_unclaimed = max_unclaimed

        self._closed = False
        self._conn: _Connection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None  # set while connected (or once closed)
        self._stop: asyncio.Event | None = None
        self._filters: dict[str, _Filter] = {}
        self._known_ids: set[int] = set()  # subscription ids this bus has subscribed
        self._stale: set[str] = set()  # filters to unsubscribe on the next connection
        self._unclaimed: deque[tuple[Message, set[int] | None]] = deque()
        self._tls_context: ssl.SSLContext | None = None
        self.published = 0
        """Publishes the broker acknowledged."""
        self.delivered = 0
        """Messages put on local subscription queues (one per matching subscription)."""
        self.reconnects = 0
        #: Called (as a task) after every reconnect, once subscriptions are restored.
        self.on_reconnect: Callable[[], Awaitable[None]] | None = None
        self._tasks_after_reconnect: set[asyncio.Task[None]] = set()
        """Times the connection dropped and was re-established."""
        self.unclaimed_dropped = 0
        """Unclaimed messages dropped because more than `max_unclaimed` were held."""

    @classmethod
    def from_url(cls, url: str, *, will: Message | None = None, **options: Any) -> MqttBus:
        """The bus an `mqtt://` or `mqtts://` URL names; keyword `options` override it."""
        s = parse_mqtt_url(url)
        settings: dict[str, Any] = {
            "tls": s.tls,
            "ca": s.ca,
            "username": s.username,
            "password": s.password,
            "client_id": s.client_id,
        }
        for name, value in (
            ("session_expiry_s", s.session_expiry_s),
            ("keepalive_s", s.keepalive_s),
            ("timeout_s", s.timeout_s),
        ):
            if value is not None:
                settings[name] = value
        settings.update(options)
        return cls(s.host, s.port, will=will, **settings)

    def __repr__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        if self._closed:
            state = "closed"
        elif self._conn is not None:
            state = "connected"
        else:
            state = "connecting" if self._runner is not None else "not connected"
        return (
            f"<MqttBus {scheme}://{self.host}:{self.port} client_id={self.client_id!r} {state} "
            f"subscriptions={self.subscription_count}>"
        )

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connected(self) -> bool:
        """Whether a broker connection is up right now (False while reconnecting)."""
        return self._conn is not None and not self._conn.lost.done()

    @property
    def subscription_count(self) -> int:
        """Local subscriptions currently active on this bus."""
        return sum(len(f.subs) for f in self._filters.values())

    @property
    def unclaimed(self) -> int:
        """Messages the broker delivered for no current subscription, held for a later one."""
        return len(self._unclaimed)

    def _where(self) -> str:
        return f"MQTT broker at {self.host}:{self.port}"

    # -- connecting ----------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect (first attempt only: failing here raises `BusUnavailable` at once).

        Later drops are handled by reconnecting in the background.
        """
        if self._closed:
            raise BusClosed(f"cannot connect: {self!r} is closed")
        if self._runner is not None:
            raise RuntimeError(f"{self!r} is already connected; enter it only once")
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        if self.tls and self._tls_context is None:
            # Loading CA files reads the disk: do it once, off the event loop.
            self._tls_context = await asyncio.to_thread(ssl.create_default_context, cafile=self._ca)
        conn = await self._open()
        self._conn = conn
        self._ready.set()
        self._runner = asyncio.create_task(self._run(conn), name=f"mqtt reader {self.client_id}")

    def _client(self) -> aiomqtt.Client:
        connect_properties = Properties(PacketTypes.CONNECT)
        connect_properties.SessionExpiryInterval = self.session_expiry_s
        will = None
        if self.will is not None:
            will = aiomqtt.Will(
                self.will.topic,
                self.will.payload,
                qos=1,
                retain=self.will.retain,
                properties=self._publish_properties(
                    PacketTypes.WILLMESSAGE,
                    self.will.properties,
                    self.will.response_topic,
                    self.will.correlation_data,
                    None,
                ),
            )
        client = aiomqtt.Client(
            self.host,
            self.port,
            username=self._username,
            password=self._password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            clean_start=False,
            properties=connect_properties,
            keepalive=self.keepalive_s,
            timeout=self.timeout_s,
            tls_context=self._tls_context,
            socket_options=(
                [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)] if self.tcp_nodelay else None
            ),
            max_inflight_messages=self.max_inflight,
            max_concurrent_outgoing_calls=self.max_outstanding,
        )
        # Only a warning threshold; a session runner legitimately has hundreds in flight.
        client.pending_calls_threshold = 1 << 30
        return client

    async def _open(self) -> _Connection:
        """A new connected client, or `BusUnavailable` saying what went wrong.

        Two paho callbacks are wrapped (paho is aiomqtt's `_client`; aiomqtt exposes no
        hook for either): on CONNACK, to cap in-flight publishes at the broker's Receive
        Maximum (sending more is a protocol error; paho ignores that property), and on
        disconnect, to resolve `lost` so pending operations stop waiting at once.
        """
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[None] = loop.create_future()
        client = self._client()
        paho = client._client  # noqa: SLF001
        on_connect, on_disconnect = paho.on_connect, paho.on_disconnect

        def connected(c: Any, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
            receive_maximum = getattr(props, "ReceiveMaximum", None)
            if receive_maximum and receive_maximum < c._max_inflight_messages:
                # Safe here: nothing has been published on this connection yet.
                c._max_inflight_messages = receive_maximum
            on_connect(c, userdata, flags, reason, props)

        def disconnected(c: Any, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
            on_disconnect(c, userdata, flags, reason, props)
            loop.call_soon_threadsafe(_resolve, lost)

        acks: dict[int, asyncio.Future[None]] = {}
        on_publish = paho.on_publish

        def published(c: Any, userdata: Any, mid: int, reason: Any, props: Any = None) -> None:
            # Runs on the event loop (aiomqtt drives paho's socket from it). A PUBACK of
            # a publish made by `_Connection.publish` resolves its future; any other
            # goes to aiomqtt's own bookkeeping.
            ack = acks.pop(mid, None)
            if ack is not None:
                if not ack.done():
                    ack.set_result(None)
                return
            on_publish(c, userdata, mid, reason, props)

        paho.on_connect = connected
        paho.on_disconnect = disconnected
        paho.on_publish = published
        try:
            await client.__aenter__()
        except aiomqtt.MqttCodeError as exc:
            raise BusUnavailable(self._refused(exc)) from exc
        except aiomqtt.MqttError as exc:
            raise BusUnavailable(self._unreachable(exc)) from exc
        except ssl.SSLError as exc:
            raise BusUnavailable(self._unreachable(exc)) from exc
        return _Connection(client, lost, acks)

    def _unreachable(self, exc: BaseException) -> str:
        what = (
            f"cannot connect to the {self._where()} (client id {self.client_id!r}): "
            f"{exc or type(exc).__name__}. "
        )
        if self.tls and ("SSL" in str(exc) or "certificate" in str(exc).lower()):
            return what + (
                "The TLS handshake failed: check that the broker serves TLS on this port "
                "and that its certificate is signed by a CA you trust (system CAs, or "
                "?ca=PATH in the URL) and names this host."
            )
        return what + (
            "Check that a broker is running and listening there "
            f"(e.g. 'mosquitto -p {self.port}'), "
            "that the host and port are right, and that no firewall is in the way."
        )

    def _refused(self, exc: aiomqtt.MqttCodeError) -> str:
        reason = str(exc.rc) if isinstance(exc.rc, ReasonCode) else str(exc)
        hint = "check the broker's log for why"
        value = getattr(exc.rc, "value", exc.rc)
        if value in (4, 5, 0x86, 0x87, 0x8C):  # bad user name or password / not authorized
            hint = "check the user name and password in the URL (mqtt://user:pass@host:port)"
        elif value in (2, 0x85):
            hint = f"the broker refused client id {self.client_id!r}; choose another"
        return f"the {self._where()} refused the connection: {reason}; {hint}"

    async def _run(self, conn: _Connection) -> None:
        """Read messages; on a drop, reconnect with backoff and restore subscriptions."""
        while True:
            await self._pump(conn)
            self._conn = None
            assert self._ready is not None and self._stop is not None
            if not self._closed:
                self._ready.clear()
            await self._release(conn)
            if self._closed:
                return
            log.warning("lost the connection to the %s; reconnecting", self._where())
            next_conn = await self._reconnect()
            if next_conn is None:
                return
            conn = next_conn

    async def _pump(self, conn: _Connection) -> None:
        messages = conn.client.messages
        try:
            async for message in messages:
                self._dispatch(message)
        except aiomqtt.MqttError:
            pass
        # Messages already acknowledged to the broker must not be lost with the socket.
        while len(messages):
            try:
                self._dispatch(await anext(messages))
            except aiomqtt.MqttError:
                break

    async def _release(self, conn: _Connection) -> None:
        try:
            await conn.client.__aexit__(None, None, None)
        except (aiomqtt.MqttError, OSError) as exc:
            log.debug("closing a dropped MQTT connection: %s", exc)

    async def _reconnect(self) -> _Connection | None:
        assert self._ready is not None and self._stop is not None
        delay = self.reconnect_min_s
        while not self._closed:
            try:
                await asyncio.wait_for(self._stop.wait(), delay * random.uniform(0.5, 1.0))
                return None  # closed while waiting
            except TimeoutError:
                pass
            try:
                conn = await self._open()
            except BusUnavailable as exc:
                log.debug("reconnect failed: %s", exc)
                delay = min(delay * 2, self.reconnect_max_s)
                continue
            if self._closed:
                await self._disconnect(conn)
                return None
            try:
                await self._restore(conn)
            except (_Lost, aiomqtt.MqttError, BusUnavailable) as exc:
                log.warning("restoring subscriptions on the %s failed: %s", self._where(), exc)
                await self._release(conn)
                continue
            if self._closed:  # close() ran while subscriptions were being restored
                await self._disconnect(conn)
                return None
            self._conn = conn
            self.reconnects += 1
            self._ready.set()
            log.warning("reconnected to the %s", self._where())
            if self.on_reconnect is not None:
                # e.g. announce presence again: the broker may have published our will.
                self._tasks_after_reconnect.add(task := asyncio.ensure_future(self.on_reconnect()))
                task.add_done_callback(self._tasks_after_reconnect.discard)
            return conn
        return None

    async def _restore(self, conn: _Connection) -> None:
        """Re-subscribe every filter and drop filters left while disconnected.

        Retain Handling 1: the broker sends retained messages only for subscriptions
        it no longer had (its session was lost), so a resumed session replays nothing.
        """
        stale = [f for f in self._stale if f not in self._filters]
        self._stale.clear()
        if stale:
            await conn.run(conn.client.unsubscribe(stale))
        await asyncio.gather(
            *(self._subscribe_on(conn, f, _RETAIN_IF_NEW) for f in list(self._filters.values()))
        )

    async def _await_connection(self, deadline: float, what: str) -> _Connection:
        assert self._ready is not None
        while True:
            if self._closed:
                raise BusClosed(f"cannot {what}: {self!r} is closed")
            conn = self._conn
            if conn is not None and not conn.lost.done():
                return conn
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(self._ready.wait(), remaining)
            except TimeoutError:
                raise BusUnavailable(
                    f"cannot {what}: no connection to the {self._where()} for {self.timeout_s:g} s "
                    "(reconnecting in the background); check that the broker is up and reachable"
                ) from None
            if self._conn is None and not self._closed:
                await asyncio.sleep(0)  # the event was set and cleared again: wait anew

    def _require_started(self, what: str) -> None:
        if self._closed:
            raise BusClosed(f"cannot {what}: {self!r} is closed")
        if self._runner is None:
            raise RuntimeError(
                f"cannot {what}: {self!r} is not connected; use 'async with bus:' "
                "(or 'await bus.connect()') first"
            )

    # -- publishing ----------------------------------------------------------------------

    @staticmethod
    def _publish_properties(
        packet_type: int,
        properties: Mapping[str, str],
        response_topic: str | None,
        correlation_data: bytes | None,
        expiry_s: float | None,
    ) -> Properties | None:
        if not properties and response_topic is None and correlation_data is None and not expiry_s:
            return None
        result = Properties(packet_type)
        if properties:
            result.UserProperty = _user_properties(properties)
        if response_topic is not None:
            result.ResponseTopic = response_topic
        if correlation_data is not None:
            result.CorrelationData = correlation_data
        if expiry_s:
            result.MessageExpiryInterval = max(1, math.ceil(expiry_s))
        return result

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        properties: Mapping[str, str] | None = None,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        expiry_s: float | None = None,
    ) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK (see `Bus.publish`).

        `expiry_s` (MQTT only; the `Bus` interface has no such argument): the broker
        drops the message if it has not been delivered to a subscriber within that
        many seconds (rounded up), e.g. for a call that is pointless once late.
        A drop while waiting for PUBACK re-sends on the next connection, so the message
        may arrive twice; `BusUnavailable` if there is no connection for `timeout_s`.
        """
        if self._closed:
            raise BusClosed(f"cannot publish to {topic!r}: {self!r} is closed")
        if type(topic) is not str:
            raise InvalidTopic(f"topic name must be a str, got {type(topic).__name__}: {topic!r}")
        _name_levels(topic)
        if response_topic is not None:
            _check_response_topic(response_topic)
        if expiry_s is not None and not (isinstance(expiry_s, (int, float)) and expiry_s > 0):
            raise ValueError(f"expiry_s for {topic!r} must be a positive number, got {expiry_s!r}")
        if not (type(payload) is bytes and properties is None and correlation_data is None):
            # The checked constructor converts bytes-like values and rejects bad ones.
            checked = Message(
                topic,
                payload,
                False,
                NO_PROPERTIES if properties is None else properties,
                response_topic,
                correlation_data,
            )
            payload, properties, correlation_data = (
                checked.payload,
                checked.properties,
                checked.correlation_data,
            )
        self._require_started(f"publish to {topic!r}")
        mqtt_properties = self._publish_properties(
            PacketTypes.PUBLISH,
            properties or NO_PROPERTIES,
            response_topic,
            correlation_data,
            expiry_s,
        )
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        while True:
            conn = self._conn
            if conn is None or conn.lost.done():
                conn = await self._await_connection(deadline, f"publish to {topic!r}")
            try:
                await conn.publish(topic, payload, retain, mqtt_properties, self.timeout_s)
            except _Lost:
                if self._closed:
                    raise BusClosed(f"cannot publish to {topic!r}: {self!r} was closed") from None
                if not conn.lost.done():
                    # paho saw the drop before our disconnect callback ran: let it run.
                    await asyncio.sleep(0.01)
                continue  # re-send on the next connection: at least once
            except aiomqtt.MqttError as exc:
                raise BusUnavailable(
                    f"publish to {topic!r} failed on the {self._where()}: {exc}"
                ) from exc
            self.published += 1
            return

    # -- subscribing ---------------------------------------------------------------------

    def subscribe(self, topic_filter: str) -> MqttSubscription:
        if self._closed:
            raise BusClosed(f"cannot subscribe to {topic_filter!r}: {self!r} is closed")
        levels = _filter_levels(validate_topic_filter(topic_filter))
        return MqttSubscription(self, topic_filter, levels)

    async def _join(self, sub: MqttSubscription) -> None:
        what = f"subscribe to {sub.topic_filter!r}"
        self._require_started(what)
        entry = self._filters.get(sub.topic_filter)
        if entry is None:
            entry = self._filters[sub.topic_filter] = _Filter(sub.topic_filter, sub._levels)
        entry.subs.append(sub)
        if entry.sub_id not in self._known_ids:
            self._known_ids.add(entry.sub_id)
            self._claim(entry, sub)
        self._stale.discard(sub.topic_filter)
        try:
            deadline = asyncio.get_running_loop().time() + self.timeout_s
            while True:
                conn = await self._await_connection(deadline, what)
                try:
                    await self._subscribe_on(conn, entry, _RETAIN_ALWAYS)
                    return
                except _Lost:
                    continue
        except BaseException:
            self._forget(sub)
            raise

    async def _subscribe_on(self, conn: _Connection, entry: _Filter, retain_handling: int) -> None:
        subscribe_properties = Properties(PacketTypes.SUBSCRIBE)
        subscribe_properties.SubscriptionIdentifier = entry.sub_id
        try:
            codes = await conn.run(
                conn.client.subscribe(
                    entry.topic_filter,
                    options=SubscribeOptions(qos=1, retainHandling=retain_handling),
                    properties=subscribe_properties,
                )
            )
        except aiomqtt.MqttError as exc:
            raise BusUnavailable(
                f"subscribe to {entry.topic_filter!r} failed on the {self._where()}: {exc}"
            ) from exc
        code = codes[0]
        value = code.value if isinstance(code, ReasonCode) else int(code)
        if value >= 0x80:
            raise BusUnavailable(
                f"the {self._where()} refused the subscription to {entry.topic_filter!r}: "
                f"{code}; check the broker's access control for client id {self.client_id!r}"
            )
        if value == 0:
            log.warning(
                "the %s granted only QoS 0 for %r: messages may be lost",
                self._where(),
                entry.topic_filter,
            )

    def _claim(self, entry: _Filter, sub: MqttSubscription) -> None:
        """Hand a new subscription the unclaimed messages queued for its filter."""
        if not self._unclaimed:
            return
        keep: deque[tuple[Message, set[int] | None]] = deque()
        for message, ids in self._unclaimed:
            if (ids is None or entry.sub_id in ids) and _levels_match(
                entry.levels, _name_levels(message.topic)
            ):
                if sub._put(message):
                    self.delivered += 1
                if ids is not None:
                    ids.discard(entry.sub_id)
                    if ids:
                        keep.append((message, ids))
            else:
                keep.append((message, ids))
        self._unclaimed = keep

    def _forget(self, sub: MqttSubscription) -> bool:
        """Remove a local subscription; True if it was the last one on its filter."""
        entry = self._filters.get(sub.topic_filter)
        if entry is None or sub not in entry.subs:
            return False
        entry.subs.remove(sub)
        if entry.subs:
            return False
        del self._filters[sub.topic_filter]
        return True

    async def _leave(self, sub: MqttSubscription) -> None:
        """Unsubscribe at the broker when no other local subscription uses the filter.

        Never raises for transport trouble: if the connection is down, the filter is
        unsubscribed on the next connection instead.
        """
        if not self._forget(sub) or self._closed:
            return
        conn = self._conn
        if conn is None or conn.lost.done():
            self._stale.add(sub.topic_filter)
            return
        try:
            await conn.run(conn.client.unsubscribe(sub.topic_filter))
        except (_Lost, aiomqtt.MqttError) as exc:
            log.debug("unsubscribe from %r deferred: %s", sub.topic_filter, exc)
            if sub.topic_filter not in self._filters:
                self._stale.add(sub.topic_filter)

    def _dispatch(self, incoming: aiomqtt.Message) -> None:
        topic = incoming.topic.value
        props = incoming.properties
        user: Mapping[str, str] = NO_PROPERTIES
        response_topic = correlation_data = None
        ids: list[int] | None = None
        if props is not None:
            pairs = getattr(props, "UserProperty", None)
            if pairs:
                user = MappingProxyType(dict(pairs))
            response_topic = getattr(props, "ResponseTopic", None)
            correlation_data = getattr(props, "CorrelationData", None)
            ids = getattr(props, "SubscriptionIdentifier", None)
        payload = incoming.payload
        if type(payload) is not bytes:
            payload = bytes(payload)  # type: ignore[arg-type]
        message = _trusted_message(
            topic, payload, bool(incoming.retain), user, response_topic, correlation_data
        )
        try:
            levels = _name_levels(topic)
        except InvalidTopic:
            log.warning("dropping a message on a topic this bus cannot handle: %r", topic)
            return
        matched = False
        for entry in self._filters.values():
            if (not ids or entry.sub_id in ids) and _levels_match(entry.levels, levels):
                matched = True
                for sub in entry.subs:
                    if sub._put(message):
                        self.delivered += 1
        if matched:
            return
        unknown = None if not ids else {i for i in ids if i not in self._known_ids}
        if unknown is not None and not unknown:
            return  # for a filter this bus left: a delivery that crossed the UNSUBSCRIBE
        # For a subscription made by an earlier bus with this client id: keep it.
        if len(self._unclaimed) >= self._max_unclaimed:
            self._unclaimed.popleft()
            self.unclaimed_dropped += 1
            if self.unclaimed_dropped == 1:
                log.warning(
                    "more than %d messages arrived for filters no subscription on %r "
                    "has claimed; dropping the oldest",
                    self._max_unclaimed,
                    self,
                )
        self._unclaimed.append((message, unknown))

    # -- closing -------------------------------------------------------------------------

    async def _disconnect(self, conn: _Connection) -> None:
        """Send DISCONNECT; with a random client id, ask the broker to drop the session.

        Setting Session Expiry to 0 on DISCONNECT needs paho's `disconnect` (aiomqtt
        sends a DISCONNECT without properties).
        """
        if not conn.lost.done():
            properties = None
            if self._own_id:
                properties = Properties(PacketTypes.DISCONNECT)
                properties.SessionExpiryInterval = 0
            conn.client._client.disconnect(properties=properties)  # noqa: SLF001
            try:
                await asyncio.wait_for(asyncio.shield(conn.lost), self.timeout_s)
            except TimeoutError:
                log.warning("the %s did not close the connection in time", self._where())
        await self._release(conn)

    async def close(self) -> None:
        """Disconnect cleanly (no will) and end every subscription after what it holds.

        Subscriptions still open stay at the broker for `session_expiry_s` when the
        client id was given (see the module docstring). Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        if self._ready is not None and self._stop is not None:
            self._stop.set()
            self._ready.set()  # wake waiting operations, which then raise BusClosed
        conn, runner = self._conn, self._runner
        if conn is not None:
            await self._disconnect(conn)
        if runner is not None:
            try:
                await runner
            except Exception:  # noqa: BLE001 - the reader must not make close() fail
                log.exception("the MQTT reader task of %r failed", self)
        self._conn = None
        for entry in self._filters.values():
            for sub in entry.subs:
                sub._end()
        self._filters.clear()
        self._unclaimed.clear()
