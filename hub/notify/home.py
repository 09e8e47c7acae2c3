"""Telling the home: an Ack item (acknowledged / dispatched …) on the gateway's ack topic.

The MQTT client of the hub implements :class:`AckPublisher`; this channel only builds the
protocol message, so the closed loop is tested without knowing the client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from hub.notify.channel import Delivered, Message
from hub.notify.errors import DeliveryFailed
from hub.notify.names import ChannelName
from protocols import Ack, AckItem, AckStatus


class AckPublisher(Protocol):
    async def publish_ack(self, ack: Ack) -> None:
        """Publish ``ack`` (QoS 1) on ``safehome/v1/gw/{ack.gw}/ack``.

        Raise :class:`DeliveryFailed` (or OSError/TimeoutError) when it did not go out."""
        ...


def build_ack(message: Message, now_ms: int) -> Ack:
    p = message.payload
    event_id = p.get("event_id")
    if not event_id:
        raise DeliveryFailed(f"alarm {message.alarm_id} has no event id to acknowledge", retryable=False)
    item = AckItem(
        id=str(event_id),
        status=AckStatus(str(p["status"])),
        alarm_id=message.alarm_id,
        by=str(p.get("by") or "")[:120] or None,
    )
    return Ack(gw=message.address, ts=now_ms, items=[item])


class HomeAckChannel:
    name = ChannelName.HOME

    def __init__(
        self, publisher: AckPublisher, wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)
    ) -> None:
        self._publisher = publisher
        self._wall_ms = wall_ms

    async def send(self, message: Message) -> Delivered:
        ack = build_ack(message, self._wall_ms())
        try:
            await self._publisher.publish_ack(ack)
        except DeliveryFailed:
            raise
        except (OSError, RuntimeError, TimeoutError) as exc:
            raise DeliveryFailed(f"cannot publish ack to {message.address}: {exc!r}") from exc
        return Delivered(None, f"ack {ack.items[0].status.value} published")
