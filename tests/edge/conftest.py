"""Edge fixtures: unique gateway ids, agent settings on a test broker, an in-process agent."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from edge.agent import Agent
from edge.clock import Clock, FixedProbe
from edge.settings import EdgeSettings, load_settings
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from safehome.testing.toml import write_toml

SENSORS = [
    {"id": "smoke-1", "model": "smoke-dry-contact"},
    {"id": "gas-1", "model": "gas-detector"},
    {"id": "panic-1", "model": "panic-button"},
]
OUTPUTS = [{"id": "buzzer-1", "model": "buzzer"}, {"id": "led-1", "model": "status-led"}]


def new_gateway_id() -> str:
    return f"gw-t{uuid.uuid4().hex[:10]}"


def settings_for(tmp_path: Path, broker: Mosquitto, **overrides: Any) -> EdgeSettings:
    base: dict[str, Any] = {
        "gateway_id": new_gateway_id(),
        "environment": "development",
        "data_dir": tmp_path / "data",
        "state_dir": tmp_path / "run",
        "pin_factory": "mock",
        "mqtt": {
            "host": broker.host,
            "port": broker.port,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "connect_timeout_s": 5,
        },
        "sensors": SENSORS,
        "outputs": OUTPUTS,
        "poll_ms": 10,
        "heartbeat_s": 30,
        "telemetry_s": 3600,
        "ack_timeout_s": 0.5,
        "resend_max_s": 2.0,
        "time_sync": "assume_synced",
        "watchdog": False,
    }
    base.update(overrides)
    return load_settings(None, **base)


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()  # pins are shared by every MockFactory instance: leave none driven


@pytest.fixture
def acker(mosquitto: Mosquitto) -> Iterator[HubAcker]:
    a = HubAcker(mosquitto.host, mosquitto.port)
    yield a
    a.close()


@contextlib.asynccontextmanager
async def running(agent: Agent, *, wait_link: bool = True) -> AsyncIterator[Agent]:
    task = asyncio.create_task(agent.run())
    try:
        if wait_link:
            await until(agent.link_up.is_set, what="uplink")
        yield agent
    finally:
        agent.stop()
        await asyncio.wait_for(task, 15)


def make_agent(settings: EdgeSettings, factory: MockFactory, **kw: Any) -> Agent:
    return Agent(settings, factory=factory, clock=Clock(FixedProbe(True)), **kw)


def agent_config(tmp_path: Path, broker: Mosquitto, gw: str, data_dir: Path | None = None) -> Path:
    """The agent's settings file for a process of its own (mock pins, fast resends)."""
    top = {
        "gateway_id": gw,
        "environment": "development",
        "data_dir": str(data_dir or tmp_path / "data"),
        "state_dir": str(tmp_path / "run"),
        "pin_factory": "mock",
        "poll_ms": 10,
        "ack_timeout_s": 0.5,
        "resend_max_s": 2.0,
        "time_sync": "assume_synced",
        "telemetry_s": 3600,
    }
    mqtt = {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5}
    return write_toml(tmp_path / "edge.toml", top, mqtt, {"sensors": SENSORS, "outputs": OUTPUTS})
