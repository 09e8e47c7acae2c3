"""Fixtures for simulator tests: a fleet runner on the shared Mosquitto."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from firmware_sim.fleet import Fleet, FleetSettings, GatewaySpec, SensorSpec
from safehome.testing.mosquitto import Mosquitto

_ids = itertools.count(1)


def specs(n: int, prefix: str) -> list[GatewaySpec]:
    sensors = (
        SensorSpec("smoke-1", "smoke-dry-contact", "smoke"),
        SensorSpec("gas-1", "gas-detector", "gas"),
    )
    return [GatewaySpec(f"{prefix}-{i:03d}", sensors) for i in range(n)]


#: The ``run_fleet`` fixture: start a fleet of n unique gateways (keyword settings).
RunFleet = Callable[..., Awaitable[Fleet]]


@pytest.fixture
async def run_fleet(mosquitto: Mosquitto) -> AsyncIterator[RunFleet]:
    """Start fleets of unique gateways on the shared broker; stopped at teardown."""
    running: list[tuple[Fleet, asyncio.Task[None], asyncio.Event]] = []

    async def start(
        n: int = 1, broker: Mosquitto | None = None, gateways: list[GatewaySpec] | None = None, **kw: Any
    ) -> Fleet:
        b = broker or mosquitto
        fast = {"resend_s": 0.3, "resend_max_s": 0.6, "tick_s": 0.02, "reconnect_min_s": 0.05, "reconnect_max_s": 0.2}
        settings = FleetSettings(host=b.host, port=b.port, **{**fast, **kw})
        fleet = Fleet(gateways or specs(n, f"simt{next(_ids)}"), settings)
        await fleet.start()
        stop = asyncio.Event()
        running.append((fleet, asyncio.create_task(fleet.run(stop)), stop))
        return fleet

    yield start
    for fleet, task, stop in running:
        stop.set()
        await task
        await fleet.stop()
