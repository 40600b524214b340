"""The bus interface every transport implements: publish, subscribe, close.

It is deliberately the subset of MQTT v5 that the in-process bus can honour exactly,
so that code written against `memory://` runs unchanged against a broker:

* topics are `/`-separated names; subscriptions take MQTT filters (`+`, `#`), see
  `accord.bus.topics`;
* delivery is QoS 1, at least once: a transport may deliver a message twice (the
  memory bus never does), so consumers must tolerate duplicates;
* order is kept per publisher and subscription, never across publishers;
* retained messages: the last retained message on a topic is handed to every new
  matching subscription; an empty retained payload deletes it;
* MQTT v5 user properties, response topic and correlation data travel as metadata.

Usage::

    async with open_bus("memory://") as bus:
        async with bus.subscribe("accord/v1/s1/delegates/+/outbox") as sub:
            await bus.publish("accord/v1/s1/delegates/alice/outbox", b"...")
            async for message in sub:
                ...
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Self
from urllib.parse import urlsplit

__all__ = ["Bus", "BusClosed", "Message", "Subscription", "open_bus"]

NO_PROPERTIES: Mapping[str, str] = MappingProxyType({})
"""The shared, immutable empty user-property mapping (avoids one dict per message)."""


def _no_properties() -> Mapping[str, str]:
    return NO_PROPERTIES


class BusClosed(RuntimeError):
    """The bus was closed; nothing more can be published or subscribed on it."""


@dataclass(frozen=True, slots=True)
class Message:
    """One delivered (or retained) message. Immutable, so one object can go to every subscriber.

    `retain` is True only when the message comes from the retained store on subscribing,
    as MQTT v5 does by default (Retain As Published off): a live message is delivered
    with `retain=False` even if it was published retained, so a consumer can tell
    "state that was already there" from "something that just happened".

    `properties` are MQTT v5 user properties; MQTT allows repeated keys but this
    interface does not, because nothing here needs them and a mapping is simpler.
    """

    topic: str
    payload: bytes
    retain: bool = False
    properties: Mapping[str, str] = field(default_factory=_no_properties, hash=False)
    response_topic: str | None = None
    correlation_data: bytes | None = None

    def __post_init__(self) -> None:
        # Copy and freeze, so a caller mutating its dict later cannot change a message
        # that subscribers already hold.
        if type(self.payload) is not bytes:
            if not isinstance(self.payload, (bytes, bytearray, memoryview)):
                raise TypeError(
                    f"payload for {self.topic!r} must be bytes, got {type(self.payload).__name__}"
                    " (encode text explicitly, e.g. with .encode('utf-8'))"
                )
            object.__setattr__(self, "payload", bytes(self.payload))
        if self.properties is not NO_PROPERTIES:
            frozen = MappingProxyType(dict(self.properties))
            for key, value in frozen.items():
                if type(key) is not str or type(value) is not str:
                    raise TypeError(
                        f"user properties for {self.topic!r} must map str to str "
                        f"(MQTT v5 UTF-8 string pairs), got {key!r}: {value!r}"
                    )
            object.__setattr__(self, "properties", frozen if frozen else NO_PROPERTIES)
        data = self.correlation_data
        if data is not None and type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise TypeError(
                    f"correlation_data for {self.topic!r} must be bytes, got {type(data).__name__}"
                )
            object.__setattr__(self, "correlation_data", bytes(data))


def _slot_setter(name: str) -> Callable[[Message, object], None]:
    """The raw slot writer for a field: bypasses the frozen `__setattr__`."""
    setter: Callable[[Message, object], None] = getattr(Message, name).__set__
    return setter


_new_object = object.__new__
_set_topic = _slot_setter("topic")
_set_payload = _slot_setter("payload")
_set_retain = _slot_setter("retain")
_set_properties = _slot_setter("properties")
_set_response_topic = _slot_setter("response_topic")
_set_correlation_data = _slot_setter("correlation_data")


def _trusted_message(
    topic: str,
    payload: bytes,
    retain: bool,
    properties: Mapping[str, str],
    response_topic: str | None,
    correlation_data: bytes | None,
) -> Message:
    """Build a `Message` from values a transport has already checked, skipping the checks.

    The frozen dataclass `__init__` goes through `object.__setattr__` per field and then
    `__post_init__`; writing the slots directly is about twice as fast, which matters at
    the 100k messages/s a session runner pushes. `payload` and `correlation_data` must
    be `bytes` (or None) and `properties` an immutable mapping such as `NO_PROPERTIES`.
    """
    message = _new_object(Message)
    _set_topic(message, topic)
    _set_payload(message, payload)
    _set_retain(message, retain)
    _set_properties(message, properties)
    _set_response_topic(message, response_topic)
    _set_correlation_data(message, correlation_data)
    return message


class Subscription(ABC):
    """Messages matching one topic filter: an async context manager and async iterator.

    The subscription is live once `__aenter__` returns: nothing published after that is
    missed, and retained messages that match are queued first. Iteration ends
    (`StopAsyncIteration`) when the bus closes, after the messages already queued;
    leaving the `async with` block ends it at once. Iterating a subscription that was
    never entered is a `RuntimeError`, because it would otherwise silently wait forever.
    """

    topic_filter: str

    @abstractmethod
    async def __aenter__(self) -> Self:
        """Start receiving (on MQTT: after the broker's SUBACK)."""

    @abstractmethod
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop receiving and drop whatever is still queued."""

    def __aiter__(self) -> Self:
        return self

    @abstractmethod
    async def __anext__(self) -> Message:
        """The next message, waiting for one if none is queued."""


class Bus(ABC):
    """A message bus. Use it as `async with bus:` so that it is connected and closed."""

    @abstractmethod
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
        """Send `payload` to every subscription whose filter matches `topic` (QoS 1).

        Raises `InvalidTopic` for a bad topic or response topic and `BusClosed` after
        `close()`. Returning means the transport accepted the message (on MQTT: PUBACK);
        it never waits for subscribers to process it.
        """

    @abstractmethod
    def subscribe(self, topic_filter: str) -> Subscription:
        """A subscription to `topic_filter`; it starts when entered with `async with`.

        The filter is validated here, so a bad one fails at the call site, not later.
        """

    @abstractmethod
    async def close(self) -> None:
        """Close the bus and end every subscription's iteration. Idempotent."""

    @property
    @abstractmethod
    def closed(self) -> bool:
        """Whether `close()` has been called."""

    async def connect(self) -> None:
        """Establish the connection; a no-op for transports that are ready at construction.

        Kept separate from construction because `open_bus` is synchronous while a
        broker connection is not.
        """

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


SUPPORTED_SCHEMES = ("memory", "mqtt", "mqtts")


def open_bus(url: str, *, will: Message | None = None) -> Bus:
    """The bus a URL names; connect it with `async with`.

    * `memory://` - a fresh in-process bus, private to the caller;
    * `memory://NAME` - the in-process bus called NAME, shared by everyone in this
      process who opens the same URL (until it is closed);
    * `mqtt://[user:pass@]host[:port][?client_id=ID]`, `mqtts://...[?ca=PATH]` - an
      MQTT v5 broker (`accord.bus.mqtt.MqttBus`; the module lists every URL option).

    `will` is published by an MQTT broker if this client's connection dies without a
    clean close (e.g. an empty retained payload on its presence topic). An in-process
    bus handle cannot die without closing, so there it is accepted and never sent.
    """
    if not isinstance(url, str):
        raise TypeError(f"bus URL must be a str, got {type(url).__name__}: {url!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        well_formed = url[len(parts.scheme) :].startswith("://")
        if not well_formed or parts.path or parts.query or parts.fragment:
            raise ValueError(
                f"bus URL {url!r}: a memory bus URL is 'memory://' (a fresh bus) or "
                "'memory://NAME' (a shared one), with no path, query or fragment"
            )
        from accord.bus.memory import MemoryBus, named_memory_bus  # memory imports this module

        if will is not None and not isinstance(will, Message):
            raise TypeError(f"will must be a Message, got {type(will).__name__}")
        return named_memory_bus(parts.netloc) if parts.netloc else MemoryBus()
    if scheme in ("mqtt", "mqtts"):
        from accord.bus.mqtt import MqttBus  # imports aiomqtt: only when asked for

        return MqttBus.from_url(url, will=will)
    raise ValueError(
        f"bus URL {url!r} has an unsupported scheme; supported: "
        "memory:// (fresh in-process bus), memory://NAME (shared in-process bus), "
        "mqtt://host[:port] and mqtts://host[:port] (MQTT v5 broker)"
    )
