"""An :class:`~hub.notify.home.AckPublisher` over its own aiomqtt connection (hub account).

Connected lazily and reconnected after a failure; a failed publish raises
:class:`DeliveryFailed`, so the outbox retries the ack like any other notification.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import aiomqtt

from hub.downlink import ack_topic
from hub.mqtt import make_client, set_nodelay
from hub.notify.errors import DeliveryFailed
from hub.settings import MqttSettings
from protocols import Ack, encode


class MqttAckPublisher:
    def __init__(self, settings: MqttSettings, identifier: str, timeout_s: float = 10.0) -> None:
        self._settings = settings
        self._identifier = identifier
        self._timeout = timeout_s
        self._stack: AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> aiomqtt.Client:
        async with self._lock:
            if self._client is None:
                stack = AsyncExitStack()
                client = make_client(
                    self._settings, self._identifier, clean_session=True, timeout=self._timeout
                )
                await stack.enter_async_context(client)
                set_nodelay(client)
                self._stack, self._client = stack, client
            return self._client

    async def publish_ack(self, ack: Ack) -> None:
        topic = ack_topic(ack.gw)
        try:
            client = await self._connected()
            await client.publish(topic, encode(ack), qos=1, timeout=self._timeout)
        except aiomqtt.MqttError as exc:
            await self.close()
            raise DeliveryFailed(f"ack to {topic} not published: {exc}") from exc

    async def close(self) -> None:
        async with self._lock:
            stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            try:
                await stack.aclose()
            except aiomqtt.MqttError:
                pass  # already gone; nothing to clean up
