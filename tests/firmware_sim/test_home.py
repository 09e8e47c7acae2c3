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
from firmware_sim.firmware.home import drives_of
from tests.support.acker import Acker
from tests.support.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("steps: [{at: 1s, smoke: explode}]", "smoke cannot 'explode'"),
        ("steps: [{at: 1s}]", "exactly one device"),
        ("steps: [{at: soon, panic: press}]", "not a duration"),
        ("steps: [{panic: press, colour: red}]", "bad arguments for panic press"),
        ("nothing: here", "list 'steps'"),
    ],
)
def test_bad_home_scripts_are_named(text: str, msg: str) -> None:
    with pytest.raises(ScenarioError, match=msg):
        drives_of(yaml.safe_load(text))


def test_sim_home_plays_a_script_on_a_real_agent(tmp_path: Path, mosquitto: Mosquitto) -> None:
    gw = f"gw-home-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "s.yaml"
    script.write_text("steps: [{at: 0.5s, smoke: cooking, seconds: 0.6}]\n")
    acker = Acker(mosquitto.host, mosquitto.port)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "safehome", "sim", "home", str(script), "--gateway", gw, "--host", mosquitto.host,
             "--port", str(mosquitto.port), "--data-dir", str(tmp_path / "agent"), "--linger", "2"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        deadline = time.monotonic() + 10
        while len(acker.of(gw, p.Channel.EVENT)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(e.kind, e.state) for e in acker.of(gw, p.Channel.EVENT)] == [
            (p.EventKind.SMOKE, p.EventState.ALARM), (p.EventKind.SMOKE, p.EventState.RESTORE),
        ]  # fmt: skip
        assert "cooking smoke" in proc.stderr
    finally:
        acker.close()
