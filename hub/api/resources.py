"""What the resource routes need of the worker beyond the database: ``hub/runner.py``
(``build_hub``) hands them the time-series store (readings) and an MQTT sender for gateway
commands, run as a hub service that closes its connection when the worker stops."""

from __future__ import annotations

from hub.api.command_mqtt import MqttCommandSender


class CommandSenderService:
    """Closes the command connection when the worker stops."""

    def __init__(self, sender: MqttCommandSender) -> None:
        self.sender = sender

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.sender.close()
