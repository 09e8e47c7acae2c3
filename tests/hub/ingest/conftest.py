"""Ingest fixtures: a real Mosquitto with the generated ACL, a real database (``db_url``:
SQLite and PostgreSQL), and hub services started in the test's event loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

import protocols as p
from hub.db.engine import make_engine, make_session_factory
from hub.db.events import StoredEvent
from hub.db.state import GatewayState
from hub.ingest.decode import Incoming, classify
from hub.ingest.service import IngestService
from hub.metrics import HubMetrics
from hub.settings import HubSettings, IngestSettings, MqttSettings, SupervisionSettings
from hub.sinks import ConditionChange, NewEvent
from hub.timeseries.sql import SqlTimeSeriesStore
from safehome.testing.mosquitto import Mosquitto
from tests.support.hub_mqtt import SecuredBroker, start_secured_broker


@dataclass
class RecordingSink:
    """The alarm engine's seat: records what it is told."""

    events: list[NewEvent] = field(default_factory=list)
    changes: list[ConditionChange] = field(default_factory=list)

    async def events_stored(self, events: Sequence[NewEvent]) -> None:
        self.events.extend(events)

    async def conditions_changed(self, changes: Sequence[ConditionChange]) -> None:
        self.changes.extend(changes)


@pytest.fixture
def secured(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> SecuredBroker:
    return start_secured_broker(mosquitto_factory, tmp_path / "secured", extra="sys_interval 1\n")


def hub_settings(secured: SecuredBroker | MqttSettings, db_url: str, **kw: object) -> HubSettings:
    """Test settings on ``secured`` (Mosquitto), or with these MQTT settings (a NATS cluster)."""
    if isinstance(secured, MqttSettings):
        mqtt = secured
    else:
        mqtt = MqttSettings(port=secured.broker.port, password=secured.hub_password)
    return HubSettings(
        env="test",
        worker_id=f"w-{uuid.uuid4().hex[:8]}",
        database={"url": db_url, "migrate": False},
        mqtt=mqtt,
        ingest=IngestSettings(reject_log_interval_s=5, retry_delay_s=0.2),
        supervision=SupervisionSettings(
            tick_s=0.2,
            gateway_max_silence_s=2,
            gateway_min_silence_s=0.5,
            heartbeat_misses=2,
            grace_s=0.2,
            offline_grace_s=0,
            sensor_grace_s=0.5,
            sensor_tick_s=0.2,
        ),
        http={"enabled": False},
        **kw,  # type: ignore[arg-type]
    )


@dataclass
class Worker:
    settings: HubSettings
    engine: Engine
    service: IngestService
    sink: RecordingSink
    metrics: HubMetrics

    def count(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return value or 0.0


async def start_worker(
    secured: SecuredBroker | MqttSettings,
    db_url: str,
    worker_id: str | None = None,
    clean_session: bool = True,
    lanes: list[str] | None = None,
    *,
    subscribed: bool = False,
    **ingest_settings: object,
) -> Worker:
    """A started ingest worker on the secured broker (``subscribed``: once its subscriptions
    are in place); ``ingest_settings`` override fields of ``[hub.ingest]``."""
    settings = hub_settings(secured, db_url)
    mqtt = settings.mqtt.model_copy(update={"clean_session": clean_session})
    ingest = settings.ingest.model_copy(
        update={"lanes": lanes or ["priority", "telemetry"], **ingest_settings}
    )
    settings = settings.model_copy(
        update={"mqtt": mqtt, "ingest": ingest, "worker_id": worker_id or settings.worker_id}
    )
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    metrics = HubMetrics()
    sink = RecordingSink()
    service = IngestService(settings, factory, SqlTimeSeriesStore(engine), metrics, [sink])
    await service.start()
    if subscribed:
        await asyncio.wait_for(service.subscribed.wait(), 10)
    return Worker(settings, engine, service, sink, metrics)


@pytest.fixture
async def worker(secured: SecuredBroker, db_url: str) -> AsyncIterator[Worker]:
    w = await start_worker(secured, db_url)
    await asyncio.wait_for(w.service.subscribed.wait(), 10)
    yield w
    await w.service.stop()
    w.engine.dispose()


def stored(worker: Worker, ids: list[str] | None = None) -> int:
    """Events in the worker's database (of ``ids`` only, when given)."""
    with worker.engine.connect() as conn:
        stmt = select(func.count()).select_from(StoredEvent)
        if ids is not None:
            stmt = stmt.where(StoredEvent.id.in_(ids))
        return int(conn.scalar(stmt) or 0)


class Clock:
    """The hub's clock for supervision tests: now, plus what the test advanced."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)


def gateway_state(worker: Worker, gw: str) -> GatewayState | None:
    with make_session_factory(worker.engine)() as s:
        return s.get(GatewayState, gw)


#: The receive time of :func:`incoming`.
PLAN_NOW = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)


def incoming(msg: p.Event | p.Telemetry | p.Status, retained: bool = False) -> Incoming:
    """``msg`` as the receiver classifies it off the wire (at ``PLAN_NOW``)."""
    channel = {p.Event: "event", p.Telemetry: "telemetry", p.Status: "status"}[type(msg)]
    item = classify(str(p.Topic.of(msg.gw, channel)), p.encode(msg), retained, PLAN_NOW)
    assert isinstance(item, Incoming), item
    return item
