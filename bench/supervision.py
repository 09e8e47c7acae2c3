"""Supervision's database round on a district-sized registry: CPU per gateway round (every
``tick_s``) and per sensor round (every ``sensor_tick_s``), against loading every sensor
as the round did before it filtered in SQL. Every hub worker runs these rounds."""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from bench import report
from firmware_sim.registry import generate, registry_to_yaml
from hub.db.engine import make_engine, make_session_factory, read_only
from hub.db.migrate import upgrade
from hub.db.state import GatewayState, SensorState
from hub.metrics import HubMetrics
from hub.registry.models import Gateway, Sensor
from hub.registry.service import import_register
from hub.settings import SupervisionSettings
from hub.supervision.service import SupervisionService

ROUNDS = 7


def _cpu_ms(fn: Callable[[], object]) -> float:
    samples = []
    for _ in range(ROUNDS):
        c = time.process_time()
        fn()
        samples.append((time.process_time() - c) * 1000)
    return statistics.median(samples)


def _fill_state(sessions: sessionmaker[Session], now: dt.datetime) -> tuple[int, int]:
    """Every gateway heard within its 30 s heartbeat, every sensor within its interval."""
    with sessions() as s, s.begin():
        gws = s.scalars(select(Gateway.id)).all()
        s.execute(insert(GatewayState), [
            {"gateway_id": g, "online": True, "last_seen_at": now - dt.timedelta(seconds=i % 30),
             "last_status": {"heartbeat_s": 30}}
            for i, g in enumerate(gws)
        ])  # fmt: skip
        sensors = s.execute(select(Sensor.gateway_id, Sensor.id, Sensor.interval_s)).all()
        s.execute(insert(SensorState), [
            {"gateway_id": g, "sensor_id": x, "last_seen_at": now - dt.timedelta(seconds=i % min(60, interval))}
            for i, (g, x, interval) in enumerate(sensors)
        ])  # fmt: skip
    return len(gws), len(sensors)


def _load_every_sensor(sessions: sessionmaker[Session]) -> int:
    """The sensor round's read as it was: every sensor with its last-seen."""
    stmt = select(Sensor.gateway_id, Sensor.id, Sensor.interval_s, SensorState.last_seen_at).outerjoin(
        SensorState, (SensorState.gateway_id == Sensor.gateway_id) & (SensorState.sensor_id == Sensor.id)
    )
    with sessions() as s:
        return len(list(read_only(s).execute(stmt)))


def measure(homes: int) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="safehome-bench-sup-") as tmp:
        reg_path, url = Path(tmp) / "registry.yaml", f"sqlite:///{Path(tmp) / 'hub.db'}"
        reg_path.write_text(registry_to_yaml(generate(homes)))
        upgrade(url)
        engine = make_engine(url)
        try:
            sessions = make_session_factory(engine)
            import_register(sessions, [reg_path])
            now = dt.datetime.now(dt.UTC)
            n_gw, n_sensors = _fill_state(sessions, now)
            sup = SupervisionService(SupervisionSettings(), sessions, HubMetrics(), clock=lambda: now)
            gw_ms = _cpu_ms(lambda: sup._tick_db(now, False))
            sensor_ms = _cpu_ms(lambda: sup._tick_db(now, True)) - gw_ms
            before_ms = _cpu_ms(lambda: _load_every_sensor(sessions))
            changes = sup._tick_db(now, True)
        finally:
            engine.dispose()
    s = SupervisionSettings()
    share = gw_ms / (s.tick_s * 1000) + sensor_ms / (s.sensor_tick_s * 1000)
    return [
        ("registry", f"{homes:,} homes, {n_gw:,} gateways, {n_sensors:,} sensors, all heard on time"),
        (f"gateway round (every {s.tick_s:g} s), CPU median of {ROUNDS}", f"{gw_ms:.1f} ms"),
        (f"sensor round (every {s.sensor_tick_s:g} s), CPU median of {ROUNDS}", f"{sensor_ms:.1f} ms"),
        ("for comparison: the sensor round's read before (every sensor, query alone)", f"{before_ms:.1f} ms"),
        ("supervision's share of one core per hub worker", f"{share * 100:.2f} %"),
        ("conditions opened (all on time: must be 0)", str(len(changes))),
    ]


def run(homes_list: list[int]) -> None:
    for homes in homes_list:
        report.write(
            f"Supervision round at {homes:,} homes",
            measure(homes),
            "SQLite; one `SupervisionService` database round (read the late and flagged "
            "gateways and sensors, evaluate, write nothing) on a generated registry whose "
            "every gateway and sensor was heard within its interval. Every hub worker runs it.",
        )
