"""`safehome sim home`: a home script runs on a real edge agent (subprocess) and reaches the broker."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

import protocols as p
from firmware_sim.errors import ScenarioError
from firmware_sim.firmware.home import drives_of, load_home_script
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[2]


def sim_home(script: Path, gw: str, broker: Mosquitto, data_dir: Path, linger: int) -> subprocess.CompletedProcess[str]:
    """``safehome sim home SCRIPT`` as a subprocess against ``broker``; fails on a non-zero exit."""
    proc = subprocess.run(
        [sys.executable, "-m", "safehome", "sim", "home", str(script), "--gateway", gw, "--host", broker.host,
         "--port", str(broker.port), "--data-dir", str(data_dir), "--linger", str(linger)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc


def test_script_expands_to_sorted_drives_of_the_named_sensors() -> None:
    drives = drives_of(
        yaml.safe_load("""
steps:
  - {at: 1m, panic: press}
  - {at: 5s, smoke: alarm, duration: 10s, sensor: smoke-2}
""")
    )
    assert [(d.t, d.sensor, d.role, d.value) for d in drives] == [
        (5.0, "smoke-2", "contact", 1.0), (15.0, "smoke-2", "contact", 0.0),
        (60.0, "panic-1", "button", 1.0), (60.4, "panic-1", "button", 0.0),
    ]  # fmt: skip


def test_script_drives_the_supervised_smoke_detector_and_the_ups() -> None:
    drives = drives_of(
        yaml.safe_load("""
steps:
  - {at: 10s, supervised_smoke: tamper, duration: 5s}
  - {at: 20s, supervised_smoke: low_battery_chirp}
  - {at: 1m, supervised_smoke: battery_replaced}
  - {at: 2m, power: brownout, width: 0.5s}
  - {at: 3m, power: mains_loss, duration: 10m, step: 5m}
  - {at: 1h, power: battery_drain, from_v: 3.9, to_v: 3.5, over: 10m, step: 10m}
  - {at: 2h, smoke: low_battery_chirp}
""")
    )
    # the dry-contact smoke-1 has no trouble output: its low_battery_chirp drives nothing
    roles = [(d.t, d.sensor, d.role, d.value) for d in drives if d.role != "battery"]
    assert roles == [
        (10.0, "smoke-2", "tamper", 1.0), (15.0, "smoke-2", "tamper", 0.0), (20.0, "smoke-2", "trouble", 1.0),
        (60.0, "smoke-2", "trouble", 0.0), (120.0, "power-1", "mains", 1.0), (120.5, "power-1", "mains", 0.0),
        (180.0, "power-1", "mains", 1.0), (780.0, "power-1", "mains", 0.0),
    ]  # fmt: skip
    drain = [round(d.value * 4.95, 2) for d in drives if d.role == "battery" and d.t >= 3600]
    assert drain == [3.9, 3.5]


@pytest.mark.parametrize(
    "path", sorted((ROOT / "firmware_sim/scenarios/home").glob("*.yaml")), ids=lambda p: p.name
)
def test_shipped_home_scripts_parse(path: Path) -> None:
    assert load_home_script(path)


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("steps: [{at: 1s, smoke: explode}]", "smoke cannot 'explode'"),
        ("steps: [{at: 1s}]", "exactly one device"),
        ("steps: [{at: soon, panic: press}]", "not a duration"),
        ("steps: [{panic: press, colour: red}]", "bad arguments for panic press"),
        ("nothing: here", "list 'steps'"),
        (
            "steps: [{power: mains_loss, duration: 0s}]",
            "bad arguments for power mains_loss: duration 0.0 must be > 0",
        ),
        ("steps: [{power: battery_drain, to_v: 9}]", "bad arguments for power battery_drain: 9 V is outside"),
        ("steps: [{smoke: tamper}]", "smoke cannot 'tamper'"),
        ("steps: [{supervised_smoke: tamper, duration: -1s}]", "not a duration"),
    ],
)
def test_bad_home_scripts_are_named(text: str, msg: str) -> None:
    with pytest.raises(ScenarioError, match=msg):
        drives_of(yaml.safe_load(text))


def test_sim_home_plays_a_script_on_a_real_agent(tmp_path: Path, mosquitto: Mosquitto) -> None:
    gw = f"gw-home-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "s.yaml"
    script.write_text("steps: [{at: 0.5s, smoke: cooking, seconds: 0.6}]\n")
    acker = HubAcker(mosquitto.host, mosquitto.port, shared=False)
    try:
        proc = sim_home(script, gw, mosquitto, tmp_path / "agent", linger=2)
        deadline = time.monotonic() + 10
        while len(acker.of(gw, p.Channel.EVENT)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(e.kind, e.state) for e in acker.of(gw, p.Channel.EVENT)] == [
            (p.EventKind.SMOKE, p.EventState.ALARM), (p.EventKind.SMOKE, p.EventState.RESTORE),
        ]  # fmt: skip
        assert "cooking smoke" in proc.stderr
    finally:
        acker.close()


def test_sim_home_wires_the_supervised_detector_and_ups_by_default(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Only the scripted troubles arrive: the NC base loop and power-good line start at rest."""
    gw = f"gw-home-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "s.yaml"
    script.write_text(
        "steps:\n"
        "  - {at: 0.2s, supervised_smoke: tamper, duration: 0.6s}\n"
        "  - {at: 0.2s, power: mains_loss, duration: 2.5s, step: 0.5s}\n"
    )
    acker = HubAcker(mosquitto.host, mosquitto.port, shared=False)
    try:
        proc = sim_home(script, gw, mosquitto, tmp_path / "agent", linger=3)
        deadline = time.monotonic() + 10
        while len(acker.of(gw, p.Channel.EVENT)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        got = sorted({(e.sensor, e.kind.value, e.state.value) for e in acker.of(gw, p.Channel.EVENT)})
        assert got == [
            ("power-1", "mains_lost", "alarm"), ("power-1", "mains_lost", "restore"),
            ("smoke-2", "tamper", "alarm"), ("smoke-2", "tamper", "restore"),
        ]  # fmt: skip
        assert "mains lost" in proc.stderr and "taken off its base" in proc.stderr
    finally:
        acker.close()


def test_sim_home_pi_goes_dark_when_its_ups_is_empty_and_boots_on_mains(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    gw = f"gw-home-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "s.yaml"
    # mains_lost is recorded after the 2 s debounce, the 3 s cell empties, mains is back at 5 s
    script.write_text(
        "steps: [{at: 0.2s, power: mains_loss, duration: 5s, step: 0.5s, backup: 3s, recharge: 1s}]\n"
    )
    acker = HubAcker(mosquitto.host, mosquitto.port, shared=False)
    try:
        proc = sim_home(script, gw, mosquitto, tmp_path / "agent", linger=2)
        deadline = time.monotonic() + 10
        while (
            "shutdown" not in [s.reason for s in acker.of(gw, p.Channel.STATUS)]
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert [s.reason for s in acker.of(gw, p.Channel.STATUS)] == ["birth", "lwt", "birth", "shutdown"]
        assert (p.EventKind.MAINS_LOST, p.EventState.ALARM) in {
            (e.kind, e.state) for e in acker.of(gw, p.Channel.EVENT)
        }
        assert "the HAT cuts the gateway's supply" in proc.stderr and "the gateway boots" in proc.stderr
        assert "agent state: {" in proc.stderr
    finally:
        acker.close()


def test_a_power_step_may_size_the_cell() -> None:
    drives = drives_of(
        yaml.safe_load("steps: [{power: mains_loss, duration: 2m, step: 1m, backup: 1m, recharge: 1m}]")
    )
    assert [(d.t, d.value) for d in drives if d.role == "supply"] == [(60.0, 1.0), (120.0, 0.0)]
    assert not [
        d
        for d in drives_of(yaml.safe_load("steps: [{power: mains_loss, duration: 2m}]"))
        if d.role == "supply"
    ]
