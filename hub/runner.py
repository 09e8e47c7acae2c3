"""``safehome hub run``: build every hub service from one settings object and run them.

Wiring happens here and only here (:func:`build_hub`): engine, stores, metrics, the
ingest, supervision, the broker ``$SYS`` monitor, the alarm service with its notification
channels, the HTTP app and its ``/api/v1`` routes. A feature is a service
(``hub.services``, started in order) and may be an event sink (``hub.sinks``, seen by
ingest, supervision and the broker monitor); no feature wires itself in.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import click
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms.metrics import AlarmMetrics
from hub.alarms.service import AlarmService
from hub.api.app import mount_api
from hub.api.command_mqtt import MqttCommandSender
from hub.api.context import ApiContext
from hub.api.resources import CommandSenderService
from hub.app import create_app
from hub.broker.sysmon import BrokerMonitor
from hub.db.engine import make_engine, make_session_factory
from hub.db.migrate import upgrade
from hub.ingest.service import IngestService
from hub.metrics import HubMetrics
from hub.mqtt import downlink_client_id
from hub.notify.mqtt_acks import MqttAckPublisher
from hub.settings import HttpSettings, HubSettings, SettingsError, TimeseriesSettings, load_hub_settings
from hub.sinks import EventSink
from hub.supervision.service import SupervisionService
from hub.timeseries import TimeSeriesStore
from hub.timeseries.factory import make_timeseries
from hub.timeseries.retention import RetentionPolicy, RetentionService
from protocols.logs import configure_logging

log = logging.getLogger(__name__)

class Service(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class Hub:
    settings: HubSettings
    engine: Engine
    session_factory: sessionmaker[Session]
    metrics: HubMetrics
    timeseries: TimeSeriesStore
    app: FastAPI
    sinks: list[EventSink] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    ingest: IngestService | None = None
    supervision: SupervisionService | None = None
    monitor: BrokerMonitor | None = None
    alarms: AlarmService | None = None
    http_port: int | None = None
    _server: uvicorn.Server | None = None
    _server_task: asyncio.Task[None] | None = None
    _started: list[Service] = field(default_factory=list)

    async def start(self) -> None:
        """Start the services in order; the HTTP server last."""
        for svc in self.services:
            await svc.start()
            self._started.append(svc)
        if self.settings.http.enabled:
            await self._start_http()

    async def _start_http(self) -> None:
        server = uvicorn.Server(http_config(self.app, self.settings.http))
        # uvicorn captures SIGINT/SIGTERM while serving and re-raises them when it has
        # shut down, so run_hub's own handlers still see them and stop every service.
        self._server = server
        self._server_task = asyncio.create_task(server.serve(), name="http")
        while not server.started:
            if self._server_task.done():
                self._server_task.result()  # raises the bind error
                raise RuntimeError("HTTP server stopped during startup")
            await asyncio.sleep(0.01)
        sock = server.servers[0].sockets[0]
        self.http_port = int(sock.getsockname()[1])
        scheme = "https" if self.settings.http.tls else "http"
        log.info("hub HTTP on %s://%s:%s", scheme, self.settings.http.host, self.http_port)

    async def stop(self) -> None:
        if self._server is not None and self._server_task is not None:
            self._server.should_exit = True
            await self._server_task
            self._server = None
        for svc in reversed(self._started):
            try:
                await svc.stop()
            except Exception:
                log.exception("stopping %s failed", type(svc).__name__)
        self._started.clear()
        self.timeseries.close()
        self.engine.dispose()


#: How long a stopping hub lets open requests finish. An open live stream (a console on a
#: desk) never finishes by itself: without a bound, stopping the hub waited for every console
#: to go away. After it the streams are cut; the consoles reconnect and resume by event id.
HTTP_SHUTDOWN_GRACE_S = 3


def http_config(app: FastAPI, http: HttpSettings) -> uvicorn.Config:
    """uvicorn's settings for the hub's listener (HTTPS when a certificate is configured)."""
    tls = {"ssl_certfile": str(http.tls_certfile), "ssl_keyfile": str(http.tls_keyfile)} if http.tls else {}
    return uvicorn.Config(
        app,
        host=http.host,
        port=http.port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=HTTP_SHUTDOWN_GRACE_S,
        **tls,  # type: ignore[arg-type]
    )


def _db_check(engine: Engine) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return False, f"database unreachable: {type(exc).__name__}"
        return True, "reachable"

    return check


def _retention(s: TimeseriesSettings, engine: Engine) -> RetentionService:
    rollups = dt.timedelta(days=s.rollup_retention_days) if s.rollup_retention_days else None
    policy = RetentionPolicy(raw_retention=dt.timedelta(days=s.retention_days), rollup_retention=rollups)
    return RetentionService(make_engine(s.url) if s.url else engine, policy, s.retention_every_s)


def _alarm_service(settings: HubSettings, factory: sessionmaker[Session], metrics: HubMetrics) -> AlarmService:
    """The alarm engine of this worker, with the MQTT publisher that tells the homes."""
    publisher = MqttAckPublisher(settings.mqtt, downlink_client_id(settings.mqtt, settings.worker_id, "acks"))
    a = settings.alarms
    deliver = a.deliver if a.deliver is not None else "priority" in settings.ingest.lanes
    return AlarmService(
        a,
        factory,
        settings.worker_id,
        publisher=publisher,
        metrics=AlarmMetrics(metrics.registry),
        secret_box=settings.secret_box(),
        deliver=deliver,
    )


def build_hub(settings: HubSettings, alarms: bool = True) -> Hub:
    """Every hub service wired from ``settings`` (nothing started yet). ``alarms=False``: no
    alarm service and no ``/api/v1`` (tests of the core services alone)."""
    engine = make_engine(settings.database.url)
    if settings.database.migrate:
        upgrade(engine, secret_box=settings.secret_box())
    factory = make_session_factory(engine)
    metrics = HubMetrics()
    ts = make_timeseries(settings.timeseries, engine)
    hub = Hub(settings, engine, factory, metrics, ts, app=FastAPI())
    hub.ingest = IngestService(settings, factory, ts, metrics, hub.sinks)
    hub.supervision = SupervisionService(settings.supervision, factory, metrics, hub.sinks)
    hub.services = [hub.ingest, hub.supervision]
    if settings.mqtt.backend == "mosquitto":
        hub.monitor = BrokerMonitor(settings.mqtt, settings.worker_id, factory, metrics, hub.sinks)
        hub.services.append(hub.monitor)
    else:
        # NATS publishes no $SYS topics (and has no per-client queue to drop from: a slow
        # consumer is cut off and counted in safehome_ingest_lane_lost_total)
        log.info("broker $SYS monitor off on NATS: the cluster's own monitoring port (/varz) tells what it did")
    if settings.timeseries.backend == "sql":
        hub.services.append(_retention(settings.timeseries, engine))
    ingest = hub.ingest
    checks = {
        "database": _db_check(engine),
        "broker": lambda: (ingest.subscribed.is_set(), "subscribed" if ingest.subscribed.is_set() else "not connected"),
    }
    if alarms:
        hub.alarms = _alarm_service(settings, factory, metrics)
        # the hub's /healthz reports unconfigured channels (never failing)
        checks["notify_channels"] = hub.alarms.channel_health
    hub.app = create_app(settings, metrics, checks)
    if hub.alarms is not None:
        a = hub.alarms
        hub.sinks.append(a.sink)  # ingest, supervision and the broker monitor share this list
        # started first and stopped last: the sink decides from the first event the ingest
        # stores to the last (an event told to a sink that is not running waits for a re-check)
        hub.services.insert(0, a)
        sender = MqttCommandSender(settings.mqtt, downlink_client_id(settings.mqtt, settings.worker_id, "commands"))
        hub.services.append(CommandSenderService(sender))  # gateway commands (the resource routes)
        ctx = ApiContext(
            factory, a.clock, outbox=a.dispatcher, bus=a.bus, secret_box=a.webhooks.box, timeseries=ts, commands=sender,
            webhook_targets=settings.alarms.webhooks.policy(),
            access_ttl=dt.timedelta(seconds=settings.auth.access_ttl_s),
            refresh_ttl=dt.timedelta(seconds=settings.auth.refresh_ttl_s),
            password_hasher=settings.auth.hasher(),
        )
        mount_api(hub.app, ctx)
        hub.app.state.console_bus = a.bus
    return hub


#: Threads of the worker's default executor (every service's blocking database call runs
#: there). Python's default is cpu_count + 4 = 6 on two cores: in a storm the outbox
#: workers, alarm batches, supervision and state flushes each held a thread waiting for
#: SQLite's write lock, and the ingest's smoke alarm queued for a free thread behind them.
#: Waiting threads cost no CPU; these only bound how many may wait.
HUB_THREADS = 32


async def run_hub(settings: HubSettings) -> None:
    hub = build_hub(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(HUB_THREADS, thread_name_prefix="hub"))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await hub.start()
    log.info("hub worker %s running", settings.worker_id)
    try:
        await stop.wait()
    finally:
        log.info("hub worker %s stopping", settings.worker_id)
        await hub.stop()


@click.command(name="run")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="TOML settings (table [hub] or top level); SAFEHOME_HUB_* env overrides it.")
def run_cmd(config_path: Path | None) -> None:
    """Run one hub worker: ingest, supervision, broker monitor, HTTP (/metrics, /healthz)."""
    try:
        settings = load_hub_settings(config_path)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.log_level)
    asyncio.run(run_hub(settings))
