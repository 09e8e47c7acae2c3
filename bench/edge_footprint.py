"""Edge agent footprint: RSS and idle CPU of a real agent process (side by side with the peer
gateway thingsboard-gateway, bench/edge_idle.py), SD-card bytes per simulated day (5 sensors,
one telemetry batch per 60 s), and draining a 24 h backlog while fresh alarms still go out first.

Run: ``safehome bench edge`` or ``python -m bench.edge_footprint`` (from the repository root;
``--no-peer`` skips thingsboard-gateway). Prints the figures and appends them, with the
command, to docs/benchmarks-history.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from gpiozero.pins.mock import MockFactory

from bench import edge_idle, report
from bench.report import command, machine
from edge.agent import Agent
from edge.clock import Clock, FixedProbe
from edge.settings import EdgeSettings, load_settings
from protocols import Event
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto

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
#: the agent's default flush interval, in telemetry batches of 60 s
FLUSH_EVERY = max(1, round(EdgeSettings.model_fields["telemetry_flush_s"].default / 60))


def files_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob("buffer.sqlite3*"))


def io_write_bytes() -> tuple[int, int]:
    """(write_bytes, wchar) of this process from /proc/self/io."""
    v = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(v["write_bytes"]), int(v["wchar"])


# --- 1. a real agent process: RSS and idle CPU, side by side with the peer: bench/edge_idle.py


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


def run(idle_seconds: float = 60.0, peer: bool = True, write: bool = True, cmd: str = "") -> str:
    """All edge figures in one run; returns the section text (appended to docs/benchmarks.md)."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        broker = Mosquitto(tmp / "broker", persistence=True).start()
        try:
            idle = edge_idle.idle_footprint(tmp, broker, idle_seconds, SENSORS, OUTPUTS, peer=peer)
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
        *edge_idle.rows(idle),
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
    lines = [
        "## Edge agent footprint",
        "",
        f"- command: `{cmd.strip() or 'python -m bench.edge_footprint'}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"- machine: {machine()}",
        "",
        "| figure | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows],
        "",
        *edge_idle.side_by_side(idle),
        "",
        "Disk bytes are the process's `write_bytes` (/proc/self/io: bytes sent to the block layer) "
        "over one simulated day; the floor is 5 MB/day. Telemetry acked before the "
        f"{FLUSH_EVERY * 60} s flush (default `telemetry_flush_s`) "
        "never reaches the disk; events are fsynced. The drain runs against a local Mosquitto "
        "and the test acker, so it measures the agent, not a real uplink.",
        "",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if write:
        report.append(text)
    return text


@click.command(name="edge")
@click.option(
    "--idle-seconds",
    type=click.FloatRange(1, 3600),
    default=60.0,
    show_default=True,
    help="Idle sampling window (the peer sends statistics every 60 s).",
)
@click.option(
    "--peer/--no-peer",
    default=True,
    show_default=True,
    help="Measure thingsboard-gateway side by side (installed on demand into var/bench/tb-venv).",
)
def edge_cmd(idle_seconds: float, peer: bool) -> None:
    """Edge agent footprint: RSS/idle CPU next to thingsboard-gateway, disk bytes per day, backlog drain."""
    run(idle_seconds, peer, cmd=command())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--no-peer", action="store_true", help="skip the thingsboard-gateway comparison")
    ap.add_argument("--no-write", action="store_true", help="print only, do not append to docs/benchmarks-history.md")
    args = ap.parse_args()
    cmd = "python -m bench.edge_footprint " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    run(args.idle_seconds, not args.no_peer, write=not args.no_write, cmd=cmd)


if __name__ == "__main__":
    main()
