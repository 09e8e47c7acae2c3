"""Sensor firmware models drive the MockFactory pins / ADC of a REAL edge agent; the agent's
own debounce, long-press and hysteresis decide what reaches the broker."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

import protocols as p
from firmware_sim.errors import SimError
from firmware_sim.firmware import Drive, GasDetector, PanicButton, SmokeDetector
from firmware_sim.firmware.driver import PinDriver, play
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, running, settings_for


@pytest.fixture
def factory():  # type: ignore[no-untyped-def]
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def acker(mosquitto: Mosquitto):  # type: ignore[no-untyped-def]
    a = HubAcker(mosquitto.host, mosquitto.port, shared=False)
    yield a
    a.close()


def kinds(acker: HubAcker, gw: str) -> list[tuple[str, str]]:
    return [(e.kind.value, e.state.value) for e in acker.of(gw, p.Channel.EVENT)]


async def test_cooking_smoke_chatters_then_alarms_once_and_restores(tmp_path: Path, mosquitto: Mosquitto,
                                                                   factory: MockFactory, acker: HubAcker) -> None:  # fmt: skip
    agent = make_agent(settings_for(tmp_path, mosquitto), factory)
    async with running(agent):
        drives = SmokeDetector().cooking(0.0, random.Random(1), seconds=0.8)
        await play(drives, PinDriver(agent))
        await until(lambda: len(kinds(acker, agent.gw)) >= 2, what="smoke alarm and restore")
    assert kinds(acker, agent.gw) == [("smoke", "alarm"), ("smoke", "restore")]


async def test_a_glitch_raises_nothing_and_panic_long_press_cancels(tmp_path: Path, mosquitto: Mosquitto,
                                                                   factory: MockFactory, acker: HubAcker) -> None:  # fmt: skip
    agent = make_agent(settings_for(tmp_path, mosquitto), factory)
    async with running(agent):
        panic = PanicButton()
        drives = [*SmokeDetector().glitch(0.0), *panic.long_press_cancel(0.3, after=0.8)]
        await play(drives, PinDriver(agent))
        await until(lambda: len(kinds(acker, agent.gw)) >= 2, what="panic alarm and cancel")
    assert kinds(acker, agent.gw) == [("panic", "alarm"), ("panic", "restore")]


async def test_accidental_double_press_raises_the_alarm_again_never_cancels(tmp_path: Path, mosquitto: Mosquitto,
                                                                          factory: MockFactory, acker: HubAcker) -> None:  # fmt: skip
    agent = make_agent(settings_for(tmp_path, mosquitto), factory)
    async with running(agent):
        await play(PanicButton().double_press(0.0), PinDriver(agent))
        await until(lambda: len(kinds(acker, agent.gw)) >= 2, what="two panic alarms")
    assert kinds(acker, agent.gw) == [("panic", "alarm"), ("panic", "alarm")]


async def test_gas_leak_ramps_through_the_adc_alarms_and_restores_after_ventilation(
    tmp_path: Path, mosquitto: Mosquitto, factory: MockFactory, acker: HubAcker
) -> None:
    agent = make_agent(settings_for(tmp_path, mosquitto), factory)
    async with running(agent):
        drives = GasDetector().leak(0.0, peak=30.0, ramp=0.6, hold=0.3, vent=0.6, step=0.05)
        await play(drives, PinDriver(agent))
        await until(lambda: len(kinds(acker, agent.gw)) >= 2, what="gas alarm and restore")
    events = acker.of(agent.gw, p.Channel.EVENT)
    assert kinds(acker, agent.gw) == [("gas", "alarm"), ("gas", "restore")]
    assert events[0].values is not None and events[0].values.lel is not None and events[0].values.lel >= 20.0


def test_gas_curve_and_relay_follow_the_thresholds() -> None:
    gas = GasDetector()
    drives = gas.leak(0.0, peak=40, ramp=300, hold=120, vent=180, step=5)
    relay = [(d.t, d.value) for d in drives if d.role == "contact"]
    assert relay == [(150.0, 1.0), (535.0, 0.0)]  # 20 %LEL at 150 s; 15 %LEL at 532.5 s venting
    assert max(d.value for d in drives if d.role == "level") == 0.4
    assert SmokeDetector().low_battery_chirp(0.0) == []


async def test_driving_an_unknown_sensor_or_role_is_a_clear_error(tmp_path: Path, mosquitto: Mosquitto,
                                                                  factory: MockFactory) -> None:  # fmt: skip
    agent = make_agent(settings_for(tmp_path, mosquitto), factory)
    try:
        with pytest.raises(SimError, match="no sensor 'smoke-9'"):
            PinDriver(agent).apply(Drive(0, "smoke-9", "contact", 1.0))
        with pytest.raises(SimError, match="no input role 'tamper'"):
            PinDriver(agent).apply(Drive(0, "smoke-1", "tamper", 1.0))
    finally:
        agent.close()
