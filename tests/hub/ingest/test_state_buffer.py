"""Connectivity state is buffered and written once a second: the result in the database
must be the same as writing every batch as it came (real SQLite, random batch sequences)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

import protocols as p
from hub.db.base import Base
from hub.db.engine import make_engine, make_session_factory
from hub.db.state import GatewayState, SensorState
from hub.ingest.clock import ClockWatch
from hub.ingest.plan import StateBuffer, make_plan
from hub.ingest.store import store_state
from tests.hub.ingest.conftest import incoming

T0 = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)
GWS = ["gw-a", "gw-b"]


def _status(gw: str, online: bool, reason: str, seq: int) -> p.Status:
    return p.Status.model_validate(
        {"gw": gw, "state": "online" if online else "offline", "reason": reason, "ts": 1, "synced": True,
         "seq": seq, "sensors": [{"id": "smoke-1", "model": "m"}]},
        strict=False,
    )  # fmt: skip


def _telemetry(gw: str, seq: int) -> p.Telemetry:
    return p.Telemetry(gw=gw, seq=seq, id=p.new_event_id(), ts=5, synced=True,
                       readings=[p.Reading(sensor="gas-1", metric="gas_lel", value=1.0)])  # fmt: skip


# one message: (gateway, what, retained)
message = st.tuples(
    st.sampled_from(GWS),
    st.sampled_from(["telemetry", "heartbeat", "lwt", "shutdown", "birth"]),
    st.booleans(),
)


def _plans(batches: list[list[tuple[str, str, bool]]]) -> list[Any]:
    plans, seq = [], 0
    for i, batch in enumerate(batches):
        items = []
        for gw, what, retained in batch:
            seq += 1
            if what == "telemetry":
                items.append(incoming(_telemetry(gw, seq)))
            else:
                online = what in ("heartbeat", "birth")
                items.append(incoming(_status(gw, online, what, seq), retained=retained))
        plan = make_plan(items, ClockWatch(120))  # statuses stamped ts=1: their clock offsets are kept too
        # every batch arrives one second after the one before
        for g in plan.gateways.values():
            if g.last_seen is not None:
                g.last_seen = T0 + dt.timedelta(seconds=i)
            if g.status_at is not None:
                g.status_at = T0 + dt.timedelta(seconds=i)
        plan.sensors = {k: T0 + dt.timedelta(seconds=i) for k in plan.sensors}
        plans.append(plan)
    return plans


def _rows(sessions: sessionmaker[Session]) -> tuple[list[Any], list[Any]]:
    with sessions() as s:
        gws = [
            (g.gateway_id, g.online, g.last_seen_at, g.last_status, g.last_seq, g.status_at, g.clock_offset_s)
            for g in s.scalars(select(GatewayState).order_by(GatewayState.gateway_id))
        ]
        sensors = [
            (x.gateway_id, x.sensor_id, x.last_seen_at)
            for x in s.scalars(select(SensorState).order_by(SensorState.gateway_id, SensorState.sensor_id))
        ]
    return gws, sensors


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("state") / "state.db"
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine, tables=[GatewayState.__table__, SensorState.__table__])  # type: ignore[list-item]
    yield engine
    engine.dispose()


def _clear(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        s.execute(delete(GatewayState))
        s.execute(delete(SensorState))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(message, min_size=1, max_size=4), min_size=1, max_size=6),
       split=st.integers(min_value=0, max_value=6))  # fmt: skip
def test_buffered_state_equals_writing_every_batch(engine: Engine, batches: Any, split: int) -> None:
    sessions = make_session_factory(engine)
    plans = _plans(batches)

    _clear(sessions)
    for plan in plans:  # the old way: every batch written as it came
        buf = StateBuffer()
        buf.add(plan.gateways, plan.sensors)
        store_state(sessions, buf)
    expected = _rows(sessions)

    _clear(sessions)
    buf = StateBuffer()
    for i, plan in enumerate(plans):  # buffered, flushed once part way and once at the end
        buf.add(plan.gateways, plan.sensors)
        if i == split:
            store_state(sessions, buf.take())
    store_state(sessions, buf.take())
    assert _rows(sessions) == expected


def test_a_failed_flush_goes_back_under_newer_state() -> None:
    plans = _plans([[("gw-a", "heartbeat", False)], [("gw-a", "lwt", False)]])
    buf = StateBuffer()
    buf.add(plans[0].gateways, plans[0].sensors)
    failed = buf.take()
    buf.add(plans[1].gateways, plans[1].sensors)  # the Last-Will came while the write failed
    buf.put_back(failed)
    g = buf.gateways["gw-a"]
    assert g.online is False  # the newer Last-Will still wins
    assert g.last_seen == T0  # and the heartbeat's last-seen is kept (the Last-Will has none)
    assert buf.sensors == {("gw-a", "smoke-1"): T0}
    assert len(buf.take()) == 2 and len(buf) == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(message, min_size=1, max_size=4), min_size=1, max_size=6),
       micros=st.integers(min_value=0, max_value=999_999))  # fmt: skip
def test_sqlites_one_statement_upserts_equal_the_generic_ones(engine: Engine, batches: Any, micros: int) -> None:
    """On SQLite the state is written with one statement per kind over a JSON array; what
    lands (and reads back: timestamps to the microsecond, status JSON) equals the portable
    row-by-row path."""
    sessions = make_session_factory(engine)
    plans = _plans(batches)
    for plan in plans:
        for g in plan.gateways.values():
            if g.last_seen is not None:
                g.last_seen += dt.timedelta(microseconds=micros)
            if g.status_at is not None:
                g.status_at += dt.timedelta(microseconds=micros)
        plan.sensors = {k: v + dt.timedelta(microseconds=micros) for k, v in plan.sensors.items()}
    results = []
    for generic in (True, False):
        _clear(sessions)
        for plan in plans:
            buf = StateBuffer()
            buf.add(plan.gateways, plan.sensors)
            store_state(sessions, buf, generic=generic)
        results.append(_rows(sessions))
    assert results[0] == results[1]
    gws, sensors = results[1]
    assert all(r[2] is None or r[2].tzinfo is not None for r in gws)
    assert all(r[2].tzinfo is not None for r in sensors)
