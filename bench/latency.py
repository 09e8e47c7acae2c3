"""Benchmark 1: alarm latency, fleet publish → alarm webhook at a subscriber, under load.

N homes send heartbeats (30 s) and batched telemetry (60 s) from a fleet process; K other
gateways (in this process) each raise one smoke alarm, spaced out; the latency of each is
the time from its publish to the first webhook POST for its gateway at a local receiver
subscribed to the district. Also reported: publish → ``stored`` ack back at the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import protocols as p
from bench import procstat, report
from bench.stages import stage_rows
from bench.system import System, hub_cpu_s, hub_rss, percentile, system, wait_load_connected
from firmware_sim.fleet import Fleet, FleetObserver, FleetSettings, SimGateway, specs_from_registry
from firmware_sim.runner import raise_fd_limit

ROOT = Path(__file__).resolve().parents[1]


class StoredTimes(FleetObserver):
    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def stored(self, gw: SimGateway, ids: set[str]) -> None:
        t = time.time()
        for i in ids:
            self.at.setdefault(i, t)


def load_fleet(s: System, homes: int, extra: list[str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "safehome", "sim", "fleet", "--registry", str(s.registry_path), "--homes", str(homes),
         *s.fleet_args(), "--report-every", "1", *(extra or [])],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


#: the simulated kit's sensor of each alarm kind a benchmark raises (firmware_sim/registry)
SENSOR_OF = {p.EventKind.SMOKE: "smoke-1", p.EventKind.PANIC: "panic-1"}


async def fire_alarms(
    fleet: Fleet, gws: list[str], spacing: float, kinds: Sequence[p.EventKind] = (p.EventKind.SMOKE,)
) -> dict[str, tuple[float, str]]:
    """One alarm per gateway, ``spacing`` s apart, the kinds in turn: gateway → (publish time, event id)."""
    sent: dict[str, tuple[float, str]] = {}
    for n, gw in enumerate(gws):
        kind = kinds[n % len(kinds)]
        t = time.time()
        pend = fleet.trigger(gw, kind, sensor=SENSOR_OF[kind])
        sent[gw] = (t, pend.id)
        await asyncio.sleep(spacing)
    return sent


@dataclass
class Rig:
    """A running system under load: ``homes`` load gateways (fleet process) and the measured
    ``gateways`` in this process (``fleet``), with their stored acks' arrival (``stored``)."""

    s: System
    fleet: Fleet
    gateways: list[str]
    stored: StoredTimes


@contextlib.asynccontextmanager
async def rig(homes: int, alarms: int, warmup: float, split: bool, postgres: bool) -> AsyncIterator[Rig]:
    """Broker, hub, webhook receiver, the load fleet of ``homes`` homes (all connected, then
    ``warmup`` s of traffic) and ``alarms`` measured gateways of other homes."""
    raise_fd_limit(20_000)
    with system(homes + alarms, split_lanes=split, postgres=postgres) as s:
        specs = specs_from_registry(s.registry)
        load = load_fleet(s, homes)
        observer = StoredTimes()
        fleet = Fleet(
            specs[homes:], FleetSettings(host=s.broker.host, port=s.broker.port, seed=7), observer=observer
        )
        stop = asyncio.Event()
        runner: asyncio.Task[None] | None = None
        try:
            await fleet.start()
            runner = asyncio.create_task(fleet.run(stop))
            await wait_load_connected(load, homes)
            await asyncio.sleep(warmup)
            yield Rig(s, fleet, [g.id for g in specs[homes:]], observer)
        finally:
            await stop_fleets(stop, runner, fleet, load)


async def stop_fleets(
    stop: asyncio.Event, runner: asyncio.Task[None] | None, fleet: Fleet, load: subprocess.Popen[bytes]
) -> None:
    """Stop the measured fleet (its run task, then its sessions) and the load fleet process."""
    stop.set()
    if runner is not None:
        await runner
    await fleet.stop()
    load.terminate()
    load.wait(30)
    if load.stderr is not None:
        load.stderr.close()


def latencies(
    s: System, sent: dict[str, tuple[float, str]], stored: StoredTimes
) -> tuple[list[float], list[float], int]:
    hooks = s.webhooks.first_by_gateway
    hook_ms = [(hooks[gw] - t) * 1000 for gw, (t, _i) in sent.items() if gw in hooks]
    stored_ms = [(stored.at[i] - t) * 1000 for _gw, (t, i) in sent.items() if i in stored.at]
    return hook_ms, stored_ms, len(sent) - len(hook_ms)


async def measure(homes: int, alarms: int, spacing: float, warmup: float, split: bool, postgres: bool) -> str:
    async with rig(homes, alarms, warmup, split, postgres) as r:
        s = r.s
        hub_cpu0, t_cpu0 = hub_cpu_s(s), time.monotonic()
        sent = await fire_alarms(r.fleet, r.gateways, spacing)
        for _ in range(300):  # up to 30 s for the last webhooks
            if len(s.webhooks.first_by_gateway.keys() & sent.keys()) >= len(sent):
                break
            await asyncio.sleep(0.1)
        hub_cpu = (hub_cpu_s(s) - hub_cpu0) / (time.monotonic() - t_cpu0) * 100
        hook_ms, stored_ms, missing = latencies(s, sent, r.stored)
        rows = [
            ("load", f"{homes:,} homes: heartbeat 30 s, telemetry 60 s (fleet process); {alarms} alarm gateways"),
            ("alarms raised / webhooks received", f"{len(sent)} / {len(hook_ms)} (missing {missing})"),
            ("publish → webhook p50 / p99 / max", f"{percentile(hook_ms, 50):.0f} / {percentile(hook_ms, 99):.0f} / {max(hook_ms, default=float('nan')):.0f} ms"),
            *stage_rows(s.db_url, sent, s.webhooks.first_by_gateway),
            ("publish → stored ack at the gateway p50 / p99 / max", f"{percentile(stored_ms, 50):.0f} / {percentile(stored_ms, 99):.0f} / {max(stored_ms, default=float('nan')):.0f} ms"),
            ("hub CPU while measuring", f"{hub_cpu:.0f} % of one core"),
            ("hub RSS", hub_rss(s)),
            ("mosquitto RSS", f"{procstat.rss_mb(s.broker.pid or 0):.0f} MB"),
        ]  # fmt: skip
        notes = (
            f"One alarm every {spacing:g} s, each on its own gateway (a repeat on the same sensor updates "
            "the open alarm and sends no new webhook). Hub: `safehome hub run` on "
            f"{'PostgreSQL' if postgres else 'SQLite'} with the alarm "
            f"engine ({'two processes: `[hub.ingest] lanes` priority / telemetry' if split else 'one process'}); "
            "webhook = the hub's signed webhook channel to a local HTTP receiver subscribed to the "
            "district. Broker, hub, fleet and receiver share the 2 cores."
        )
        return report.write(f"Alarm latency at {homes:,} homes", rows, notes)


def run(
    homes: int,
    alarms: int = 200,
    spacing: float = 0.25,
    warmup: float = 20.0,
    split: bool = True,
    postgres: bool = False,
) -> str:
    return asyncio.run(measure(homes, alarms, spacing, warmup, split, postgres))
