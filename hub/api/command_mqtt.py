"""A :class:`hub.api.context.CommandSender` over its own aiomqtt connection (hub account):
connected lazily, dropped after a failure and connected again by the next command."""

from __future__ import annotations

import aiomqtt

from hub.api.errors import CommandNotSent
from hub.mqtt import LazyPublisher
from protocols import Channel, Command, Topic, encode


class MqttCommandSender(LazyPublisher):
    async def send(self, command: Command) -> None:
        topic = str(Topic.of(command.gw, Channel.COMMAND))
        try:
            await self.publish(topic, encode(command))
        except aiomqtt.MqttError as exc:
            raise CommandNotSent(f"command to {topic} not published: {exc}") from exc
