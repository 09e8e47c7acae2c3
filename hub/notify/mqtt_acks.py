"""An :class:`~hub.notify.home.AckPublisher` over its own aiomqtt connection (hub account).

Connected lazily and reconnected after a failure; a failed publish raises
:class:`DeliveryFailed`, so the outbox retries the ack like any other notification.
"""

from __future__ import annotations

import aiomqtt

from hub.downlink import ack_topic
from hub.mqtt import LazyPublisher
from hub.notify.errors import DeliveryFailed
from protocols import Ack, encode


class MqttAckPublisher(LazyPublisher):
    async def publish_ack(self, ack: Ack) -> None:
        topic = ack_topic(ack.gw)
        try:
            await self.publish(topic, encode(ack))
        except aiomqtt.MqttError as exc:
            raise DeliveryFailed(f"ack to {topic} not published: {exc}") from exc
