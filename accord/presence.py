"""Presence: which delegates are connected, announced on a retained topic per host.

A host (a process running one or more delegates) publishes `online` with its
delegates' public keys when it is ready, and registers an `offline` will that the
broker publishes if the connection dies without a clean goodbye. Presence is advisory:
signatures prove authorship of every move, and broker ACLs (accord broker-config) stop
one client from announcing on another's presence topic.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from pydantic import BaseModel, ConfigDict

from accord.bus import Message
from accord.bus.topics import presence_topic


class Presence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    status: Literal["online", "offline"]
    delegates: dict[str, str]  # delegate id -> base64 public key
    spec_hash: str

    def message(self, session_id: str) -> Message:
        return Message(
            topic=presence_topic(session_id, self.host),
            payload=self.model_dump_json().encode(),
            retain=True,
        )


GROUP_HOST_PREFIX = "host-"


def speaks_for(topic: str, presence: Presence, delegate: str, delegates: Collection[str]) -> bool:
    """May this presence message speak for `delegate`? Only from the host's own topic;
    a host named after a delegate speaks for that delegate alone, and a host with any
    other name (a group: `host-...`, or a name given with `--host`) for its members.
    Broker ACLs decide who may publish on which presence topic, so one delegate's
    credentials cannot announce another delegate's key (accord broker-config)."""
    host = topic.rsplit("/", 1)[-1]
    if host != presence.host:
        return False
    return host == delegate or host not in delegates
