"""A simulated Pi whose UPS cell runs empty goes dark (Last-Will, nothing published) and
boots when mains returns, resending what its store kept — through a real Mosquitto."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import protocols as p
from firmware_sim.errors import SimError
from firmware_sim.firmware import UpsHat
from firmware_sim.firmware.driver import play
from firmware_sim.firmware.models import Drive
from firmware_sim.firmware.pi import SimulatedPi
from firmware_sim.firmware.power import SUPPLY
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.edge.conftest import new_gateway_id


def overrides(tmp_path: Path, broker: Mosquitto, gw: str, sensors: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "gateway_id": gw,
        "environment": "development",
        "data_dir": tmp_path / "data",
        "state_dir": tmp_path / "run",
        "pin_factory": "mock",
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
        "sensors": sensors,
        "outputs": [],
        "poll_ms": 10,
        "heartbeat_s": 3600,
        "telemetry_s": 3600,
        "ack_timeout_s": 0.5,
        "resend_max_s": 1.0,
        "time_sync": "assume_synced",
        "watchdog": False,
    }


def from_zero(drives: list[Drive]) -> list[Drive]:
    """The drives re-timed to start now (to play a phase of a timeline on its own)."""
    t0 = drives[0].t
    return [Drive(d.t - t0, d.sensor, d.role, d.value, d.note) for d in drives]


@pytest.fixture
async def pis() -> AsyncIterator[list[SimulatedPi]]:
    started: list[SimulatedPi] = []
    yield started
    for pi in started:  # a failed test must not leave an agent running
        await pi.power_off()


async def test_an_empty_ups_powers_the_pi_off_and_mains_boots_it(
    tmp_path: Path, mosquitto: Mosquitto, pis: list[SimulatedPi]
) -> None:
    gw = new_gateway_id()
    acking = threading.Event()
    acker = HubAcker(mosquitto.host, mosquitto.port, shared=False, should_ack=lambda m: acking.is_set())
    sensors = [{"id": "power-1", "model": "power-supervisor", "params": {"mains_debounce_ms": 300}}]
    pi = SimulatedPi(None, overrides(tmp_path, mosquitto, gw, sensors))
    pis.append(pi)
    ups = UpsHat(backup_s=4.0, recharge_s=2.0)  # a cell that lasts 4 s
    drives = ups.mains_loss(0.0, duration=6.0, step=0.2)
    cut = next(d.t for d in drives if d.role == SUPPLY and d.value == 1.0)
    back = next(d.t for d in drives if d.role == SUPPLY and d.value == 0.0)

    def statuses() -> list[str]:
        return [s.reason for s in acker.of(gw, p.Channel.STATUS)]

    try:
        await pi.boot()
        await until(lambda: "birth" in statuses(), what="birth")
        # on battery: mains_lost is recorded, sent, and not acked (the hub is slow today)
        await play([d for d in drives if d.t < cut], pi)
        lost = await until(
            lambda: [e for e in acker.of(gw, p.Channel.EVENT) if e.kind is p.EventKind.MAINS_LOST],
            what="mains_lost",
        )
        # the cell is empty: the HAT cuts the supply; the broker says the gateway is gone
        await play(from_zero([d for d in drives if cut <= d.t < back]), pi)
        assert not pi.powered and pi.exits == [-9]
        await until(lambda: "lwt" in statuses(), what="Last-Will")
        sent_before = sum(e.id == lost[0].id for e in acker.of(gw, p.Channel.EVENT))
        # mains is back: the Pi boots, the agent resends what its store kept, now acked
        acking.set()
        await play(from_zero([d for d in drives if d.t >= back]), pi)
        assert pi.powered and pi.boots == 2
        await until(
            lambda: sum(e.id == lost[0].id for e in acker.of(gw, p.Channel.EVENT)) > sent_before,
            what="the kept mains_lost resent after the boot",
        )
        # the charger starts from an empty cell: battery_low at boot, restored once charged
        await until(
            lambda: [
                e
                for e in acker.of(gw, p.Channel.EVENT)
                if e.kind is p.EventKind.BATTERY_LOW and e.state is p.EventState.RESTORE
            ],
            what="battery_low restored by the charger",
        )
        state = await pi.shutdown()
        await until(lambda: statuses()[-1] == "shutdown", what="a clean stop at the end says goodbye")
    finally:
        acker.close()
    assert state is not None and state["gateway_id"] == gw
    # dark means dark: no goodbye before the Last-Will, nothing between it and the next birth
    uplink = [(t.channel, getattr(m, "reason", None)) for t, m in acker.uplink() if t.gateway_id == gw]
    lwt = uplink.index((p.Channel.STATUS, "lwt"))
    assert (p.Channel.STATUS, "shutdown") not in uplink[:lwt]
    assert uplink[lwt + 1] == (p.Channel.STATUS, "birth")
    resent = [e for e in acker.of(gw, p.Channel.EVENT) if e.id == lost[0].id]
    assert {(e.seq, e.state) for e in resent} == {(lost[0].seq, p.EventState.ALARM)}  # same event


async def test_a_pi_that_cannot_boot_or_is_driven_wrong_is_a_sim_error(
    tmp_path: Path, mosquitto: Mosquitto, pis: list[SimulatedPi]
) -> None:
    broken = SimulatedPi(
        None, overrides(tmp_path, mosquitto, new_gateway_id(), [{"id": "x-1", "model": "nope"}])
    )
    pis.append(broken)
    with pytest.raises(SimError, match="did not boot"):
        await broken.boot()
    pi = SimulatedPi(None, overrides(tmp_path / "b", mosquitto, new_gateway_id(), []))
    pis.append(pi)
    await pi.boot()
    await pi.apply(Drive(0.0, "smoke-9", "contact", 1.0))
    with pytest.raises(SimError, match="exited with 2"):
        await pi.shutdown()
