"""kill -9 right after an alarm is recorded → restart (the real CLI) → delivered with its id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edge.store import read_depth
from protocols import Channel, EventKind, GatewayState
from tests.edge.conftest import OUTPUTS, SENSORS, new_gateway_id
from tests.edge.hub_acker import HubAcker
from tests.support.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[2]


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_toml(path: Path, top: dict[str, Any], mqtt: dict[str, Any],
               tables: dict[str, list[dict[str, Any]]]) -> Path:
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    lines += ["", "[mqtt]"] + [f"{k} = {toml_value(v)}" for k, v in mqtt.items()]
    for name, rows in tables.items():
        for row in rows:
            lines += ["", f"[[{name}]]"] + [f"{k} = {toml_value(v)}" for k, v in row.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def agent_config(tmp_path: Path, broker: Mosquitto, gw: str) -> Path:
    top = {"gateway_id": gw, "environment": "development", "data_dir": str(tmp_path / "data"),
           "state_dir": str(tmp_path / "run"), "pin_factory": "mock", "poll_ms": 10,
           "ack_timeout_s": 0.5, "resend_max_s": 2.0, "time_sync": "assume_synced", "telemetry_s": 3600}
    mqtt = {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5}
    return write_toml(tmp_path / "edge.toml", top, mqtt, {"sensors": SENSORS, "outputs": OUTPUTS})


def test_alarm_survives_kill_9_and_is_delivered_with_its_original_id(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    gw = new_gateway_id()
    config = agent_config(tmp_path, mosquitto, gw)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-m", "tests.edge.agent_child", str(config)], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # blocks until the alarm is recorded (or the child dies)
        assert line.startswith("RECORDED "), (line, child.stderr.read() if child.poll() is not None else "")
        child.send_signal(signal.SIGKILL)  # power cut, right after the commit
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stdout is not None and child.stderr is not None
        child.stdout.close()
        child.stderr.close()
    _, event_id, seq = line.split()
    assert read_depth(tmp_path / "data" / "buffer.sqlite3").get("alarm") == 1

    hub = HubAcker(mosquitto.host, mosquitto.port)
    # the broker saw the connection die: the retained Last-Will says "offline"
    [will] = hub.wait_for_sync(gw, Channel.STATUS, lambda m: m.reason == "lwt")
    assert will.state is GatewayState.OFFLINE
    agent = subprocess.Popen([sys.executable, "-m", "safehome", "edge", "run", "--config", str(config)],
                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        [ev] = hub.wait_for_sync(gw, Channel.EVENT, lambda m: m.id == event_id, within=20)
        assert (ev.kind, ev.sensor, ev.seq) == (EventKind.SMOKE, "smoke-1", int(seq))
        deadline = time.monotonic() + 10
        while read_depth(tmp_path / "data" / "buffer.sqlite3").get("alarm"):
            assert time.monotonic() < deadline, "the ack did not empty the buffer"
            time.sleep(0.05)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(15) == 0
        # a clean shutdown leaves a retained "offline / shutdown" status
        hub.wait_for_sync(gw, Channel.STATUS, lambda m: m.reason == "shutdown")
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        assert agent.stderr is not None
        err = agent.stderr.read()
        agent.stderr.close()
        hub.close()
    assert "Traceback" not in err, err
