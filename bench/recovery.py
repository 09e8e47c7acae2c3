"""Benchmark 6: recovery after an outage.

G gateways were cut off for H hours and buffered their telemetry (one batch per 60 s);
they all reconnect at once (a fleet process started with ``--backlog``) and send the
backlog through the in-flight window while K other gateways keep raising alarms. Reported:
time until every backlog message is stored (acked), and the alarm latency during it.
"""

from __future__ import annotations

import asyncio
import re
import time

from bench import report
from bench.latency import StoredTimes, fire_alarms, latencies, load_fleet
from bench.stages import stage_rows
from bench.system import hub_cpu_s, hub_rss, percentile, system
from firmware_sim.fleet import Fleet, FleetSettings, specs_from_registry
from firmware_sim.runner import raise_fd_limit

PENDING = re.compile(r"connected (\d+)/(\d+) .*\(resends (\d+)\).* pending (\d+)")


async def measure(
    gateways: int, hours: float, alarms: int, spacing: float, split: bool, postgres: bool = False
) -> str:
    raise_fd_limit(20_000)
    with system(gateways + alarms, split_lanes=split, postgres=postgres) as s:
        specs = specs_from_registry(s.registry)
        observer = StoredTimes()
        fleet = Fleet(
            specs[gateways:],
            FleetSettings(host=s.broker.host, port=s.broker.port, seed=11),
            observer=observer,
        )
        stop = asyncio.Event()
        await fleet.start()
        runner = asyncio.create_task(fleet.run(stop))
        await asyncio.sleep(5)
        batches = int(hours * 3600 / 60)
        hub_cpu0 = hub_cpu_s(s)
        t0 = time.monotonic()
        load = load_fleet(s, gateways, ["--backlog", str(hours), "--resend", "30"])
        sent: dict[str, tuple[float, str]] = {}
        drained_s: float | None = None
        peak = 0
        resends = 0
        try:
            assert load.stderr is not None

            async def watch() -> None:
                nonlocal drained_s, peak, resends
                while drained_s is None:
                    line = (await asyncio.to_thread(load.stderr.readline)).decode()  # type: ignore[union-attr]
                    if not line:
                        return
                    m = PENDING.search(line)
                    if m:
                        peak = max(peak, int(m.group(4)))
                        resends = int(m.group(3))
                        if int(m.group(1)) == gateways and int(m.group(4)) == 0:
                            drained_s = time.monotonic() - t0

            watcher = asyncio.create_task(watch())
            alarm_gws = [g.id for g in specs[gateways:]]
            i = 0
            while drained_s is None and time.monotonic() - t0 < 900 and load.poll() is None:
                if i < len(alarm_gws):
                    sent |= await fire_alarms(fleet, [alarm_gws[i]], spacing)
                    i += 1
                else:
                    await asyncio.sleep(0.5)
            await asyncio.wait_for(watcher, 5) if drained_s is not None else watcher.cancel()
            for _ in range(100):
                if len(s.webhooks.first_by_gateway.keys() & sent.keys()) >= len(sent):
                    break
                await asyncio.sleep(0.1)
            hub_cpu = hub_cpu_s(s) - hub_cpu0
            hook_ms, stored_ms, missing = latencies(s, sent, observer)
            total = gateways * batches
            rows = [
                ("outage backlog", f"{gateways:,} gateways x {batches} telemetry batches ({hours:g} h at 60 s) = {total:,} messages"),
                ("reconnect", "all at once (one fleet process, 200 concurrent connects), in-flight window 16, resend after max(30 s backoff, 4x observed ack time)"),
                ("time until all backlog stored and acked", f"{drained_s:.0f} s" if drained_s else "not within 900 s"),
                ("backlog stored per second (mean)", f"{total / drained_s:,.0f} msg/s" if drained_s else "-"),
                ("resends by the gateways (same ids; the hub stores each once)", f"{resends:,}"),
                ("alarms during recovery / webhooks", f"{len(sent)} / {len(hook_ms)} (missing {missing})"),
                ("alarm publish → webhook p50 / p99 / max", f"{percentile(hook_ms, 50):.0f} / {percentile(hook_ms, 99):.0f} / {max(hook_ms, default=float('nan')):.0f} ms"),
                ("alarm publish → stored ack p50 / p99 / max", f"{percentile(stored_ms, 50):.0f} / {percentile(stored_ms, 99):.0f} / {max(stored_ms, default=float('nan')):.0f} ms"),
                *stage_rows(s.db_url, sent, s.webhooks.first_by_gateway),
                ("hub CPU-seconds for the recovery", f"{hub_cpu:.0f} s"),
                ("hub RSS after", hub_rss(s)),
            ]  # fmt: skip
            hubs = (
                f"two `safehome hub run` processes on one {'PostgreSQL' if postgres else 'SQLite'} database, `[hub.ingest] lanes` "
                "[\"priority\"] (events, status: the alarm path) and [\"telemetry\"]"
                if split
                else f"one `safehome hub run` process (both lanes) on {'PostgreSQL' if postgres else 'SQLite'}"
            )
            notes = (
                f"Hub: {hubs}, with the alarm engine. Alarms come from other gateways, one every "
                f"{spacing:g} s, while the backlog drains. The stages are read back from the hub's "
                "tables (events.received_at, notifications.created_at, notification_attempts.started_at)."
            )
            return report.write(
                f"Recovery: {gateways:,} gateways reconnecting with {hours:g} h of backlog", rows, notes
            )
        finally:
            load.terminate()
            load.wait(60)
            stop.set()
            await runner
            await fleet.stop()


def run(
    gateways: int = 5000,
    hours: float = 1.0,
    alarms: int = 400,
    spacing: float = 0.5,
    split: bool = True,
    postgres: bool = False,
) -> str:
    return asyncio.run(measure(gateways, hours, alarms, spacing, split, postgres))
