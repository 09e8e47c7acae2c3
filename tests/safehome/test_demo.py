"""`safehome demo`: runs broker + hub side + fleet, and Ctrl-C leaves nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import protocols as p
from firmware_sim.fleet import SimGateway
from firmware_sim.fleet.gateway import GatewaySpec, SensorSpec
from firmware_sim.registry import generate
from safehome.demo_view import DemoBoard, render

ROOT = Path(__file__).resolve().parents[2]


def processes_mentioning(text: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if text in (d / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(d.name))
            except OSError:
                continue
    return found


def test_ctrl_c_stops_fleet_hub_and_broker(tmp_path: Path) -> None:
    wd = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "safehome", "demo", "--homes", "150", "--no-view", "--workdir", str(wd)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while not any("connected 150/150" in ln for ln in lines):
        assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
        lines.append(proc.stdout.readline())
    assert processes_mentioning(str(wd)), "the broker runs with its config in the workdir"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, "".join(lines) + out
    assert "demo stopped" in out
    deadline = time.monotonic() + 10
    while (left := processes_mentioning(str(wd))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == []


def test_board_follows_an_alarm_from_sent_to_help_on_the_way() -> None:
    reg = generate(5, seed=1)
    board = DemoBoard(reg)
    g = SimGateway(GatewaySpec("gw-000002", (SensorSpec("smoke-1", "smoke-dry-contact", "smoke"),)))
    pend = g.event(p.EventKind.SMOKE, p.EventState.ALARM, "smoke-1", 1)
    tele = g.telemetry(2)
    board.sent(g, pend, False)
    board.sent(g, tele, False)  # telemetry is not a row
    board.sent(g, pend, True)
    (row,) = board.visible()
    assert (row.home, row.status, row.sends) == ("home-000002", "resending", 2)
    assert row.workstation.startswith("ws-0001")
    board.stored(g, {pend.id})
    assert row.status == "stored"
    board.home_told(g, p.AckItem(id=pend.id, status=p.AckStatus.DISPATCHED, by="ws-0001"))
    assert (row.status, row.by, board.told) == ("dispatched", "ws-0001", 1)
    assert "help is on the way" in board.log[-1]
    render(board, "header", {"x": 1})  # renders without a terminal


def test_center_table_shows_routing_escalation_and_who_acted() -> None:
    from rich.console import Console

    from safehome.demo_view import center_table

    alarm = {"id": "a1", "kind": "gas", "alarm_class": "alarm", "home_id": "home-000007", "workstation_id": "ws-0002",
             "state": "acknowledged", "responder": None, "raised_at": "2026-11-28T02:13:00+00:00"}  # fmt: skip
    detail = {
        "notifications": [{"role": "workstation", "status": "delivered"}, {"role": "subdistrict", "status": "delivered"},
                          {"role": "home", "status": "delivered"}, {"role": "family", "status": "unconfigured"},
                          {"role": "volunteer", "status": "dead"}, {"role": "district", "status": "pending"}],
        "history": [{"action": "raise", "actor": "system"}, {"action": "escalate", "actor": "system"},
                    {"action": "acknowledge", "actor": "demo supervisor subdistrict:sd-01 [abc]"}],
    }  # fmt: skip
    console = Console(width=220, record=True)
    console.print(center_table([alarm], {"a1": detail}, "1 alarms listed"))
    text = console.export_text()
    assert "workstation, subdistrict" in text and "escalated x1" in text
    assert "family" not in text and "volunteer" not in text and "district," not in text  # not reached
    assert "acknowledge by demo supervisor subdistrict:sd-01" in text
