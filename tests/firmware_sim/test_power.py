"""Tamper, battery and mains as real inputs: firmware models drive the mock pins / ADC of a
REAL edge agent (supervised smoke detector, UPS HAT) and the events reach the broker."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

import protocols as p
from edge.agent import Agent
from firmware_sim.errors import SimError
from firmware_sim.firmware import SupervisedSmokeDetector, UpsHat
from firmware_sim.firmware.driver import PinDriver, play
from firmware_sim.firmware.power import LI_ION_OCV, SUPPLY, ocv, soc_at
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, running, settings_for

FAST_MAINS = {"mains_debounce_ms": 300}  #: keeps the tests short; the default is 2 s


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def acker(mosquitto: Mosquitto) -> Iterator[HubAcker]:
    a = HubAcker(mosquitto.host, mosquitto.port, shared=False)
    yield a
    a.close()


def wired_agent(tmp_path: Path, mosquitto: Mosquitto, factory: MockFactory, mains: dict[str, Any]) -> Agent:
    sensors = [
        {"id": "smoke-2", "model": "smoke-relay-supervised"},
        {"id": "power-1", "model": "power-supervisor", "params": mains},
    ]
    agent = make_agent(settings_for(tmp_path, mosquitto, sensors=sensors), factory)
    PinDriver(agent).settle()  # detector on its base, power good: nothing to report at start
    return agent


def events(acker: HubAcker, gw: str) -> list[p.Event]:
    """Each event once (a resend keeps its id)."""
    return list({e.id: e for e in acker.of(gw, p.Channel.EVENT)}.values())


def states(acker: HubAcker, gw: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in events(acker, gw):
        out.setdefault(e.kind.value, []).append(e.state.value)
    return out


# --- on a real agent ------------------------------------------------------------------------


async def test_base_tamper_and_trouble_relay_raise_and_restore(tmp_path: Path, mosquitto: Mosquitto,
                                                              factory: MockFactory, acker: HubAcker) -> None:  # fmt: skip
    agent = wired_agent(tmp_path, mosquitto, factory, FAST_MAINS)
    smoke = SupervisedSmokeDetector()
    async with running(agent):
        drives = [
            *smoke.tamper(0.0, duration=0.6),
            *smoke.low_battery_chirp(0.9),
            *smoke.battery_replaced(1.8),
        ]
        await play(drives, PinDriver(agent))
        await until(lambda: len(events(acker, agent.gw)) >= 4, what="tamper and battery_low raise + restore")
    assert states(acker, agent.gw) == {"tamper": ["alarm", "restore"], "battery_low": ["alarm", "restore"]}
    assert {e.sensor for e in events(acker, agent.gw)} == {"smoke-2"}
    assert all(e.alarm_class is p.AlarmClass.TROUBLE for e in events(acker, agent.gw))


async def test_mains_loss_drains_the_backup_battery_and_both_restore(tmp_path: Path, mosquitto: Mosquitto,
                                                                     factory: MockFactory, acker: HubAcker) -> None:  # fmt: skip
    agent = wired_agent(tmp_path, mosquitto, factory, FAST_MAINS)
    ups = UpsHat(backup_s=1.05, recharge_s=0.6)  # an outage that nearly empties the battery, in seconds
    async with running(agent):
        await play(ups.mains_loss(0.0, duration=1.0, step=0.05), PinDriver(agent))
        await until(
            lambda: len(events(acker, agent.gw)) >= 4, what="mains_lost and battery_low raise + restore"
        )
        charged = lambda: agent.sensor("power-1").readings().get("battery_v") == 4.2  # noqa: E731
        await until(charged, what="the agent's poll to read the recharged battery")
        agent.record_telemetry()
        await until(lambda: acker.of(agent.gw, p.Channel.TELEMETRY), what="telemetry")
    assert states(acker, agent.gw) == {
        "mains_lost": ["alarm", "restore"],
        "battery_low": ["alarm", "restore"],
    }
    low = [e for e in events(acker, agent.gw) if e.kind is p.EventKind.BATTERY_LOW]
    assert all(e.sensor == "power-1" and e.values is not None for e in low)
    assert low[0].values and low[0].values.battery_v is not None and low[0].values.battery_v < 3.6
    assert low[1].values and low[1].values.battery_v is not None and low[1].values.battery_v > 3.8
    [tm] = acker.of(agent.gw, p.Channel.TELEMETRY)
    readings = {(r.sensor, r.metric): r.value for r in tm.readings}
    assert readings[("power-1", "battery_v")] == 4.2  # recharged
    assert readings[("power-1", "mains_lost_contact")] == 0.0


async def test_a_brownout_shorter_than_the_debounce_raises_nothing(tmp_path: Path, mosquitto: Mosquitto,
                                                                   factory: MockFactory, acker: HubAcker) -> None:  # fmt: skip
    agent = wired_agent(tmp_path, mosquitto, factory, {})  # the default 2 s mains debounce
    async with running(agent):
        # the brown-out, then a tamper: once the tamper is in, the brown-out had its chance
        drives = [*UpsHat().brownout(0.0, width=0.5), *SupervisedSmokeDetector().tamper(0.8, duration=0.5)]
        await play(drives, PinDriver(agent))
        await until(lambda: len(events(acker, agent.gw)) >= 2, what="tamper raise + restore")
    assert states(acker, agent.gw) == {"tamper": ["alarm", "restore"]}


async def test_battery_restores_only_above_the_hysteresis_band(tmp_path: Path, mosquitto: Mosquitto,
                                                               factory: MockFactory, acker: HubAcker) -> None:  # fmt: skip
    agent = wired_agent(tmp_path, mosquitto, factory, FAST_MAINS)
    ups = UpsHat()
    drives = [
        *ups.battery_drain(0.0, from_v=3.9, to_v=3.5, over=0.3, step=0.05),  # below 3.6 V: low
        *ups.battery_drain(0.4, from_v=3.5, to_v=3.78, over=0.3, step=0.05),  # inside the band
        *ups.battery_drain(0.8, from_v=3.78, to_v=4.0, over=0.3, step=0.05),  # above 3.8 V
    ]
    async with running(agent):
        await play(drives, PinDriver(agent))
        await until(lambda: len(events(acker, agent.gw)) >= 2, what="battery_low raise + restore")
    [alarm, restore] = events(acker, agent.gw)
    assert (alarm.kind, alarm.state, restore.kind, restore.state) == (
        p.EventKind.BATTERY_LOW, p.EventState.ALARM, p.EventKind.BATTERY_LOW, p.EventState.RESTORE,
    )  # fmt: skip
    assert (
        restore.values is not None and restore.values.battery_v is not None and restore.values.battery_v > 3.8
    )


async def test_an_unwired_tamper_loop_is_reported_at_start(tmp_path: Path, mosquitto: Mosquitto,
                                                           factory: MockFactory, acker: HubAcker) -> None:  # fmt: skip
    """Without settle() nothing holds the NC loop closed: like a cut wire, it is a tamper."""
    agent = make_agent(
        settings_for(tmp_path, mosquitto, sensors=[{"id": "smoke-2", "model": "smoke-relay-supervised"}]),
        factory,
    )
    async with running(agent):
        await until(lambda: events(acker, agent.gw), what="tamper at start")
    assert [(e.kind, e.state) for e in events(acker, agent.gw)] == [(p.EventKind.TAMPER, p.EventState.ALARM)]


# --- pure models -----------------------------------------------------------------------------


def test_li_ion_curve_is_monotonic_with_a_knee_and_inverts() -> None:
    volts = [ocv(i / 100) for i in range(101)]
    assert all(b > a for a, b in itertools.pairwise(volts))
    assert (volts[0], volts[100]) == (3.0, 4.2)
    assert volts[10] - volts[0] > 4 * (volts[60] - volts[40])  # the knee falls far faster than the plateau
    for soc, v in LI_ION_OCV:
        assert soc_at(v) == pytest.approx(soc)
    with pytest.raises(ValueError, match=r"4.5 V is outside the Li-ion cell's 3.0..4.2 V"):
        soc_at(4.5)


def test_mains_loss_discharges_along_the_curve_and_recharges() -> None:
    ups = UpsHat(backup_s=4 * 3600, recharge_s=3 * 3600)
    drives = ups.mains_loss(100.0, duration=4 * 3600, step=60)
    mains = [(d.t, d.value) for d in drives if d.role == "mains"]
    assert mains == [(100.0, 1.0), (100.0 + 4 * 3600, 0.0)]
    volts = [(d.t, d.value * ups.full_scale_v) for d in drives if d.role == "battery"]
    during = [v for t, v in volts if t < 100 + 4 * 3600]
    after = [v for t, v in volts if t >= 100 + 4 * 3600]
    assert all(b <= a for a, b in itertools.pairwise(during))  # never rises on battery
    assert during[0] == pytest.approx(4.2 - ups.sag_v, abs=1e-3)
    first_low = next(i for i, v in enumerate(during) if v < 3.6)
    assert first_low > 0.85 * len(during)  # the plateau carries most of the outage; low near the end
    assert all(b >= a for a, b in itertools.pairwise(after))  # the charger only lifts it
    assert after[-1] == pytest.approx(4.2, abs=1e-3) and volts[-1][0] == pytest.approx(
        100 + 4 * 3600 + 3 * 3600
    )
    assert all(0.0 <= d.value <= 1.0 for d in drives)


def test_an_outage_longer_than_the_battery_cuts_the_gateway_until_mains_returns() -> None:
    ups = UpsHat(backup_s=3600, recharge_s=3600)
    drives = ups.mains_loss(0.0, duration=2 * 3600, step=60, soc=0.5)  # half a cell: 30 min
    supply = [(d.t, d.value) for d in drives if d.role == SUPPLY]
    assert supply == [(1800.0, 1.0), (7200.0, 0.0)]  # cut when empty, back (the Pi boots) at restore
    dark = [d for d in drives if 1800 < d.t < 7200]
    assert dark == []  # nothing moves while the Pi is off (the cell rests)
    empty = [d for d in drives if d.t == 1800.0 and d.role == "battery"]
    assert [round(d.value * ups.full_scale_v, 2) for d in empty] == [3.0]
    # at restore: the power-good line is back before the Pi boots, and the charger starts from empty
    at_restore = [(d.role, d.value) for d in sorted(drives) if d.t == 7200.0]
    assert at_restore == [("battery", round(ups.battery_v(0.0, "charge") / ups.full_scale_v, 5)),
                          ("mains", 0.0), (SUPPLY, 0.0)]  # fmt: skip
    assert drives[-1].t == pytest.approx(7200 + 3600)  # a full recharge
    # an outage the cell outlasts never cuts the supply
    assert not [d for d in ups.mains_loss(0.0, duration=1800, step=60, soc=0.5) if d.role == SUPPLY]


def test_an_in_process_agent_cannot_lose_its_supply(tmp_path: Path, mosquitto: Mosquitto, factory: MockFactory) -> None:  # fmt: skip
    agent = wired_agent(tmp_path, mosquitto, factory, FAST_MAINS)
    try:
        [cut] = [
            d
            for d in UpsHat(backup_s=1.0).mains_loss(0.0, duration=2.0, step=0.5)
            if d.value == 1.0 and d.role == SUPPLY
        ]
        with pytest.raises(
            SimError, match=r"power-1.*the HAT cuts the gateway's supply.*run it as a SimulatedPi"
        ):
            PinDriver(agent).apply(cut)
    finally:
        agent.close()


def test_short_outage_barely_dents_the_battery_and_recharges_quickly() -> None:
    ups = UpsHat()
    drives = ups.mains_loss(0.0, duration=600, step=60)
    volts = [d.value * ups.full_scale_v for d in drives if d.role == "battery"]
    assert min(volts) > 4.0  # ten minutes of a four-hour backup
    assert drives[-1].t == pytest.approx(600 + (600 / ups.backup_s) * ups.recharge_s)


def test_battery_drain_and_bad_power_arguments() -> None:
    ups = UpsHat()
    drives = ups.battery_drain(0.0, from_v=4.0, to_v=3.4, over=600, step=60)
    volts = [round(d.value * ups.full_scale_v, 2) for d in drives]
    assert (volts[0], volts[-1], len(drives)) == (4.0, 3.4, 11)
    assert all(b < a for a, b in itertools.pairwise(volts))
    assert volts[5] > 3.75  # halfway in time, still on the plateau: the fall comes at the knee
    with pytest.raises(ValueError, match="step 0 must be > 0"):
        ups.mains_loss(0.0, duration=10, step=0)
    with pytest.raises(ValueError, match="duration -1 must be > 0"):
        ups.mains_loss(0.0, duration=-1)
    with pytest.raises(ValueError, match=r"soc 2 outside 0\.\.1"):
        ups.mains_loss(0.0, duration=10, soc=2)
    with pytest.raises(ValueError, match=r"5\.0 V is outside"):
        ups.battery_drain(0.0, from_v=5.0)
    with pytest.raises(ValueError, match="tamper duration 0 s must be > 0"):
        SupervisedSmokeDetector().tamper(0.0, duration=0)


def test_supervised_smoke_low_battery_is_the_trouble_relay() -> None:
    smoke = SupervisedSmokeDetector()
    assert [(d.role, d.value) for d in smoke.low_battery_chirp(1.0) + smoke.battery_replaced(9.0)] == [
        ("trouble", 1.0), ("trouble", 0.0),
    ]  # fmt: skip
    assert [(d.t, d.role, d.value) for d in smoke.tamper(2.0, duration=3.0)] == [
        (2.0, "tamper", 1.0), (5.0, "tamper", 0.0),
    ]  # fmt: skip
    assert [d.role for d in smoke.alarm(0.0, 5.0)] == ["contact", "contact"]  # the smoke relay as before
