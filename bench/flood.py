"""Benchmark: one gateway floods the hub; how late are the other homes' alarms?

The whole system (bench/system.py: Mosquitto, the real hub with its alarm engine, a webhook
receiver). K gateways raise one smoke alarm each, spaced out, twice in the same run: first
with nothing else going on (baseline), then while one more gateway (bench/flooder.py, a
process of its own) publishes N events at QoS 1 as fast as it can. Figures: each alarm's
publish → ``stored`` ack at its gateway and publish → first webhook, side by side. The
broker runs the deployment's rate-limit plugin (``--broker-rate 0``: no limit, as before it).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from bench import report
from bench.latency import ROOT, StoredTimes, fire_alarms, latencies
from bench.stages import stage_rows
from bench.system import System, hub_cpu_s, percentile, system
from firmware_sim.fleet import Fleet, FleetSettings, specs_from_registry
from firmware_sim.runner import raise_fd_limit


def _fmt(ms: list[float]) -> str:
    return f"{percentile(ms, 50):.0f} / {percentile(ms, 99):.0f} / {max(ms, default=float('nan')):.0f} ms"


async def _phase(
    s: System, fleet: Fleet, observer: StoredTimes, gws: list[str], spacing: float
) -> tuple[list[float], list[float], dict[str, tuple[float, str]]]:
    sent = await fire_alarms(fleet, gws, spacing)
    for _ in range(1200):  # up to 120 s for the last acks and webhooks
        hooks = s.webhooks.first_by_gateway.keys() & sent.keys()
        if len(hooks) >= len(sent) and all(i in observer.at for _t, i in sent.values()):
            break
        await asyncio.sleep(0.1)
    hook_ms, stored_ms, _missing = latencies(s, sent, observer)
    return stored_ms, hook_ms, sent


def _to_batch(s: System, sent: dict[str, tuple[float, str]]) -> str:
    """publish → the hub's batch (broker and receive queue), p50 / p99 / max."""
    rows = stage_rows(s.db_url, sent, s.webhooks.first_by_gateway)
    return rows[0][1] if rows else "?"


#: The flooding gateway is a Pi elsewhere in a deployment; here it shares the server's two
#: cores, and a publisher at full speed took a core from the broker and the hub that no real
#: flood takes. At nice 10 it still publishes as fast as the broker answers when a core is
#: free, and the broker still receives and answers every message.
FLOODER_NICE = 10


def start_flooder(s: System, gw: str, count: int, kind: str, sensors: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["nice", "-n", str(FLOODER_NICE), sys.executable, "-m", "bench.flooder", "--host", s.broker.host, "--port", str(s.broker.port),
         "--gateway", gw, "--count", str(count), "--kind", kind, "--sensors", str(sensors)],
        cwd=ROOT, stdout=subprocess.PIPE,
    )  # fmt: skip


def hub_metrics(s: System) -> dict[tuple[str, str], float]:
    """The priority-lane hub process's counters: (sample name, label value) -> value."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    assert s.hub.api_url is not None
    text = httpx.get(s.hub.api_url.removesuffix("/api/v1") + "/metrics", timeout=10).text
    out: dict[tuple[str, str], float] = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            label = next(iter(sample.labels.values()), "")
            out[(sample.name, label)] = sample.value
    return out


def _flood_figures(s: System, flooder: str) -> tuple[int, str]:
    from sqlalchemy import select

    from hub.db.engine import make_engine
    from hub.db.state import Condition

    engine = make_engine(s.db_url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                select(Condition.state).where(
                    Condition.kind == "gateway_flooding", Condition.gateway_id == flooder
                )
            ).all()
    finally:
        engine.dispose()
    return len(rows), ", ".join(r[0] for r in rows) or "none"


async def measure(
    alarms: int,
    spacing: float,
    count: int,
    kind: str,
    sensors: int,
    split: bool,
    postgres: bool,
    broker_rate: float | None = None,
    drain_s: float = 30.0,
) -> str:
    from hub.broker.config import BrokerSettings

    raise_fd_limit(20_000)
    default = BrokerSettings(tls=False)
    rate = default.gateway_rate if broker_rate is None else broker_rate
    with system(2 * alarms + 1, split_lanes=split, postgres=postgres, broker_rate=rate) as s:
        specs = specs_from_registry(s.registry)
        flooder_id = specs[0].id
        observer = StoredTimes()
        fleet = Fleet(
            specs[1:], FleetSettings(host=s.broker.host, port=s.broker.port, seed=7), observer=observer
        )
        stop = asyncio.Event()
        runner: asyncio.Task[None] | None = None
        flood: subprocess.Popen[bytes] | None = None
        try:
            await fleet.start()
            runner = asyncio.create_task(fleet.run(stop))
            await asyncio.sleep(10)  # heartbeats and first telemetry settle
            base_gws = [g.id for g in specs[1 : alarms + 1]]
            flood_gws = [g.id for g in specs[alarms + 1 : 2 * alarms + 1]]
            base_stored, base_hook, base_sent = await _phase(s, fleet, observer, base_gws, spacing)

            cpu0, t_cpu0 = hub_cpu_s(s), time.monotonic()
            flood = start_flooder(s, flooder_id, count, kind, sensors)
            assert flood.stdout is not None
            await asyncio.to_thread(flood.stdout.readline)  # {"started": true}: publishing now
            flood_stored, flood_hook, flood_sent = await _phase(s, fleet, observer, flood_gws, spacing)
            try:  # the flooder's own drain costs only it: wait a little, then ask where it is
                await asyncio.to_thread(flood.wait, drain_s)
            except subprocess.TimeoutExpired:
                flood.terminate()
            out = json.loads((await asyncio.to_thread(flood.stdout.readline)) or "{}")
            await asyncio.to_thread(flood.wait, 30)
            hub_cpu = (hub_cpu_s(s) - cpu0) / (time.monotonic() - t_cpu0) * 100
            opened, states = _flood_figures(s, flooder_id)
            m = hub_metrics(s)
            batches = m.get(("safehome_store_batch_seconds_count", "core"), 0)
            mean_ms = 1000 * m.get(("safehome_store_batch_seconds_sum", "core"), 0) / max(batches, 1)
            shed = sum(
                v
                for (n, r), v in m.items()
                if n == "safehome_messages_rejected_total" and r.startswith("shed")
            )
            refused = m.get(("safehome_broker_shed_messages_total", ""), 0)
            limit = f"{rate:g}/s, burst {default.gateway_burst}" if rate > 0 else "none (`--broker-rate 0`)"
            b99, f99 = percentile(base_stored, 99), percentile(flood_stored, 99)
            rows = [
                ("other homes' alarms", f"{alarms} per phase, one per gateway, one every {spacing:g} s"),
                ("flood", f"one gateway, {count:,} `{kind}` events on {sensors} sensors, QoS 1, as fast as paho publishes"),
                ("broker rate limit per gateway (events, status, results)", limit),
                ("flood refused at the broker (PUBACK, not delivered; the edge would resend)", f"{refused:,.0f} of {count:,}"),
                ("flood published in / acked", f"{out.get('published_s', float('nan')):.1f} s / {out.get('stored', 0):,} of {count:,} acked {out.get('stored_s', float('nan')):.0f} s after the start (the flooder stops waiting {drain_s:g} s after the alarms)"),
                ("publish → stored ack p50 / p99 / max, baseline (no flood)", _fmt(base_stored)),
                ("publish → stored ack p50 / p99 / max, during the flood", _fmt(flood_stored)),
                ("stored ack p99 flood / baseline", f"{f99 / b99:.2f}x (goal ≤ 2x)"),
                ("of which publish → hub batch (broker, receiver, fair queue), baseline / flood", f"{_to_batch(s, base_sent)} / {_to_batch(s, flood_sent)}"),
                ("publish → webhook p50 / p99 / max, baseline", _fmt(base_hook)),
                ("publish → webhook p50 / p99 / max, during the flood", _fmt(flood_hook)),
                ("alarms acked / webhooks, baseline and flood", f"{len(base_stored)} / {len(base_hook)}, {len(flood_stored)} / {len(flood_hook)}"),
                ("gateway_flooding conditions of the flooder", f"{opened} ({states})"),
                ("hub CPU during the flood phase", f"{hub_cpu:.0f} % of one core"),
                ("alarm-lane event transactions, mean time / messages shed by the hub", f"{batches:,.0f}, {mean_ms:.1f} ms / {shed:,.0f}"),
            ]  # fmt: skip
            notes = (
                f"Hub: `safehome hub run` on {'PostgreSQL' if postgres else 'SQLite'} with the alarm engine "
                f"({'two processes: `[hub.ingest] lanes` priority / telemetry' if split else 'one process'}), "
                "default `[hub.ingest]` fairness settings. Broker: Mosquitto with the deployment's "
                f"rate-limit plugin (hub/broker/plugin/safehome_ratelimit.c{'' if rate > 0 else ', limiting nothing'}). "
                "Broker, hub, the flooding process (at nice "
                f"{FLOODER_NICE}: it stands for a Pi elsewhere) and the alarm gateways share the machine's "
                "cores: compare the two phases of one run, not runs."
            )
            return report.write("Flood: one gateway floods, other homes' alarms", rows, notes)
        finally:
            if flood is not None and flood.poll() is None:
                flood.terminate()
                flood.wait(10)
            stop.set()
            if runner is not None:
                await runner
            await fleet.stop()


def run(
    alarms: int,
    spacing: float,
    count: int,
    kind: str,
    sensors: int,
    split: bool,
    postgres: bool,
    broker_rate: float | None = None,
) -> str:
    return asyncio.run(measure(alarms, spacing, count, kind, sensors, split, postgres, broker_rate))
