"""Two hub workers, one broker, one database: load split, every event stored exactly once."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

import protocols as p
from hub.db.events import StoredEvent
from safehome.testing.poll import until
from tests.hub.ingest.conftest import start_worker
from tests.support.hub_gateway import ScriptedGateway
from tests.support.hub_mqtt import SecuredBroker

GATEWAYS, EVENTS = 4, 60


async def test_two_workers_split_the_load_and_store_each_event_once(
    secured: SecuredBroker, db_url: str
) -> None:
    workers = [await start_worker(secured, db_url) for _ in range(2)]
    gws: list[ScriptedGateway] = []
    try:
        await asyncio.gather(*(asyncio.wait_for(w.service.subscribed.wait(), 10) for w in workers))
        gws = [ScriptedGateway(secured, f"two-gw-{i}").connect() for i in range(GATEWAYS)]
        sent: dict[str, list[p.Event]] = {}
        for gw in gws:
            evs = [gw.event(sensor=f"s-{n % 3}") for n in range(EVENTS)]
            sent[gw.gw] = evs
            infos = []
            for ev in evs:  # every event twice: the copies may land on different workers
                for _ in range(2):
                    infos.append(gw.client.c.publish(str(p.Topic.of(gw.gw, "event")), p.encode(ev), qos=1))
            for info in infos:
                info.wait_for_publish(10)
        for gw in gws:
            await gw.acked([e.id for e in sent[gw.gw]], times=2, within=60)

        total = GATEWAYS * EVENTS
        with workers[0].engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(StoredEvent)) == total
        new = [w.count("safehome_events_stored_total", outcome="new") for w in workers]
        dup = [w.count("safehome_events_stored_total", outcome="duplicate") for w in workers]
        received = [w.count("safehome_messages_in_total", type="event") for w in workers]
        assert sum(new) == total and sum(dup) == total, (new, dup)
        assert all(r > 0 for r in received), f"load not split: {received}"
        assert sum(received) == 2 * total
        # the alarm engine hears of each event once, across workers
        await until(lambda: sum(len(w.sink.events) for w in workers) == total, what="sinks told")
        ids = [n.event.id for w in workers for n in w.sink.events]
        assert len(set(ids)) == total
    finally:
        for gw in gws:
            gw.close()
        for w in workers:
            await w.service.stop()
            w.engine.dispose()


async def test_a_stopped_worker_takes_no_share(secured: SecuredBroker, db_url: str) -> None:
    """Default clean sessions: everything sent while one worker is down goes to the other,
    at once (a persistent member would be handed its share while offline)."""
    up, down = await start_worker(secured, db_url), await start_worker(secured, db_url)
    gw: ScriptedGateway | None = None
    try:
        await asyncio.gather(*(asyncio.wait_for(w.service.subscribed.wait(), 10) for w in (up, down)))
        await down.service.stop()
        gw = ScriptedGateway(secured, "share-off-gw-1").connect()
        evs = [gw.event(seq=i) for i in range(20)]
        for ev in evs:
            gw.send(ev)  # once each: no gateway resend in this test
        await gw.acked([e.id for e in evs])
        await until(lambda: len(up.sink.events) == 20, what="all 20 stored by the worker that is up")
    finally:
        if gw is not None:
            gw.close()
        await up.service.stop()
        for w in (up, down):
            w.engine.dispose()


async def test_a_restarting_worker_gets_what_arrived_while_it_was_away(secured: SecuredBroker, db_url: str) -> None:
    """Persistent session (clean_session = false, single-worker deployments): the broker
    queues the worker's share while it restarts."""
    first = await start_worker(secured, db_url, clean_session=False)
    await asyncio.wait_for(first.service.subscribed.wait(), 10)
    await first.service.stop()
    gw = ScriptedGateway(secured, "restart-gw-1").connect()
    try:
        ev = gw.event(p.EventKind.SMOKE)
        gw.send(ev)  # nobody is consuming now; sent once, never resent by this test
        again = await start_worker(secured, db_url, worker_id=first.settings.worker_id, clean_session=False)
        try:
            await gw.acked([ev.id])
            await until(lambda: [n.event.id for n in again.sink.events] == [ev.id], what="stored after restart")
        finally:
            await again.service.stop()
            again.engine.dispose()
    finally:
        gw.close()
        first.engine.dispose()


async def test_a_priority_worker_and_a_telemetry_worker_split_by_lane(
    secured: SecuredBroker, db_url: str
) -> None:
    """``[hub.ingest] lanes``: alarms in one process, the telemetry backlog in another."""
    prio = await start_worker(secured, db_url, worker_id="w-prio", lanes=["priority"])
    tele = await start_worker(secured, db_url, worker_id="w-tele", lanes=["telemetry"])
    gw = ScriptedGateway(secured, "lanes-gw-1")
    try:
        await asyncio.gather(*(asyncio.wait_for(w.service.subscribed.wait(), 10) for w in (prio, tele)))
        gw.connect()
        ev = gw.event()
        tm = [gw.telemetry([("gas-1", "gas_lel", 1.0)], ts=1_700_000_000_000 + i) for i in range(5)]
        uplink: list[p.Event | p.Telemetry] = [*tm, ev]
        for m in uplink:
            gw.send(m)
        await gw.acked([ev.id, *(t.id for t in tm)])  # each acked by the worker that took it
        assert prio.count("safehome_messages_in_total", type="event") == 1
        assert prio.count("safehome_messages_in_total", type="telemetry") == 0
        assert tele.count("safehome_messages_in_total", type="telemetry") == 5
        assert tele.count("safehome_messages_in_total", type="event") == 0
        # the sink is told after the ack went out: poll
        await until(lambda: [n.event.id for n in prio.sink.events] == [ev.id], what="alarm engine told")
    finally:
        gw.close()
        for w in (prio, tele):
            await w.service.stop()
            w.engine.dispose()
