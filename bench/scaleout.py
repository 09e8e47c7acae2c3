"""Benchmark 3: scale-out of hub ingest workers on one shared subscription (PostgreSQL).

The same load (telemetry batches at QoS 1 from several gateways, published at once) is
stored by 1 and then by 2 worker processes, each a fresh database. On 2 cores the broker,
publisher and workers share the CPUs, so wall throughput cannot show scale-out; what is
reported is how the load splits between workers and the CPU spent per stored reading.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import report
from bench.ingest import Load, payloads, publish_all
from hub.broker.config import BrokerSettings
from hub.broker.credentials import PasswordFile
from hub.broker.deploy import run_argv, write_deployment
from hub.db.migrate import upgrade
from safehome.testing.postgres import PostgresServer, postgres_server

ROOT = Path(__file__).resolve().parents[1]


def one_run(workers: int, load: Load, server: PostgresServer, run: int) -> list[dict[str, float]]:
    tmp = Path(tempfile.mkdtemp(prefix="safehome-scaleout-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    bs = BrokerSettings(directory=tmp / "broker", tls=False, plain_port=port, persistence=False,
                        user="root" if os.geteuid() == 0 else "mosquitto", log_dest=f"file {tmp / 'mosquitto.log'}",
                        max_queued_messages=2 * load.total_messages + 10_000)  # fmt: skip
    written = write_deployment(bs)
    hub_password = written.hub_secret.read_text().strip()
    passwords = {f"bench-gw-{g:04d}": f"pw-{g}" for g in range(load.gateways)}
    pw = PasswordFile(bs.password_path)
    for gw, secret in passwords.items():
        pw.set(gw, secret)
    broker = subprocess.Popen(run_argv(bs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = server.create_database("safehome_scaleout")
    procs: list[subprocess.Popen[str]] = []
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        upgrade(url)
        for w in range(workers):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "bench.scaleout_worker", "--port", str(port), "--password", hub_password,
                 "--db-url", url, "--worker-id", f"scale-{run}-{w}"],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            ))  # fmt: skip
        for pr in procs:
            assert pr.stdout is not None
            if pr.stdout.readline().strip() != "ready":
                raise RuntimeError("a worker did not start")
        publish_all(port, passwords, payloads(load, run))
        results = []
        for pr in procs:
            out, _ = pr.communicate(timeout=600)
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.kill()
        broker.terminate()
        broker.wait(10)
        server.drop_database(url)
        shutil.rmtree(tmp, ignore_errors=True)


def run(gateways: int = 20, messages: int = 1500, readings: int = 20) -> str:
    load = Load(gateways, messages, readings)
    with postgres_server() as server:
        one = one_run(1, load, server, 1)
        two = one_run(2, load, server, 2)

    def per_k(rs: list[dict[str, float]]) -> float:
        return sum(r["cpu_s"] for r in rs) / sum(r["readings"] for r in rs) * 1000

    def wall(rs: list[dict[str, float]]) -> float:
        return sum(r["readings"] for r in rs) / (max(r["last"] for r in rs) - min(r["first"] for r in rs))

    total2 = sum(r["readings"] for r in two)
    shares = [r["readings"] / total2 * 100 for r in two]
    rows = [
        ("load", f"{gateways} gateways x {messages} telemetry messages x {readings} readings = {load.total_readings:,} readings, QoS 1"),
        ("readings stored: 1 worker / 2 workers", f"{sum(r['readings'] for r in one):,.0f} / {total2:,.0f}"),
        ("split between the 2 workers", " / ".join(f"{x:.1f} %" for x in shares) + f" (deviation from even {max(abs(x - 50) for x in shares):.1f} points)"),
        ("hub CPU-seconds per 1,000 readings: 1 worker / 2 workers", f"{per_k(one):.3f} / {per_k(two):.3f} s"),
        ("CPU per reading, 2 workers / 1 worker", f"{per_k(two) / per_k(one):.2f}x"),
        ("wall throughput: 1 worker / 2 workers", f"{wall(one):,.0f} / {wall(two):,.0f} readings/s"),
    ]  # fmt: skip
    notes = (
        "Each worker is a separate process (hub IngestService, SQL time series on one PostgreSQL database, "
        "`$share/hub/…` subscription); CPU is each worker's own rusage from subscribed to idle. The load "
        "is published while the workers run, so the publisher and the broker compete for the 2 cores."
    )
    return report.write("Scale-out: 1 vs 2 hub ingest workers (PostgreSQL)", rows, notes)
