"""kill -9 right after an alarm is recorded → restart (the real CLI) → delivered with its id;
kill -9 while the disk is full → restart on the still-full disk → no seq used twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from edge.store import read_depth
from protocols import Channel, Event, EventKind, EventState, GatewayState
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from tests.edge.conftest import agent_config, new_gateway_id
from tests.edge.small_disk import fill, small_disk

ROOT = Path(__file__).resolve().parents[2]


def has_id(event_id: str, message: Any) -> bool:
    return bool(message.id == event_id)


def test_alarm_survives_kill_9_and_is_delivered_with_its_original_id(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    gw = new_gateway_id()
    config = agent_config(tmp_path, mosquitto, gw)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.edge.agent_child", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # blocks until the alarm is recorded (or the child dies)
        died = child.poll() is not None and child.stderr is not None
        assert line.startswith("RECORDED "), (line, child.stderr.read() if died and child.stderr else "")
        child.send_signal(signal.SIGKILL)  # power cut, right after the commit
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stdout is not None and child.stderr is not None
        child.stdout.close()
        child.stderr.close()
    _, event_id, seq, _kind = line.split()
    assert read_depth(tmp_path / "data" / "buffer.sqlite3").get("alarm") == 1

    hub = HubAcker(mosquitto.host, mosquitto.port)
    # the broker saw the connection die: the retained Last-Will says "offline"
    [will] = hub.wait_for_sync(gw, Channel.STATUS, lambda m: m.reason == "lwt")
    assert will.state is GatewayState.OFFLINE
    agent = subprocess.Popen(
        [sys.executable, "-m", "safehome", "edge", "run", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
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


def start_child(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.edge.agent_child", str(config), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def power_cut(child: subprocess.Popen[str]) -> str:
    """kill -9; returns what the child logged."""
    if child.poll() is None:
        child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert child.stdout is not None and child.stderr is not None and child.stdin is not None
    err = child.stderr.read()
    for f in (child.stdin, child.stdout, child.stderr):
        f.close()
    return err


def recorded_lines(child: subprocess.Popen[str], until: str) -> list[list[str]]:
    """RECORDED lines (id, seq, kind) up to and including the first of kind ``until``."""
    assert child.stdout is not None
    out: list[list[str]] = []
    while not out or out[-1][2] != until:
        line = child.stdout.readline()  # blocks until the next event (or the child dies)
        assert line.startswith("RECORDED "), (line, out)
        out.append(line.split()[1:])
    return out


def test_full_disk_power_cut_never_reuses_a_seq_and_the_failure_is_loud(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    gw = new_gateway_id()
    hub = HubAcker(mosquitto.host, mosquitto.port)
    with small_disk(tmp_path / "disk") as disk:
        config = agent_config(tmp_path, mosquitto, gw, data_dir=disk)
        child = start_child(config, "--presses", "8")
        try:
            assert child.stdout is not None and child.stdin is not None
            assert child.stdout.readline() == "LINKED\n"  # booted on a healthy disk
            fill(disk)
            child.stdin.write("go\n")
            child.stdin.flush()
            # each press is an alarm to write; the WAL's last page takes a few, then the
            # store refuses: buffer_failed is raised, every event still goes out from RAM
            before = recorded_lines(child, until="buffer_failed")
            for event_id, _seq, _kind in before:
                hub.wait_for_sync(gw, Channel.EVENT, partial(has_id, event_id), within=20)
        finally:
            log1 = power_cut(child)
        assert "database or disk is full" in log1, log1
        assert "no transaction is active" not in log1, log1

        child = start_child(config, "--presses", "1")  # reboot, the disk still full
        try:
            assert child.stdout is not None and child.stdin is not None
            assert child.stdout.readline() == "LINKED\n"
            child.stdin.write("go\n")
            child.stdin.flush()
            # (a buffer_failed may come first: the ack of a run-1 event cannot be deleted)
            event_id, seq, _kind = recorded_lines(child, until="panic")[-1]
            hub.wait_for_sync(gw, Channel.EVENT, lambda m: m.id == event_id, within=20)
        finally:
            power_cut(child)
    events: list[Event] = hub.messages(gw, Channel.EVENT)
    hub.close()
    assert int(seq) > max(int(s) for _i, s, _k in before)
    ids_by_seq: dict[int, set[str]] = {}
    for m in events:
        ids_by_seq.setdefault(m.seq, set()).add(m.id)
    assert all(len(ids) == 1 for ids in ids_by_seq.values()), ids_by_seq
    failed = [m for m in events if m.kind is EventKind.BUFFER_FAILED]
    assert failed and failed[0].state is EventState.ALARM and failed[0].sensor is None
