"""Fairness through a real broker into a real database: one gateway's flood costs only that
gateway. Orders and counts are compared, never wall-clock times: the hub's processor is
held (a sink that waits, the alarm engine's seat) while the flood and the other homes'
messages queue, then let go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import select

import protocols as p
from hub.alarms.classes import classify
from hub.db.events import StoredEvent
from hub.db.state import Condition
from hub.sinks import ConditionChange, NewEvent
from safehome.testing.poll import until
from tests.hub.ingest.conftest import Worker, start_worker, stored
from tests.support.hub_gateway import ScriptedGateway
from tests.support.hub_mqtt import SecuredBroker


def stored_ids(worker: Worker, ids: list[str]) -> set[str]:
    with worker.engine.connect() as conn:
        return set(conn.scalars(select(StoredEvent.id).where(StoredEvent.id.in_(ids))))


class Gate:
    """A sink that holds the ingest's processor on its first batch until opened."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.open = asyncio.Event()

    async def events_stored(self, events: Sequence[NewEvent]) -> None:
        self.entered.set()
        await self.open.wait()

    async def conditions_changed(self, changes: Sequence[ConditionChange]) -> None:
        pass


@pytest.fixture
async def gated(
    secured: SecuredBroker, db_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Worker, Gate]]:
    w = await start_worker(secured, db_url, subscribed=True, max_pending=1000, gateway_pending=64, **getattr(request, "param", {}))
    gate = Gate()
    w.service.sinks.insert(0, gate)
    yield w, gate
    gate.open.set()
    await w.service.stop()
    w.engine.dispose()


async def flood(gw: ScriptedGateway, events: list[p.Event]) -> None:
    """Publish every event at once (QoS 1), as fast as the client goes."""
    topic = str(p.Topic.of(gw.gw, "event"))
    infos = [gw.client.c.publish(topic, p.encode(e), qos=1) for e in events]
    def wait_all() -> None:
        for i in infos:
            i.wait_for_publish(60)

    await asyncio.to_thread(wait_all)


async def hold(gated: tuple[Worker, Gate], flooder: ScriptedGateway) -> None:
    """Have the processor take one batch and wait in the gate with it."""
    _, gate = gated
    first = flooder.event(p.EventKind.TAMPER, sensor="held")
    flooder.send(first)
    await asyncio.wait_for(gate.entered.wait(), 20)


@pytest.mark.parametrize("kind", [p.EventKind.SMOKE, p.EventKind.TAMPER])
async def test_another_homes_alarm_overtakes_a_flood(
    secured: SecuredBroker, gated: tuple[Worker, Gate], kind: p.EventKind
) -> None:
    """300 events of one gateway (smoke, never shed; or tamper) queue before another home's
    smoke alarm; that alarm is stored in the next batch, not after the flood."""
    w, gate = gated
    hostile = ScriptedGateway(secured, "fl-hostile").connect()
    home = ScriptedGateway(secured, "fl-home").connect()
    try:
        await hold(gated, hostile)
        evs = [hostile.event(kind, sensor=f"s-{i % 50}") for i in range(300)]
        await flood(hostile, evs)
        alarm = home.event(p.EventKind.SMOKE, sensor="smoke-1")
        home.send(alarm)
        await until(lambda: len(w.service.queue) == 301, 20, "flood and alarm queued at the hub")
        gate.open.set()
        await home.acked([alarm.id])
        await until(lambda: any(n.event.id == alarm.id for n in w.sink.events), 10, "alarm engine told")
        order = [n.event.id for n in w.sink.events]
        position = order.index(alarm.id)
        # batch 1 was the held one (1 event); batch 2 holds the home's alarm and, for a
        # smoke flood, none of the flood (a heavy gateway is not served beside another
        # gateway of its rank); a tamper flood ranks lower and may fill the rest of it
        assert position == 1, f"the home's alarm came {position}th, after the flood"
        await hostile.acked([e.id for e in evs], within=60)
        assert stored(w, [e.id for e in evs]) == 300
    finally:
        hostile.close()
        home.close()


@pytest.mark.parametrize("gated", [{"gateway_batch_max": 500}], indirect=True)  # drains fast
async def test_shed_messages_are_counted_not_acked_and_stored_when_resent(
    secured: SecuredBroker, gated: tuple[Worker, Gate]
) -> None:
    """Under memory pressure the flooding gateway's trouble events are shed (never its smoke
    alarm, never another home's message); shed ones are not acked, so the gateway resends."""
    w, gate = gated
    hostile = ScriptedGateway(secured, "sh-hostile").connect()
    home = ScriptedGateway(secured, "sh-home").connect()
    try:
        await hold(gated, hostile)
        evs = [hostile.event(p.EventKind.TAMPER, sensor=f"t-{i}") for i in range(1500)]
        await flood(hostile, evs)
        smoke = hostile.event(p.EventKind.SMOKE, sensor="smoke-1")
        trouble = home.event(p.EventKind.BATTERY_LOW, sensor="smoke-1")
        hostile.send(smoke)
        home.send(trouble)

        def shed() -> float:
            return w.count("safehome_messages_rejected_total", reason="shed_gateway")

        await until(lambda: len(w.service.queue) + shed() == 1502, 20, "all received")
        # pressure starts at half of max_pending (500 held): the flooder's tamper events
        # past it are shed, its smoke alarm and the other home's trouble are not
        assert shed() == 1000
        assert w.count("safehome_messages_rejected_total", reason="shed_overload") == 0
        gate.open.set()
        await home.acked([trouble.id])
        await hostile.acked([smoke.id])
        kept, dropped = evs[:500], evs[500:]
        await hostile.acked([e.id for e in kept])
        await until(lambda: len(w.service.queue) == 0, 10, "queue drained")
        assert stored(w, [e.id for e in dropped]) == 0
        acks = hostile.collect_acks()
        assert not any(e.id in acks for e in dropped), "a shed message was acked"
        # the gateway resends what was not acked (as the edge does, until acked): all stored
        for _ in range(10):
            have = stored_ids(w, [e.id for e in dropped])
            unacked = [e for e in dropped if e.id not in have]
            if not unacked:
                break
            ids, shed_before = [e.id for e in unacked], shed()
            await flood(hostile, unacked)
            await until(
                lambda ids=ids, before=shed_before: stored(w, ids) + shed() - before == len(ids),  # type: ignore[misc]
                30,
                "resent ones handled",
            )
        await hostile.acked([e.id for e in dropped], within=30)
        assert stored(w, [e.id for e in evs]) == 1500
    finally:
        hostile.close()
        home.close()


async def test_a_flooding_gateway_raises_gateway_flooding_and_restores(
    secured: SecuredBroker, db_url: str
) -> None:
    w = await start_worker(secured, db_url, subscribed=True, flood_max_messages=100, flood_window_s=1.0)
    hostile = ScriptedGateway(secured, "ff-hostile").connect()
    home = ScriptedGateway(secured, "ff-home").connect()

    def conditions() -> list[tuple[str | None, str]]:
        with w.engine.connect() as c:
            rows = c.execute(
                select(Condition.gateway_id, Condition.state).where(Condition.kind == "gateway_flooding")
            )
            return [(g, s) for g, s in rows]

    try:
        for _ in range(3):  # a plausible home: a few messages
            home.send(home.event(p.EventKind.TEST, sensor="smoke-1"))
        await flood(hostile, [hostile.event(p.EventKind.TAMPER, sensor=f"t-{i}") for i in range(600)])
        await until(lambda: ("ff-hostile", "open") in conditions(), 20, "gateway_flooding opened")
        # silence: restored once the rate is down to half the limit (here within 2 windows)
        await until(lambda: ("ff-hostile", "restored") in conditions(), 20, "gateway_flooding restored")
        assert conditions() == [("ff-hostile", "restored")]  # opened once; the home never
        await until(lambda: len(w.sink.changes) >= 2, 10, "sinks told")
        changes = [(c.kind, c.gateway_id, c.state) for c in w.sink.changes]
        assert changes == [
            ("gateway_flooding", "ff-hostile", "open"),
            ("gateway_flooding", "ff-hostile", "restored"),
        ]
        assert w.count("safehome_conditions_total", kind="gateway_flooding", state="open") == 1
        assert classify("gateway_flooding") is p.AlarmClass.SUPERVISORY
    finally:
        hostile.close()
        home.close()
        await w.service.stop()
        w.engine.dispose()
