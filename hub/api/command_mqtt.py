"""A :class:`hub.api.context.CommandSender` over its own aiomqtt connection (hub account):
connected lazily, dropped after a failure and connected again by the next command."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import aiomqtt

from hub.api.errors import CommandNotSent
from hub.mqtt import make_client
from hub.settings import MqttSettings
from protocols import Channel, Command, Topic, encode


class MqttCommandSender:
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
                self._stack, self._client = stack, client
            return self._client

    async def send(self, command: Command) -> None:
        topic = str(Topic.of(command.gw, Channel.COMMAND))
        try:
            client = await self._connected()
            await client.publish(topic, encode(command), qos=1, timeout=self._timeout)
        except aiomqtt.MqttError as exc:
            await self.close()
            raise CommandNotSent(f"command to {topic} not published: {exc}") from exc

    async def close(self) -> None:
        async with self._lock:
            stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            try:
                await stack.aclose()
            except aiomqtt.MqttError:
                pass  # already gone
