"""The message bus delegates and the chair talk over: an interface plus transports.

`open_bus(url)` picks the transport: `memory://` (in-process, for tests and single-
process runs) or `mqtt://` / `mqtts://` (an MQTT v5 broker, `accord.bus.mqtt`). Code depends only on `Bus`,
`Subscription` and `Message`, so switching transports changes a URL, not the code.
"""

from accord.bus.base import Bus, BusClosed, Message, Subscription, open_bus
from accord.bus.memory import MemoryBus, MemorySubscription, named_memory_bus
from accord.bus.topics import (
    InvalidTopic,
    broadcast_topic,
    chair_topic,
    delegate_inbox,
    delegate_outbox,
    outboxes_filter,
    presence_filter,
    presence_topic,
    session_filter,
    session_root,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)

__all__ = [
    "Bus",
    "BusClosed",
    "InvalidTopic",
    "MemoryBus",
    "MemorySubscription",
    "Message",
    "Subscription",
    "broadcast_topic",
    "chair_topic",
    "delegate_inbox",
    "delegate_outbox",
    "named_memory_bus",
    "open_bus",
    "outboxes_filter",
    "presence_filter",
    "presence_topic",
    "session_filter",
    "session_root",
    "topic_matches",
    "validate_topic_filter",
    "validate_topic_name",
]
