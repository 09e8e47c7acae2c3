"""Edge agent footprint: RSS and idle CPU of a real agent process, SD-card bytes per simulated
day (5 sensors, one telemetry batch per 60 s), and draining a 24 h backlog while fresh
alarms still go out first.

Run: ``python -m bench.edge_footprint`` (from the repository root). Prints the figures and
appends them, with the command, to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from bench.procstat import cpu_s, rss_mb
from bench.report import DOC, HEADER, machine
from edge.agent import Agent
from edge.clock import Clock, FixedProbe
from edge.settings import EdgeSettings, load_settings
from protocols import Channel, Event
from tests.edge.hub_acker import HubAcker
from tests.edge.tomlfile import write_toml
from tests.support.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[1]
SENSORS: list[dict[str, Any]] = [
    {"id": "smoke-1", "model": "smoke-dry-contact"},
    {"id": "smoke-2", "model": "smoke-dry-contact", "params": {"contact_pin": 5}},
    {"id": "gas-1", "model": "gas-detector"},
    {"id": "gas-2", "model": "gas-detector", "params": {"contact_pin": 6, "level_channel": 1}},
    {"id": "panic-1", "model": "panic-button"},
]
OUTPUTS = [{"id": "buzzer-1", "model": "buzzer"}, {"id": "led-1", "model": "status-led"}]
DAY_BATCHES = 24 * 60  # one telemetry batch per 60 s
FLUSH_EVERY = 5  # telemetry_flush_s 300 / telemetry_s 60


def files_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob("buffer.sqlite3*"))


def io_write_bytes() -> tuple[int, int]:
    """(write_bytes, wchar) of this process from /proc/self/io."""
    v = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(v["write_bytes"]), int(v["wchar"])


# --- 1. a real agent process: RSS and idle CPU -----------------------------------------


def idle_footprint(tmp: Path, broker: Mosquitto, seconds: float) -> dict[str, float]:
    hub = HubAcker(broker.host, broker.port)
    top = {
        "gateway_id": "gw-bench-idle",
        "environment": "development",
        "data_dir": str(tmp / "idle"),
        "state_dir": str(tmp / "idle-run"),
        "pin_factory": "mock",
        "time_sync": "assume_synced",
    }
    mqtt = {"host": broker.host, "port": broker.port}
    config = write_toml(tmp / "idle.toml", top, mqtt, {"sensors": SENSORS, "outputs": OUTPUTS})
    proc = subprocess.Popen(
        [sys.executable, "-m", "safehome", "edge", "run", "--config", str(config), "--log-level", "WARNING"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        hub.wait_for_sync("gw-bench-idle", Channel.STATUS, lambda m: m.reason == "birth", within=30)
        time.sleep(2.0)  # let start-up work settle before measuring idle
        c0, t0 = cpu_s(proc.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_s(proc.pid), time.monotonic()
        return {"rss_mb": rss_mb(proc.pid), "cpu_pct": 100 * (c1 - c0) / (t1 - t0)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        hub.close()


# --- 2. bytes written to the SD card per simulated day ---------------------------------


def day_settings(tmp: Path, broker: Mosquitto, name: str, port: int | None = None) -> EdgeSettings:
    return load_settings(
        None,
        gateway_id=f"gw-bench-{name}",
        environment="development",
        data_dir=tmp / name,
        state_dir=tmp / f"{name}-run",
        pin_factory="mock",
        time_sync="assume_synced",
        sensors=SENSORS,
        outputs=OUTPUTS,
        telemetry_s=3600,
        telemetry_flush_s=3600,
        heartbeat_s=3600,
        mqtt={
            "host": broker.host,
            "port": port or broker.port,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.2,
        },
    )


async def simulated_day(s: EdgeSettings, link: bool) -> dict[str, float]:
    """One day in fast-forward: 1,440 telemetry batches, a flush every 5, 2 alarms + restores.

    With ``link`` the hub acks each batch before the next (as it does within ms when
    batches are 60 s apart); without it the uplink is down all day."""
    factory = MockFactory()
    agent = Agent(s, factory=factory, clock=Clock(FixedProbe(True)))
    for src in agent.analog.values():
        src.set_fraction(0.03)
    task = asyncio.create_task(agent.run())
    try:
        if link:
            while not agent.link_up.is_set():  # noqa: ASYNC110 - bench helper
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        wb0, commits0, size0 = io_write_bytes()[0], agent.store.commits, files_bytes(s.data_dir)
        pin = factory.pin(agent.sensor("smoke-1").pins["contact"])
        for i in range(DAY_BATCHES):
            agent.record_telemetry()
            if link:
                while agent.outbox.memory:  # noqa: ASYNC110 - bench helper
                    await asyncio.sleep(0.001)
            if i % FLUSH_EVERY == FLUSH_EVERY - 1:
                agent.outbox.flush()
            if i in (400, 1000):  # two alarms a day, each restored
                pin.drive_low()
                while not agent.sensor("smoke-1").alarm_active:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                pin.drive_high()
                while agent.sensor("smoke-1").alarm_active:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        agent.outbox.flush()
        if link:
            while agent.outbox.depth():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        wb1, commits1 = io_write_bytes()[0], agent.store.commits
        return {
            "write_bytes": wb1 - wb0,
            "commits": commits1 - commits0,
            "file_growth": files_bytes(s.data_dir) - size0,
            "depth": agent.outbox.depth(),
        }
    finally:
        agent.stop()
        await task
        factory.reset()


# --- 3. draining a 24 h backlog while alarms still go first ----------------------------


async def drain(tmp: Path, broker: Mosquitto) -> dict[str, float]:
    s = day_settings(tmp, broker, "drain")
    broker.stop()
    factory = MockFactory()
    agent = Agent(s, factory=factory, clock=Clock(FixedProbe(True)))
    sent_at: dict[str, float] = {}
    agent.recorded_hooks.append(lambda ev: sent_at.__setitem__(ev.id, time.monotonic()))
    task = asyncio.create_task(agent.run())
    hub: HubAcker | None = None
    try:
        for _ in range(DAY_BATCHES):
            agent.record_telemetry()
        agent.outbox.flush()
        broker.start()
        hub = HubAcker(broker.host, broker.port)
        t0 = time.monotonic()
        while not agent.link_up.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        pin = factory.pin(agent.sensor("smoke-1").pins["contact"])
        latencies: list[float] = []
        alarms = 0
        smoke = agent.sensor("smoke-1")
        while agent.outbox.depth() > 0:
            await asyncio.sleep(0.01)
            if agent.outbox.depth() > 200 and alarms < 4 and hub.received:
                # raise (and restore) an alarm while the backlog is still draining
                want = alarms % 2 == 0
                pin.drive_low() if want else pin.drive_high()
                while smoke.alarm_active is not want:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
                alarms += 1
        drained = time.monotonic() - t0
        events = [r for r in hub.received if isinstance(r.message, Event)]
        for r in events:
            if r.message.id in sent_at:
                latencies.append((r.at - sent_at[r.message.id]) * 1000)
        return {
            "drain_s": drained,
            "batches": DAY_BATCHES,
            "alarm_ms_max": max(latencies, default=-1),
            "alarm_ms_median": sorted(latencies)[len(latencies) // 2] if latencies else -1,
            "events": len(latencies),
        }
    finally:
        agent.stop()
        await task
        factory.reset()
        if hub:
            hub.close()


def kb(n: float) -> str:
    return f"{n / 1024:,.1f} KiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--idle-seconds", type=float, default=20.0)
    ap.add_argument("--no-write", action="store_true", help="print only, do not append to docs/benchmarks.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        broker = Mosquitto(tmp / "broker", persistence=True).start()
        try:
            idle = idle_footprint(tmp, broker, args.idle_seconds)
            hub = HubAcker(broker.host, broker.port)
            try:
                up = asyncio.run(simulated_day(day_settings(tmp, broker, "up"), link=True))
            finally:
                hub.close()
            down = asyncio.run(simulated_day(day_settings(tmp, broker, "down", port=9), link=False))
            dr = asyncio.run(drain(tmp, broker))
        finally:
            broker.stop()
    rows = [
        ("agent RSS, idle (5 sensors, 2 outputs, linked)", f"{idle['rss_mb']:.1f} MB"),
        (
            f"agent CPU, idle over {args.idle_seconds:.0f} s (poll every 25 ms)",
            f"{idle['cpu_pct']:.2f} % of one core",
        ),
        (
            "disk written per day, link up (1,440 batches acked, 2 alarms + restores)",
            f"{kb(up['write_bytes'])} (write_bytes), {int(up['commits'])} commits",
        ),
        (
            "disk written per day, link down all day (all telemetry buffered)",
            f"{kb(down['write_bytes'])} (write_bytes), {int(down['commits'])} commits, files +{kb(down['file_growth'])}",
        ),
        ("drain a 24 h backlog (1,440 batches) after reconnect", f"{dr['drain_s']:.2f} s"),
        (
            f"alarm record → hub receipt during the drain ({int(dr['events'])} events)",
            f"median {dr['alarm_ms_median']:.0f} ms, max {dr['alarm_ms_max']:.0f} ms",
        ),
    ]
    cmd = "python -m bench.edge_footprint " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = [
        "## Edge agent footprint",
        "",
        f"- command: `{cmd.strip()}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"- machine: {machine()}",
        "",
        "| figure | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows],
        "",
        "Disk bytes are the process's `write_bytes` (/proc/self/io: bytes sent to the block layer) "
        "over one simulated day; the floor is 5 MB/day. Telemetry acked before the 300 s flush "
        "never reaches the disk; events are fsynced. The drain runs against a local Mosquitto "
        "and the test acker, so it measures the agent, not a real uplink.",
        "",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        if not DOC.exists():
            DOC.write_text(HEADER + "\n")
        with DOC.open("a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
