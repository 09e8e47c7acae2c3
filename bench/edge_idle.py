"""Idle footprint of a real safehome edge agent process, side by side with the peer gateway.

Both processes are connected to the same local Mosquitto and sampled over the same window
(RSS every second, CPU seconds at both ends), so machine noise hits both alike.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import peer_gateway
from bench.procstat import cpu_s, rss_mb, threads
from protocols import Channel
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.toml import write_toml

ROOT = Path(__file__).resolve().parents[1]
SETTLE_S = 2.0  # let start-up work settle before measuring idle


@dataclass
class ProcFigures:
    name: str
    rss_mb: float = 0.0
    rss_peak_mb: float = 0.0
    cpu_pct: float = 0.0
    threads: int = 0
    connect_s: float = 0.0


@dataclass
class IdleResult:
    seconds: float
    agent: ProcFigures
    peer: ProcFigures | None = None
    peer_missing: str = ""  # why the peer was not measured ("" when it was, or was not asked for)
    load: list[tuple[float, float, float]] = field(default_factory=list)  # before, after the window


def sample(procs: dict[str, int], seconds: float) -> dict[str, ProcFigures]:
    """RSS (end and peak) and CPU % of one core of each pid over one shared window."""
    figs = {name: ProcFigures(name) for name in procs}
    c0 = {name: cpu_s(pid) for name, pid in procs.items()}
    t0 = time.monotonic()
    end = t0 + seconds
    while True:
        for name, pid in procs.items():
            figs[name].rss_peak_mb = max(figs[name].rss_peak_mb, rss_mb(pid))
        now = time.monotonic()
        if now >= end:
            break
        time.sleep(min(1.0, end - now))
    t1 = time.monotonic()
    for name, pid in procs.items():
        f = figs[name]
        f.cpu_pct = 100 * (cpu_s(pid) - c0[name]) / (t1 - t0)
        f.rss_mb = rss_mb(pid)
        f.rss_peak_mb = max(f.rss_peak_mb, f.rss_mb)
        f.threads = threads(pid)
    return figs


def start_agent(tmp: Path, broker: Mosquitto, sensors: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> subprocess.Popen[bytes]:  # fmt: skip
    top = {
        "gateway_id": "gw-bench-idle",
        "environment": "development",
        "data_dir": str(tmp / "idle"),
        "state_dir": str(tmp / "idle-run"),
        "pin_factory": "mock",
        "time_sync": "assume_synced",
    }
    mqtt = {"host": broker.host, "port": broker.port}
    config = write_toml(tmp / "idle.toml", top, mqtt, {"sensors": sensors, "outputs": outputs})
    return subprocess.Popen(
        [sys.executable, "-m", "safehome", "edge", "run", "--config", str(config), "--log-level", "WARNING"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def idle_footprint(
    tmp: Path,
    broker: Mosquitto,
    seconds: float,
    sensors: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    peer: bool = True,
) -> IdleResult:
    """Agent (and, with ``peer``, thingsboard-gateway) idle on ``broker``, sampled together."""
    hub = HubAcker(broker.host, broker.port)
    agent = start_agent(tmp, broker, sensors, outputs)
    tb: subprocess.Popen[bytes] | None = None
    missing = "" if peer else "skipped (--no-peer)"
    try:
        t0 = time.monotonic()
        hub.wait_for_sync("gw-bench-idle", Channel.STATUS, lambda m: m.reason == "birth", within=30)
        agent_connect = time.monotonic() - t0
        tb_connect = 0.0
        if peer:
            try:
                exe = peer_gateway.ensure_installed()
                workdir = peer_gateway.write_config(tmp / "tb-gateway", broker.host, broker.port)
                tb = peer_gateway.start(exe, workdir)
                tb_connect = peer_gateway.wait_connected(tb, broker.log_path, workdir)
            except peer_gateway.PeerUnavailable as e:
                missing = f"not measured: {e}"
                print(f"peer gateway {peer_gateway.TB_PACKAGE}: {missing}", file=sys.stderr)
                if tb is not None:
                    peer_gateway.stop(tb)
                    tb = None
        time.sleep(SETTLE_S)
        pids = {"agent": agent.pid, **({"peer": tb.pid} if tb else {})}
        before = os.getloadavg()
        figs = sample(pids, seconds)
        after = os.getloadavg()
        figs["agent"].connect_s = agent_connect
        if "peer" in figs:
            figs["peer"].connect_s = tb_connect
        return IdleResult(seconds, figs["agent"], figs.get("peer"), missing, [before, after])
    finally:
        if tb is not None:
            peer_gateway.stop(tb)
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(15)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait(15)
        hub.close()


def rows(r: IdleResult) -> list[tuple[str, str]]:
    """Rows for the main figure table (the agent alone, as before)."""
    return [
        ("agent RSS, idle (5 sensors, 2 outputs, linked)", f"{r.agent.rss_mb:.1f} MB"),
        (
            f"agent CPU, idle over {r.seconds:.0f} s (poll every 25 ms)",
            f"{r.agent.cpu_pct:.2f} % of one core",
        ),
    ]


def side_by_side(r: IdleResult) -> list[str]:
    """Markdown lines: both processes, same broker, same window."""
    load = ", ".join(f"{a:.2f}/{b:.2f}/{c:.2f}" for a, b, c in r.load)
    busy = max((a for a, _, _ in r.load), default=0.0) > 0.5 * (os.cpu_count() or 1)
    tb = f"{peer_gateway.TB_PACKAGE} {peer_gateway.TB_VERSION}"
    lines = [
        f"Side by side, idle, same broker, same {r.seconds:.0f} s window:",
        "",
        "| process | RSS | RSS peak | CPU, idle | threads | connected after |",
        "|---|---|---|---|---|---|",
    ]
    for label, f in (
        ("safehome edge agent (5 sensors, 2 outputs)", r.agent),
        (f"{tb} (no connectors)", r.peer),
    ):
        if f is None:
            why = r.peer_missing.replace("|", "/").replace("\n", " ")
            lines.append(f"| {label} | {why} | | | | |")
        else:
            lines.append(
                f"| {label} | {f.rss_mb:.1f} MB | {f.rss_peak_mb:.1f} MB | {f.cpu_pct:.2f} % of one core "
                f"| {f.threads} | {f.connect_s:.1f} s |"
            )
    lines += [
        "",
        f"Load average (1/5/15 min) before, after the window: {load}."
        + (
            " The load was above half the cores (other work shared the machine): the CPU figures are"
            " noisy; compare the two rows, not absolute values."
            if busy
            else ""
        ),
        "The peer runs from its own venv (`var/bench/tb-venv`, installed on demand) with its shipped "
        "`tb_gateway.json` except broker host/port, an access token and no connectors (statistics every "
        "60 s and remote configuration stay on, as shipped); `--no-peer` skips it. RSS is VmRSS from /proc.",
    ]
    return lines
