"""Decode and check one downlink message (Ack, Config, Command) for this gateway.

Anything wrong (another gateway's topic or payload, an uplink channel, bad JSON, wrong
types, oversized) becomes a :class:`DownlinkError` with the protocol's reason code, which
the agent logs and counts; it never raises anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.errors import DownlinkError
from protocols import Ack, Command, Config, ProtocolError, Topic, decode_for

Downlink = Ack | Config | Command


def parse(gateway_id: str, topic: str, payload: bytes) -> Downlink:
    try:
        t = Topic.parse(topic)
    except ProtocolError as exc:
        raise DownlinkError(exc.reason, f"topic {topic[:120]!r}: {exc}") from exc
    if t.gateway_id != gateway_id:
        raise DownlinkError("wrong_gateway", f"topic {topic!r} is not for gateway {gateway_id!r}")
    if t.uplink:
        raise DownlinkError("uplink_topic", f"topic {topic!r} is an uplink channel")
    try:
        _t, msg = decode_for(t, payload)
    except ProtocolError as exc:
        raise DownlinkError(exc.reason, f"{t.channel.value} ({len(payload)} bytes): {exc}") from exc
    assert isinstance(msg, Ack | Config | Command)
    return msg


@dataclass
class RejectCounter:
    """Rejected downlink messages by reason (reported in status and `safehome edge status`)."""

    by_reason: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str) -> None:
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())
