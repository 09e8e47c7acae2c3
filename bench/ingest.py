"""Ingest throughput: readings/s stored and acked by one hub worker, next to a bare paho
subscriber that only counts, on the same broker and the same load in the same run.

The broker is the deployment's own generated config (ACL, passwords, sized queues);
the load is telemetry batches (several readings per message) from several gateways at
QoS 1. The hub worker stores into SQLite (WAL) or a given PostgreSQL URL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import click
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import protocols as p
from bench import report as bench_report
from hub.broker.config import BrokerSettings
from hub.broker.credentials import PasswordFile
from hub.broker.deploy import run_argv, write_deployment
from hub.db.engine import make_engine, make_session_factory
from hub.db.migrate import upgrade
from hub.ingest.service import IngestService
from hub.metrics import HubMetrics
from hub.settings import HubSettings
from hub.timeseries.sql import SqlTimeSeriesStore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Load:
    gateways: int
    messages: int  # per gateway
    readings: int  # per message

    @property
    def total_messages(self) -> int:
        return self.gateways * self.messages

    @property
    def total_readings(self) -> int:
        return self.total_messages * self.readings


def payloads(load: Load, run: int) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    base = int(time.time() * 1000)
    for g in range(load.gateways):
        gw = f"bench-gw-{g:04d}"
        seq = itertools.count(1)
        out[gw] = [
            p.encode(
                p.Telemetry(
                    gw=gw,
                    seq=next(seq),
                    id=p.new_event_id(),
                    ts=base + run * 10_000_000 + m,
                    synced=True,
                    readings=[
                        p.Reading(sensor=f"s-{r % 8}", metric=f"m{r // 8}", value=float(m % 100) + r / 10)
                        for r in range(load.readings)
                    ],
                )
            )
            for m in range(load.messages)
        ]
    return out


def publish_all(port: int, passwords: dict[str, str], messages: dict[str, list[bytes]]) -> None:
    """One paho client per gateway, all publishing at QoS 1 at once."""
    clients = []
    for gw, msgs in messages.items():
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gw)  # the broker binds client id to username
        c.username_pw_set(gw, passwords[gw])
        c.max_inflight_messages_set(200)
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients.append((c, gw, msgs))
    infos = []
    for c, gw, msgs in clients:
        topic = str(p.Topic.of(gw, "telemetry"))
        infos += [c.publish(topic, m, qos=1) for m in msgs]
    for info in infos:
        info.wait_for_publish(120)
    for c, _, _ in clients:
        c.disconnect()
        c.loop_stop()


def bare_paho(
    port: int, hub_password: str, passwords: dict[str, str], messages: dict[str, list[bytes]], total: int
) -> float:
    """Messages/s drained by a paho subscriber (loop_forever) that only counts. Its
    persistent session subscribes, goes away while the load is published (the broker
    queues it), then comes back: the figure is the consumer's, not the publisher's."""
    count, first, last = [0], [0.0], [0.0]
    done = threading.Event()

    def on_message(_c: object, _u: object, _m: object) -> None:
        now = time.perf_counter()
        if count[0] == 0:
            first[0] = now
        count[0] += 1
        last[0] = now
        if count[0] >= total:
            done.set()

    def client() -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho", clean_session=False)
        c.username_pw_set("hub", hub_password)
        c.max_inflight_messages_set(1000)
        return c

    sub = client()
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    sub.subscribe(f"$share/bench/{p.ROOT}/gw/+/telemetry", qos=1)
    subscribed.wait(10)
    sub.disconnect()
    sub.loop_stop()
    publish_all(port, passwords, messages)
    sub = client()
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    thread = threading.Thread(target=sub.loop_forever, daemon=True)
    thread.start()
    done.wait(300)
    sub.disconnect()
    thread.join(10)
    return count[0] / max(last[0] - first[0], 1e-9)


async def hub_worker(
    port: int,
    hub_password: str,
    db_url: str,
    passwords: dict[str, str],
    messages: dict[str, list[bytes]],
    total_readings: int,
    protocol: str = "3.1.1",
) -> tuple[float, HubMetrics]:
    """Readings/s drained, stored and acked by one IngestService, measured the same way as
    :func:`bare_paho` (persistent session, load queued by the broker while it is away)."""
    settings = HubSettings(
        env="dev",
        worker_id="bench-1",
        database={"url": db_url, "migrate": False},
        mqtt={"port": port, "password": hub_password, "clean_session": False, "protocol": protocol},
    )
    engine = make_engine(db_url)
    metrics = HubMetrics()
    factory, store = make_session_factory(engine), SqlTimeSeriesStore(engine)
    service = IngestService(settings, factory, store, HubMetrics())
    await service.start()
    await asyncio.wait_for(service.subscribed.wait(), 10)
    await service.stop()
    await asyncio.to_thread(publish_all, port, passwords, messages)
    service = IngestService(settings, factory, store, metrics)
    first: list[float] = []
    orig = service.process

    async def timed(batch):  # type: ignore[no-untyped-def]
        if not first:
            first.append(time.perf_counter())
        await orig(batch)

    service.process = timed  # type: ignore[method-assign]
    await service.start()
    deadline = time.monotonic() + 600
    while (metrics.registry.get_sample_value("safehome_readings_stored_total") or 0) < total_readings:
        if time.monotonic() > deadline:
            raise RuntimeError("hub did not store every reading within 600 s")
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - first[0]
    await service.stop()
    engine.dispose()
    return total_readings / elapsed, metrics


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {mem:.1f} GiB RAM, Linux {platform.release()}, Python {platform.python_version()}"


def run(load: Load, db_url: str | None, protocol: str = "3.1.1") -> dict[str, str]:
    tmp = Path(tempfile.mkdtemp(prefix="safehome-bench-"))
    port = free_port()
    s = BrokerSettings(
        directory=tmp / "broker",
        tls=False,
        plain_port=port,
        persistence=False,
        user="root" if os.geteuid() == 0 else "mosquitto",
        log_dest=f"file {tmp / 'mosquitto.log'}",
        max_queued_messages=2 * load.total_messages + 10_000,
    )
    written = write_deployment(s)
    hub_password = written.hub_secret.read_text().strip()
    pw = PasswordFile(s.password_path)
    passwords = {f"bench-gw-{g:04d}": f"pw-{g}" for g in range(load.gateways)}
    for gw, secret in passwords.items():
        pw.set(gw, secret)
    proc = subprocess.Popen(run_argv(s), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        url = db_url or f"sqlite:///{tmp / 'hub.db'}"
        upgrade(url)
        paho_rate = bare_paho(port, hub_password, passwords, payloads(load, 0), load.total_messages)
        hub_rate, metrics = asyncio.run(
            hub_worker(port, hub_password, url, passwords, payloads(load, 1), load.total_readings, protocol)
        )
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    def mean_ms(kind: str) -> float:
        get = metrics.registry.get_sample_value
        n = get("safehome_store_batch_seconds_count", {"kind": kind}) or 1
        return 1000 * (get("safehome_store_batch_seconds_sum", {"kind": kind}) or 0) / n

    batch_count = (
        metrics.registry.get_sample_value("safehome_store_batch_seconds_count", {"kind": "telemetry"}) or 1
    )
    return {
        "load": f"{load.gateways} gateways x {load.messages} telemetry messages x {load.readings} readings, QoS 1",
        "database": "PostgreSQL"
        if db_url and db_url.startswith("postgres")
        else "SQLite (WAL, synchronous=FULL)",
        "bare paho subscriber (counting)": f"{paho_rate:,.0f} msg/s = {paho_rate * load.readings:,.0f} readings/s",
        "hub worker MQTT protocol": protocol,
        "hub worker: readings stored and acked": f"{hub_rate:,.0f} readings/s = {hub_rate / load.readings:,.0f} msg/s",
        "hub / bare paho (messages)": f"{hub_rate / load.readings / paho_rate:.2f}",
        "hub batches (telemetry writes)": f"{batch_count:,.0f}, mean {load.total_messages / batch_count:,.0f} messages",
        "mean store time per batch: readings / last-seen state flush": f"{mean_ms('telemetry'):,.0f} ms / {mean_ms('state'):,.0f} ms",
    }


def report(figures: dict[str, str], command: str) -> str:
    lines = [
        "## Ingest: readings stored per hub worker",
        "",
        f"- command: `{command}`",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"- machine: {machine()}; load average before the run {figures.pop('_load', '?')}",
        "",
        "| figure | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in figures.items()),
        "",
        "Same broker (generated deployment config with ACL), same load, same run; the hub worker",
        "validates every message, writes the readings, updates gateway/sensor last-seen and",
        "publishes a `stored` ack per message after the write. Broker, publisher and subscriber",
        "share the machine's cores. Both consumers drain a load the broker queued for their",
        "persistent session while they were away, so the figure is the consumer's, not the",
        "publisher's. The store times are the part of the hub's time spent in the database",
        "thread; most of the rest is validating each message with protocols/ (pydantic).",
        "",
    ]
    return "\n".join(lines)


@click.command(name="ingest")
@click.option("--gateways", default=10, show_default=True)
@click.option("--messages", default=2000, show_default=True, help="telemetry messages per gateway")
@click.option("--readings", default=20, show_default=True, help="readings per message")
@click.option("--db-url", default=None, help="PostgreSQL URL (default: a fresh SQLite file)")
@click.option("--mqtt", "protocol", type=click.Choice(["3.1.1", "5"]), default="3.1.1", show_default=True,
              help="the hub worker's MQTT protocol version")
def ingest_cmd(gateways: int, messages: int, readings: int, db_url: str | None, protocol: str) -> None:
    """Readings/s stored by one hub worker vs a bare paho subscriber."""
    load = Load(gateways, messages, readings)
    load_before = "{:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    figures = run(load, db_url, protocol)
    figures["_load"] = load_before
    command = f"safehome bench ingest --gateways {gateways} --messages {messages} --readings {readings}"
    if db_url:
        command += " --db-url postgresql://…"
    if protocol != "3.1.1":
        command += f" --mqtt {protocol}"
    text = report(figures, command)
    click.echo(text)
    bench_report.append("\n" + text)
