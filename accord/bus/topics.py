"""Topic names, topic filters and the topic layout of a session.

The rules are MQTT's (v3.1.1 and v5, section 4.7) so that the in-process bus and
the MQTT transport accept and match exactly the same things: a session that runs
in memory must not break when it moves to a broker. Topic names (what you publish
to) never contain wildcards; topic filters (what you subscribe to) may use `+`
for exactly one level and `#` for all remaining levels, including none.

Layout of one session (`{s}` session id, `{d}` delegate id, each a single level)::

    topic                                  publisher -> readers         retained
    accord/v1/{s}/chair/{what}             chair -> anyone              session state
    accord/v1/{s}/broadcast                chair -> every delegate      no
    accord/v1/{s}/delegates/{d}/inbox      chair -> delegate d          no
    accord/v1/{s}/delegates/{d}/outbox     delegate d -> chair          no
    accord/v1/{s}/presence/{d}             delegate d -> chair          yes (empty = gone)

The `v1` level lets a later, incompatible layout share a broker with this one. The
chair reads every outbox with `outboxes_filter(s)` and every presence topic with
`presence_filter(s)`; a recorder reads everything with `session_filter(s)`.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = [
    "MAX_TOPIC_BYTES",
    "InvalidTopic",
    "broadcast_topic",
    "chair_topic",
    "delegate_inbox",
    "delegate_outbox",
    "outboxes_filter",
    "presence_filter",
    "presence_topic",
    "session_filter",
    "session_root",
    "topic_matches",
    "validate_topic_filter",
    "validate_topic_name",
]

MAX_TOPIC_BYTES = 65535
"""MQTT encodes topics as a UTF-8 string with a two-byte length prefix."""

_ROOT = "accord/v1"


class InvalidTopic(ValueError):
    """A topic name or filter that MQTT would reject (or that this layout forbids)."""


def _check_common(kind: str, topic: str) -> None:
    """Rules shared by names and filters: a non-empty str, no NUL, at most 65535 UTF-8 bytes."""
    if not topic:
        raise InvalidTopic(f"{kind} {topic!r} is empty; MQTT needs at least one character")
    if "\0" in topic:
        raise InvalidTopic(f"{kind} {topic!r} contains a NUL character (U+0000)")
    # A str of n code points encodes to at most 4n bytes, so only long ones need encoding.
    if len(topic) * 4 > MAX_TOPIC_BYTES:
        try:
            size = len(topic.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise InvalidTopic(f"{kind} {topic[:40]!r}... is not valid UTF-8: {exc}") from None
        if size > MAX_TOPIC_BYTES:
            raise InvalidTopic(
                f"{kind} {topic[:40]!r}... is {size} bytes in UTF-8; MQTT allows {MAX_TOPIC_BYTES}"
            )
    elif not topic.isascii():
        try:
            topic.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidTopic(f"{kind} {topic!r} is not valid UTF-8: {exc}") from None


@lru_cache(maxsize=4096)
def _name_levels(name: str) -> tuple[str, ...]:
    """Validate a topic name once and keep its split; names repeat constantly on a bus."""
    _check_common("topic name", name)
    if "+" in name or "#" in name:
        raise InvalidTopic(
            f"topic name {name!r} contains a wildcard ('+' or '#'); "
            "wildcards are only allowed in subscription filters"
        )
    return tuple(name.split("/"))


@lru_cache(maxsize=1024)
def _filter_levels(topic_filter: str) -> tuple[str, ...]:
    """Validate a topic filter once and keep its split, so matching never re-parses it."""
    _check_common("topic filter", topic_filter)
    levels = tuple(topic_filter.split("/"))
    last = len(levels) - 1
    for i, level in enumerate(levels):
        if "#" in level:
            if level != "#":
                raise InvalidTopic(
                    f"topic filter {topic_filter!r}: '#' must occupy a whole level, "
                    f"not appear inside {level!r}"
                )
            if i != last:
                raise InvalidTopic(f"topic filter {topic_filter!r}: '#' must be the last level")
        elif "+" in level and level != "+":
            raise InvalidTopic(
                f"topic filter {topic_filter!r}: '+' must occupy a whole level, "
                f"not appear inside {level!r}"
            )
    if levels[0] == "$share":
        # MQTT v5 shared subscriptions load-balance between subscribers; the in-process
        # bus cannot mirror that, so neither transport accepts them.
        raise InvalidTopic(
            f"topic filter {topic_filter!r}: shared subscriptions ($share/...) are not supported"
        )
    return levels


def _require_str(kind: str, value: object) -> None:
    """Type check before the caches, which would fail with 'unhashable type' on a list."""
    if not isinstance(value, str):
        raise InvalidTopic(f"{kind} must be a str, got {type(value).__name__}: {value!r}")


def validate_topic_name(name: str) -> str:
    """Check a topic to publish to; return it unchanged or raise `InvalidTopic`."""
    _require_str("topic name", name)
    _name_levels(name)
    return name


def validate_topic_filter(topic_filter: str) -> str:
    """Check a subscription filter; return it unchanged or raise `InvalidTopic`."""
    _require_str("topic filter", topic_filter)
    _filter_levels(topic_filter)
    return topic_filter


def _levels_match(filter_levels: tuple[str, ...], name_levels: tuple[str, ...]) -> bool:
    """Match pre-split levels; the bus calls this directly to skip validation and splitting."""
    # Spec 4.7.2: a filter starting with a wildcard must not match a name starting with '$'
    # (those are server topics such as $SYS), but '$SYS/#' does match them.
    first = filter_levels[0]
    if (first == "#" or first == "+") and name_levels[0].startswith("$"):
        return False
    n = len(name_levels)
    for i, level in enumerate(filter_levels):
        if level == "#":
            # '#' also matches the parent level: 'a/#' matches 'a'.
            return True
        if i >= n:
            return False
        if level != "+" and level != name_levels[i]:
            return False
    return len(filter_levels) == n


def topic_matches(topic_filter: str, name: str) -> bool:
    """Whether a message published to `name` is delivered to a subscription on `topic_filter`.

    Both are validated first (raising `InvalidTopic`), because silently answering False
    for a malformed filter hides the bug that produced it.
    """
    _require_str("topic filter", topic_filter)
    _require_str("topic name", name)
    return _levels_match(_filter_levels(topic_filter), _name_levels(name))


# --- session layout -------------------------------------------------------------------


_NOT_IN_A_LEVEL = (
    ("/", "a level separator"),
    ("+", "a wildcard"),
    ("#", "a wildcard"),
    ("\0", "a NUL character"),
)


def _level(kind: str, value: str) -> str:
    """Check that an id can be one topic level, so ids can never reshape the layout."""
    if not isinstance(value, str) or not value:
        raise InvalidTopic(f"{kind} {value!r} cannot be a topic level: it must be a non-empty str")
    for bad, why in _NOT_IN_A_LEVEL:
        if bad in value:
            raise InvalidTopic(
                f"{kind} {value!r} cannot be a topic level: it contains {why} {bad!r}"
            )
    return value


def session_root(session_id: str) -> str:
    """`accord/v1/{session_id}`: every topic of the session lives under this prefix."""
    return f"{_ROOT}/{_level('session id', session_id)}"


def session_filter(session_id: str) -> str:
    """`accord/v1/{session_id}/#`: everything in the session (for a recorder or observer)."""
    return f"{session_root(session_id)}/#"


def chair_topic(session_id: str, what: str) -> str:
    """`accord/v1/{session_id}/chair/{what}`: the chair's announcements, e.g. `status`.

    `what` may span several levels (`round/3`) but may not contain wildcards or empty
    levels, so it can never escape the chair's subtree.
    """
    if not isinstance(what, str) or not what:
        raise InvalidTopic(f"chair topic {what!r} must be a non-empty str")
    for part in what.split("/"):
        if not part:
            raise InvalidTopic(f"chair topic {what!r} has an empty level")
        _level(f"chair topic {what!r}: level", part)
    return f"{session_root(session_id)}/chair/{what}"


def broadcast_topic(session_id: str) -> str:
    """`accord/v1/{session_id}/broadcast`: the chair speaking to every delegate at once."""
    return f"{session_root(session_id)}/broadcast"


def delegate_inbox(session_id: str, delegate_id: str) -> str:
    """`accord/v1/{session_id}/delegates/{delegate_id}/inbox`: chair -> that delegate only."""
    return f"{session_root(session_id)}/delegates/{_level('delegate id', delegate_id)}/inbox"


def delegate_outbox(session_id: str, delegate_id: str) -> str:
    """`accord/v1/{session_id}/delegates/{delegate_id}/outbox`: that delegate -> the chair.

    One outbox per delegate (rather than one shared chair inbox) lets a broker ACL pin
    each delegate's credentials to its own topic, so the sender is known from the topic.
    """
    return f"{session_root(session_id)}/delegates/{_level('delegate id', delegate_id)}/outbox"


def outboxes_filter(session_id: str) -> str:
    """`accord/v1/{session_id}/delegates/+/outbox`: what the chair subscribes to."""
    return f"{session_root(session_id)}/delegates/+/outbox"


def presence_topic(session_id: str, delegate_id: str) -> str:
    """`accord/v1/{session_id}/presence/{delegate_id}`: retained 'I am here' of a delegate.

    Retained so a chair that starts late still sees who is present; an empty retained
    payload (or, on MQTT, the delegate's will message) clears it.
    """
    return f"{session_root(session_id)}/presence/{_level('delegate id', delegate_id)}"


def presence_filter(session_id: str) -> str:
    """`accord/v1/{session_id}/presence/+`: every delegate's presence."""
    return f"{session_root(session_id)}/presence/+"
