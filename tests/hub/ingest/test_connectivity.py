"""Connectivity: status and Last-Will, last-seen, silence deadlines → conditions and restores.

The supervision service runs against the real database the ingest writes; its clock is
the real clock plus an offset the test moves, so deadlines pass without sleeping.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import cast

from sqlalchemy import select

from hub.db.engine import make_session_factory
from hub.db.state import Condition, GatewayState
from hub.registry.models import District, Gateway, Home, Sensor, Subdistrict, Workstation
from hub.supervision.service import SupervisionService
from safehome.testing.poll import until
from tests.hub.ingest.conftest import Clock, RecordingSink, Worker, gateway_state
from tests.support.hub_gateway import ScriptedGateway
from tests.support.hub_mqtt import SecuredBroker


def conditions(worker: Worker, gw: str) -> list[tuple[str, str | None, str]]:
    with make_session_factory(worker.engine)() as s:
        rows = s.scalars(select(Condition).where(Condition.gateway_id == gw).order_by(Condition.id))
        return [(c.kind, c.sensor_id, c.state) for c in rows]


def register(worker: Worker, gw: str, sensors: dict[str, int]) -> None:
    with make_session_factory(worker.engine)() as s, s.begin():
        s.merge(District(id="d-1", name="d", timezone="Asia/Shanghai", phone="+86 1"))
        s.merge(Subdistrict(id="sd-1", district_id="d-1", name="sd", phone="+86 2"))
        s.merge(
            Workstation(
                id="ws-1",
                subdistrict_id="sd-1",
                name="ws",
                phone="+86 3",
                oncall_phone="+86 4",
                day_start=dt.time(8),
                day_end=dt.time(20),
            )
        )
        s.merge(Home(id=f"home-{gw}", workstation_id="ws-1", address="a"))
        s.merge(Gateway(id=gw, home_id=f"home-{gw}"))
        for sid, interval in sensors.items():
            s.merge(
                Sensor(gateway_id=gw, id=sid, model="smoke-dry-contact", kind="smoke", interval_s=interval)
            )


def supervisor(worker: Worker, clock: Clock) -> SupervisionService:
    return SupervisionService(
        worker.settings.supervision, make_session_factory(worker.engine), worker.metrics, [worker.sink], clock
    )


async def test_last_will_marks_gateway_offline_and_opens_condition(
    secured: SecuredBroker, worker: Worker
) -> None:
    gw = ScriptedGateway(secured, "conn-lwt-1", heartbeat_s=1).connect()
    gw.send(gw.status(reason="birth"))
    await until(lambda: (st := gateway_state(worker, gw.gw)) is not None and st.online, what="online")
    seen_before = gateway_state(worker, gw.gw).last_seen_at  # type: ignore[union-attr]
    gw.client.kill()  # no DISCONNECT: the broker publishes the Last-Will
    await until(lambda: not gateway_state(worker, gw.gw).online, what="offline from Last-Will")  # type: ignore[union-attr]
    st = gateway_state(worker, gw.gw)
    assert st is not None and st.last_status is not None and st.last_status["reason"] == "lwt"
    assert st.last_seen_at == seen_before  # the broker spoke, not the gateway
    sup = supervisor(worker, Clock())
    changes = await sup.tick()
    assert [(c.kind, c.state) for c in changes] == [("gateway_offline", "open")]
    assert conditions(worker, gw.gw) == [("gateway_offline", None, "open")]
    assert [c.kind for c in worker.sink.changes] == ["gateway_offline"]
    assert await sup.tick() == []  # one outage, one condition

    # it comes back: birth status → online → restored
    gw2 = ScriptedGateway.__new__(ScriptedGateway)
    gw2.__dict__.update(gw.__dict__)
    gw2.client = secured.client(gw.gw, secured.credentials.rotate(gw.gw), client_id=gw.gw).connect()
    gw2.send(gw2.status(reason="birth"))
    await until(lambda: gateway_state(worker, gw.gw).online, what="online again")  # type: ignore[union-attr]
    assert [(c.kind, c.state) for c in await sup.tick()] == [("gateway_offline", "restored")]
    gw2.close()


def last_seen(worker: Worker, gw: str) -> dt.datetime:
    st = gateway_state(worker, gw)
    assert st is not None and st.last_seen_at is not None
    return st.last_seen_at


async def test_silent_gateway_raises_within_its_deadline_and_restores(
    secured: SecuredBroker, worker: Worker
) -> None:
    gw = ScriptedGateway(secured, "conn-silent-1", heartbeat_s=1).connect()
    try:
        register(worker, gw.gw, {})
        clock = Clock()
        sup = supervisor(worker, clock)
        gw.send(gw.status(reason="birth"))
        await until(lambda: gateway_state(worker, gw.gw) is not None, what="state")
        heard = last_seen(worker, gw.gw)
        deadline = sup.policy.gateway_deadline_s(1)  # 1 s heartbeat x 2 + 0.2 s grace, clamped
        assert deadline == 2.0
        clock.offset = heard + dt.timedelta(seconds=deadline - 0.1) - dt.datetime.now(dt.UTC)
        assert await sup.tick() == []  # just before the deadline: nothing
        clock.offset = heard + dt.timedelta(seconds=deadline + 0.1) - dt.datetime.now(dt.UTC)
        changes = await sup.tick()  # just after it: raised
        assert [(c.kind, c.state) for c in changes] == [("gateway_silent", "open")]
        assert changes[0].at - heard <= dt.timedelta(seconds=deadline + 0.2)
        assert conditions(worker, gw.gw) == [("gateway_silent", None, "open")]

        gw.send(gw.status())  # heard again
        await until(lambda: last_seen(worker, gw.gw) > heard, what="heartbeat stored")
        clock.offset = dt.timedelta()
        assert [(c.kind, c.state) for c in await sup.tick()] == [("gateway_silent", "restored")]
        assert [(c.kind, c.state) for c in worker.sink.changes] == [
            ("gateway_silent", "open"),
            ("gateway_silent", "restored"),
        ]
    finally:
        gw.close()


async def test_silent_sensor_raises_and_restores(secured: SecuredBroker, worker: Worker) -> None:
    gw = ScriptedGateway(secured, "conn-sensor-1", heartbeat_s=30).connect()
    try:
        register(worker, gw.gw, {"smoke-1": 10, "gas-1": 10})
        clock = Clock()
        settings = worker.settings.supervision.model_copy(
            update={"gateway_max_silence_s": 3600, "sensor_tick_s": 0.001}
        )
        sup = SupervisionService(
            settings, make_session_factory(worker.engine), worker.metrics, [worker.sink], clock
        )
        worker.service.clock = clock  # the ingest stamps last-seen with the same clock
        t = gw.telemetry([("smoke-1", "battery_v", 3.1), ("gas-1", "gas_lel", 0.0)])
        gw.send(t)
        await gw.acked([t.id])
        await worker.service.flush_state()  # last-seen is written in batches; write it now
        assert await sup.tick() == []
        clock.advance(10.6)  # interval 10 s + grace 0.5 s
        changes = await sup.tick()
        assert sorted((c.kind, c.sensor_id, c.state) for c in changes) == [
            ("sensor_silent", "gas-1", "open"),
            ("sensor_silent", "smoke-1", "open"),
        ]
        t2 = gw.telemetry([("gas-1", "gas_lel", 0.0)], ts=t.ts + 1)
        gw.send(t2)
        await gw.acked([t2.id])
        await worker.service.flush_state()
        assert [(c.kind, c.sensor_id, c.state) for c in await sup.tick()] == [
            ("sensor_silent", "gas-1", "restored")
        ]
        assert sorted(conditions(worker, gw.gw)) == [
            ("sensor_silent", "gas-1", "restored"),
            ("sensor_silent", "smoke-1", "open"),
        ]
    finally:
        gw.close()


async def test_two_supervisors_open_and_restore_once(secured: SecuredBroker, worker: Worker) -> None:
    """Every worker ticks; the database lets one of them open (and restore) a condition."""
    register(worker, "conn-twice-1", {})
    clock = Clock()
    sups = [supervisor(worker, clock) for _ in range(3)]
    for s in sups:
        s.sinks = [type(worker.sink)()]
    assert [await s.tick() for s in sups] == [[], [], []]  # never heard: counts from now
    clock.advance(60)
    results = await asyncio.gather(*(s.tick() for s in sups))
    opened = [c for r in results for c in r]
    assert [(c.kind, c.state) for c in opened] == [("gateway_silent", "open")]
    assert sum(len(cast(RecordingSink, s.sinks[0]).changes) for s in sups) == 1
    assert conditions(worker, "conn-twice-1") == [("gateway_silent", None, "open")]
    with make_session_factory(worker.engine)() as db, db.begin():  # heard again
        db.add(GatewayState(gateway_id="conn-twice-1", online=True, last_seen_at=clock()))
    results = await asyncio.gather(*(s.tick() for s in sups))
    assert [(c.kind, c.state) for r in results for c in r] == [("gateway_silent", "restored")]
    assert conditions(worker, "conn-twice-1") == [("gateway_silent", None, "restored")]
