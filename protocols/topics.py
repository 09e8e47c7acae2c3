"""MQTT topics of protocol v1: builders and a strict parser.

Every gateway lives under ``safehome/v1/gw/{gateway_id}/{channel}``. Uplink channels
are published by the gateway, downlink channels by the hub. The hub consumes uplink
through the shared subscription group ``$share/hub/…`` so that hub workers split load.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.errors import ProtocolError
from protocols.ids import validate_id

ROOT = "safehome/v1"
GATEWAY_PREFIX = f"{ROOT}/gw"
HUB_SHARE_GROUP = "hub"
MAX_TOPIC_LEN = 256


class Channel(enum.StrEnum):
    """The last topic level: what kind of message flows there."""

    # uplink: gateway → hub
    EVENT = "event"
    TELEMETRY = "telemetry"
    STATUS = "status"
    RESULT = "result"
    # downlink: hub → gateway
    ACK = "ack"
    CONFIG = "config"
    COMMAND = "cmd"

    @property
    def uplink(self) -> bool:
        return self in UPLINK_CHANNELS


UPLINK_CHANNELS: frozenset[Channel] = frozenset(
    {Channel.EVENT, Channel.TELEMETRY, Channel.STATUS, Channel.RESULT}
)
DOWNLINK_CHANNELS: frozenset[Channel] = frozenset({Channel.ACK, Channel.CONFIG, Channel.COMMAND})


@dataclass(frozen=True, slots=True)
class Topic:
    """A validated gateway topic. Construct with :meth:`of` or :meth:`parse`."""

    gateway_id: str
    channel: Channel

    @classmethod
    def of(cls, gateway_id: str, channel: Channel | str) -> Topic:
        gw = validate_id(gateway_id, "gateway_id")
        try:
            ch = Channel(channel)
        except ValueError as exc:
            raise ProtocolError("bad_topic", f"unknown channel {channel!r}", "channel") from exc
        return cls(gw, ch)

    @classmethod
    def parse(cls, topic: str) -> Topic:
        """Parse a concrete topic string (no wildcards) into a :class:`Topic`."""
        if not isinstance(topic, str):
            raise ProtocolError("bad_topic", "topic is not a string", "topic")
        if len(topic) > MAX_TOPIC_LEN:
            raise ProtocolError("bad_topic", f"{len(topic)} characters, limit {MAX_TOPIC_LEN}", "topic")
        parts = topic.split("/")
        if len(parts) != 5 or "/".join(parts[:3]) != GATEWAY_PREFIX:
            raise ProtocolError(
                "bad_topic", f"{topic[:80]!r} is not {GATEWAY_PREFIX}/{{gateway_id}}/{{channel}}", "topic"
            )
        return cls.of(parts[3], parts[4])

    def __str__(self) -> str:
        return f"{GATEWAY_PREFIX}/{self.gateway_id}/{self.channel.value}"

    @property
    def uplink(self) -> bool:
        return self.channel.uplink


def hub_subscriptions(group: str = HUB_SHARE_GROUP, shared: bool = True) -> list[str]:
    """The topic filters a hub worker subscribes to (one per uplink channel)."""
    validate_id(group, "group")
    prefix = f"$share/{group}/" if shared else ""
    return [f"{prefix}{GATEWAY_PREFIX}/+/{ch.value}" for ch in sorted(UPLINK_CHANNELS, key=lambda c: c.value)]


def gateway_subscriptions(gateway_id: str) -> list[str]:
    """The topic filters a gateway subscribes to: only its own downlink topics."""
    return [str(Topic.of(gateway_id, ch)) for ch in sorted(DOWNLINK_CHANNELS, key=lambda c: c.value)]
