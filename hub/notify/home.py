"""Telling the home: an Ack item (acknowledged / dispatched …) on the gateway's ack topic.

The MQTT client of the hub implements :class:`AckPublisher`; the message is built by
``hub/downlink.py``, so the closed loop is tested without knowing the client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from hub.downlink import alarm_status_ack
from hub.notify.channel import Delivered, Message
from hub.notify.errors import DeliveryFailed
from hub.notify.names import ChannelName
from protocols import Ack


class AckPublisher(Protocol):
    async def publish_ack(self, ack: Ack) -> None:
        """Publish ``ack`` (QoS 1) on ``safehome/v1/gw/{ack.gw}/ack``.

        Raise :class:`DeliveryFailed` (or OSError/TimeoutError) when it did not go out."""
        ...


def build_ack(message: Message, now_ms: int) -> Ack:
    """The home's Ack of ``message`` (``hub/downlink.py``); a row without an event id is
    not retried."""
    ack = alarm_status_ack(message.address, message.alarm_id, message.payload, now_ms)
    if ack is None:
        raise DeliveryFailed(f"alarm {message.alarm_id} has no event id to acknowledge", retryable=False)
    return ack


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
