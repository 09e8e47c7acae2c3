"""Gateway state flushed by several lanes or workers, in the wrong order, stays right.

Each lane (and each worker) buffers what it heard and writes it once a second, so a flush
can carry state older than what another flush wrote already. Seen in a storm: 12-14 of
3,000 cut-off gateways were written online again by the telemetry lane's flush of traffic
heard before their Last-Will, and were reported silent after ~60 s instead of offline
after ~10 s. These tests replay the races step by step on SQLite (its one-statement path
and the portable one) and PostgreSQL, with real decoded messages and the real flush.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

import protocols as p
from hub.db.engine import make_engine, make_session_factory
from hub.db.state import GatewayState
from hub.ingest.clock import ClockWatch
from hub.ingest.decode import Incoming, classify
from hub.ingest.plan import StateBuffer, make_plan
from hub.ingest.store import store_state
from hub.metrics import HubMetrics
from hub.settings import SupervisionSettings
from hub.supervision.service import SupervisionService

T0 = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
GW = "gw-order-1"


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def heard(msg: p.Telemetry | p.Status, s: float) -> Incoming:
    channel = "telemetry" if isinstance(msg, p.Telemetry) else "status"
    item = classify(str(p.Topic.of(msg.gw, channel)), p.encode(msg), False, at(s))
    assert isinstance(item, Incoming), item
    return item


def telemetry(seq: int) -> p.Telemetry:
    return p.Telemetry(gw=GW, seq=seq, id=p.new_event_id(), ts=int(T0.timestamp() * 1000), synced=True,
                       readings=[p.Reading(sensor="gas-1", metric="gas_lel", value=0.0)])  # fmt: skip


def status(state: p.GatewayState, reason: str) -> p.Status:
    return p.Status.model_validate(
        {"gw": GW, "state": state.value, "reason": reason, "ts": int(T0.timestamp() * 1000), "synced": True},
        strict=False,
    )


ONLINE, OFFLINE = p.GatewayState.ONLINE, p.GatewayState.OFFLINE


def buffered(*items: Incoming) -> StateBuffer:
    """What one lane's buffer holds after hearing ``items``."""
    buf = StateBuffer()
    plan = make_plan(list(items), ClockWatch(120))
    buf.add(plan.gateways, plan.sensors)
    return buf


@pytest.fixture
def flushes(db_url: str) -> Iterator[list[tuple[sessionmaker[Session], bool]]]:
    """(session factory, generic) for every way the state flush writes on this database."""
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    paths = [False, True] if engine.dialect.name == "sqlite" else [False]
    yield [(factory, generic) for generic in paths]
    engine.dispose()


def clear(factory: sessionmaker[Session]) -> None:
    with factory() as s, s.begin():
        s.execute(delete(GatewayState))


def row(factory: sessionmaker[Session]) -> GatewayState:
    with factory() as s:
        st = s.get(GatewayState, GW)
        assert st is not None
        s.expunge(st)
        return st


def test_traffic_heard_before_the_last_will_never_marks_the_gateway_online_again(
    flushes: list[tuple[sessionmaker[Session], bool]],
) -> None:
    for factory, generic in flushes:
        clear(factory)
        store_state(factory, buffered(heard(status(ONLINE, "birth"), 0)), generic)
        telemetry_lane = buffered(heard(telemetry(1), 10))  # heard just before the cut
        priority_lane = buffered(heard(status(OFFLINE, "lwt"), 11))  # the broker's Last-Will
        store_state(factory, priority_lane, generic)  # the priority lane flushes first ...
        store_state(factory, telemetry_lane, generic)  # ... the telemetry lane after it
        st = row(factory)
        assert (st.online, st.last_status and st.last_status["reason"]) == (False, "lwt"), generic
        assert st.last_seen_at == at(10)  # the traffic still counts as heard
        assert st.status_at == at(11)  # the Last-Will's grace counts from here


def test_an_older_status_flushed_late_by_another_worker_loses(
    flushes: list[tuple[sessionmaker[Session], bool]],
) -> None:
    for factory, generic in flushes:
        clear(factory)
        worker_a = buffered(heard(status(ONLINE, "heartbeat"), 10))
        worker_b = buffered(heard(status(OFFLINE, "lwt"), 11))
        store_state(factory, worker_b, generic)
        store_state(factory, worker_a, generic)  # the heartbeat, heard first, written last
        st = row(factory)
        assert (st.online, st.status_at, st.last_seen_at) == (False, at(11), at(10)), generic

        # and the other way round: a Last-Will written after the birth that followed it
        worker_a = buffered(heard(status(ONLINE, "birth"), 12))
        worker_b = buffered(heard(status(OFFLINE, "lwt"), 11))
        store_state(factory, worker_a, generic)
        store_state(factory, worker_b, generic)
        st = row(factory)
        assert (st.online, st.status_at, st.last_seen_at) == (True, at(12), at(12)), generic


def test_traffic_of_a_gateway_never_seen_makes_it_online(
    flushes: list[tuple[sessionmaker[Session], bool]],
) -> None:
    for factory, generic in flushes:
        clear(factory)
        store_state(factory, buffered(heard(telemetry(1), 5)), generic)
        st = row(factory)
        assert (st.online, st.last_seen_at, st.status_at) == (True, at(5), None), generic


async def test_the_cut_off_gateway_is_reported_offline_after_the_grace_not_silent_later(
    flushes: list[tuple[sessionmaker[Session], bool]],
) -> None:
    factory, generic = flushes[0]
    store_state(factory, buffered(heard(status(ONLINE, "birth"), 0)), generic)
    telemetry_lane = buffered(heard(telemetry(1), 10))
    store_state(factory, buffered(heard(status(OFFLINE, "lwt"), 11)), generic)
    store_state(factory, telemetry_lane, generic)
    now = at(11)
    sup = SupervisionService(SupervisionSettings(), factory, HubMetrics(), [], clock=lambda: now)
    assert await sup.tick() == []  # within the grace: perhaps a blip
    now = at(21)  # offline_grace_s (10 s) after the Last-Will
    assert [(c.kind, c.state, c.gateway_id) for c in await sup.tick()] == [("gateway_offline", "open", GW)]
