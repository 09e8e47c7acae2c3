"""Hub extension (``hub.runner.EXTENSIONS``, after the alarm engine mounted the API): hands
the resource routes what they need of the worker, the time-series store (readings) and an
MQTT sender for gateway commands."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import FastAPI

from hub.api.command_mqtt import MqttCommandSender
from hub.api.context import ApiContext
from hub.mqtt import hub_client_id
from hub.timeseries.base import TimeSeriesStore


class HubLike(Protocol):
    settings: Any
    app: FastAPI
    timeseries: TimeSeriesStore
    services: list[Any]


class _SenderService:
    """Closes the command connection when the worker stops."""

    def __init__(self, sender: MqttCommandSender) -> None:
        self.sender = sender

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.sender.close()


def configure(hub: HubLike) -> None:
    ctx = getattr(hub.app.state, "alarm_api", None)
    if not isinstance(ctx, ApiContext):
        raise RuntimeError(
            "hub.api.resources:configure must come after the API is mounted (hub.alarms.service)"
        )
    ctx.timeseries = hub.timeseries
    sender = MqttCommandSender(hub.settings.mqtt, hub_client_id(hub.settings.worker_id, "commands"))
    ctx.commands = sender
    hub.services.append(_SenderService(sender))
