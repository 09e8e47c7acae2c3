"""Alarm raised during a network partition -> confirmed by the hub after the heal.

20 real agents (``edge.agent.Agent``, one process, no pins: the alarm is recorded as a
sensor change would be) talk to a local Mosquitto on a port of their own; a paho "hub"
on another port acks what it receives (the Ack the agent waits for before an alarm leaves
its buffer). The partition is real TCP loss: an nftables table drops every packet to and
from the gateways' port on loopback (no netem on this kernel), so connections hang and
SYNs go unanswered, as on a cut uplink. Each agent records an alarm a third into the
partition; the figure is heal -> the hub's Ack of that alarm back at the agent.

Needs root (nftables). ``python -m bench.partition --partition-s 180``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import subprocess
import tempfile
import time
from pathlib import Path

from devices.runtime import Change
from edge.agent import Agent
from edge.clock import Clock, FixedProbe
from edge.settings import load_settings
from firmware_sim.broker import LocalBroker, free_port
from safehome.testing.acker import HubAcker

TABLE = "safehome_bench_partition"


def nft(script: str) -> None:
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)


def cut(port: int) -> None:
    nft(
        f"table inet {TABLE} {{\n chain input {{\n  type filter hook input priority -10;\n"
        f"  tcp dport {port} drop\n  tcp sport {port} drop\n }}\n}}\n"
    )


def heal() -> None:
    subprocess.run(["nft", "delete", "table", "inet", TABLE], check=False, capture_output=True)


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


async def run(gateways: int, partition_s: float) -> list[float]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-partition-"))
    gw_port = free_port()
    broker = LocalBroker(tmp / "broker", extra_config=f"listener {gw_port} 127.0.0.1\n").start()
    hub = HubAcker("127.0.0.1", broker.port, group="benchhub")  # acks every event (the Ack the agent waits for)
    agents: list[Agent] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for i in range(gateways):
            s = load_settings(
                None,
                gateway_id=f"gw-part{i:03d}",
                environment="development",
                data_dir=tmp / f"gw{i}",
                state_dir=tmp / f"run{i}",
                pin_factory="mock",
                mqtt={"host": "127.0.0.1", "port": gw_port},  # default backoff: 1..60 s
                poll_ms=200,
                watchdog=False,
                time_sync="assume_synced",
                telemetry_s=60,
            )
            agent = Agent(s, clock=Clock(FixedProbe(True)))
            agents.append(agent)
            tasks.append(asyncio.create_task(agent.run()))
        while not all(a.link_up.is_set() for a in agents):  # noqa: ASYNC110 - a bench, polling
            await asyncio.sleep(0.1)
        cut(gw_port)
        await asyncio.sleep(partition_s / 3)
        ids = [a.record(Change("", "panic", True, "bench", latched=False)).id for a in agents]
        await asyncio.sleep(partition_s * 2 / 3)
        healed = time.monotonic()
        heal()
        acked: dict[int, float] = {}
        while len(acked) < len(agents) and time.monotonic() - healed < 300:
            for n, (a, eid) in enumerate(zip(agents, ids, strict=True)):
                if n not in acked and not a.store.contains(eid) and eid not in a.outbox.volatile:
                    acked[n] = time.monotonic() - healed
            await asyncio.sleep(0.05)
        return list(acked.values()) + [float("inf")] * (len(agents) - len(acked))
    finally:
        heal()
        for a in agents:
            a.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        hub.close()
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gateways", type=int, default=20)
    ap.add_argument("--partition-s", type=float, default=180.0)
    args = ap.parse_args()
    lat = asyncio.run(run(args.gateways, args.partition_s))
    print(
        f"alarm raised during a {args.partition_s:.0f} s partition, heal -> hub ack, {args.gateways} gateways: "
        f"p50 {percentile(lat, 50):.2f} s, p99 {percentile(lat, 99):.2f} s, max {max(lat):.2f} s"
    )


if __name__ == "__main__":
    main()
