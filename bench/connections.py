"""Benchmark 4: concurrent gateway sessions held with heartbeats and telemetry.

Starts a local Mosquitto, a stand-in acker (or the hub, once merged) and P fleet
processes (``safehome sim fleet --shard i/P``), waits until every session is connected
(broker's ``$SYS`` count), holds them for a while and reports connect time, heartbeats
actually received, memory and CPU of each part.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import procstat, report
from firmware_sim.broker import LocalBroker
from firmware_sim.runner import raise_fd_limit
from firmware_sim.standin import StandIn

ROOT = Path(__file__).resolve().parents[1]


class SysWatch:
    """Follows ``$SYS/broker/clients/connected``."""

    def __init__(self, host: str, port: int) -> None:
        self.connected = 0
        self.ready = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sys")
        self.c.on_message = self._on
        self.c.connect(host, port)
        self.c.subscribe("$SYS/broker/clients/connected")
        self.c.loop_start()

    def _on(self, _c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        self.connected = int(m.payload)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def run(homes: int, processes: int, hold_s: float, heartbeat_s: float = 30, telemetry_s: float = 60) -> str:
    limit = raise_fd_limit(20_000)
    if homes // processes + 300 > limit:
        raise SystemExit(f"open-files limit {limit} too low for {homes // processes} sessions per process")
    with tempfile.TemporaryDirectory(prefix="bench-conn-") as tmp:
        broker = LocalBroker(Path(tmp)).start()
        assert broker.proc is not None
        standin = StandIn(broker.host, broker.port)
        watch = SysWatch(broker.host, broker.port)
        base = 2  # stand-in + $SYS watcher
        fleet = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "safehome",
                    "sim",
                    "fleet",
                    "--homes",
                    str(homes),
                    "--shard",
                    f"{i}/{processes}",
                    "--host",
                    broker.host,
                    "--port",
                    str(broker.port),
                    "--heartbeat",
                    str(heartbeat_s),
                    "--telemetry",
                    str(telemetry_s),
                    "--duration",
                    str(hold_s + 600),
                ],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i in range(processes)
        ]
        try:
            t0 = time.monotonic()
            deadline = t0 + 300
            while watch.connected < homes + base:
                if time.monotonic() > deadline or any(f.poll() is not None for f in fleet):
                    raise SystemExit(f"only {watch.connected - base} of {homes} sessions connected")
                time.sleep(0.2)
            connect_s = time.monotonic() - t0
            time.sleep(min(5.0, hold_s))  # let the connect burst settle before measuring
            cpu0 = {f.pid: procstat.cpu_s(f.pid) for f in fleet} | {
                broker.proc.pid: procstat.cpu_s(broker.proc.pid)
            }
            stand_cpu0 = time.process_time()
            hb0, tel0 = standin.counts["status"], standin.counts["telemetry"]
            h0 = time.monotonic()
            time.sleep(hold_s)
            held = time.monotonic() - h0
            min_connected = watch.connected - base
            hb, tel = standin.counts["status"] - hb0, standin.counts["telemetry"] - tel0
            fleet_cpu = sum(procstat.cpu_s(f.pid) - cpu0[f.pid] for f in fleet) / held * 100
            broker_cpu = (procstat.cpu_s(broker.proc.pid) - cpu0[broker.proc.pid]) / held * 100
            stand_cpu = (time.process_time() - stand_cpu0) / held * 100
            fleet_rss = [procstat.rss_mb(f.pid) for f in fleet]
            rows = [
                ("sessions held (target)", f"{min_connected:,} ({homes:,}) in {processes} fleet process(es)"),
                ("time to connect all", f"{connect_s:.1f} s"),
                (
                    "hold window",
                    f"{held:.0f} s, heartbeat every {heartbeat_s:g} s, telemetry every {telemetry_s:g} s",
                ),
                ("heartbeats received / expected", f"{hb:,} / {int(homes * held / heartbeat_s):,}"),
                ("telemetry batches received / expected", f"{tel:,} / {int(homes * held / telemetry_s):,}"),
                ("mosquitto RSS", f"{procstat.rss_mb(broker.proc.pid):.0f} MB"),
                ("mosquitto CPU while holding", f"{broker_cpu:.1f} % of one core"),
                ("fleet RSS (per process)", " + ".join(f"{r:.0f} MB" for r in fleet_rss)),
                ("fleet CPU while holding (all processes)", f"{fleet_cpu:.1f} % of one core"),
                ("stand-in acker (paho, in the bench process) CPU", f"{stand_cpu:.1f} % of one core"),
                (
                    "bench process RSS (stand-in acker)",
                    f"{procstat.rss_mb(__import__('os').getpid()):.0f} MB",
                ),
            ]
            notes = (
                "The acker is a stand-in for the hub's ingest (paho; acks every event and telemetry "
                "message with `stored`); hub memory is measured once the hub runs in this benchmark. "
                "Fleet: firmware_sim's own asyncio MQTT 3.1.1 sessions, one tick for all gateways."
            )
            return report.write(f"Connections held: {homes:,} gateways", rows, notes)
        finally:
            for f in fleet:
                f.terminate()
            for f in fleet:
                try:
                    f.wait(30)
                except subprocess.TimeoutExpired:
                    f.kill()
            watch.close()
            standin.close()
            broker.stop()
