"""Events through a real broker into a real database: stored once, acked after commit."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import protocols as p
from hub.db.events import StoredEvent, store_events
from hub.sinks import Decided, NewEvent
from safehome.testing.poll import until
from tests.hub.ingest.conftest import Worker, stored
from tests.support.hub_gateway import ScriptedGateway
from tests.support.hub_mqtt import SecuredBroker


async def test_event_is_stored_once_and_acked_after_commit(secured: SecuredBroker, worker: Worker) -> None:
    gw = ScriptedGateway(secured, "ev-gw-1").connect()
    try:
        ev = gw.event(p.EventKind.PANIC, sensor="panic-1")
        gw.send(ev)
        await gw.acked([ev.id])
        # the ack was sent after the commit: the row is visible to any other connection now
        assert stored(worker, [ev.id]) == 1
        assert gw.acks[ev.id][0].status is p.AckStatus.STORED
        await until(lambda: len(worker.sink.events) == 1, what="alarm engine told")  # after the ack
        assert [n.event.id for n in worker.sink.events] == [ev.id]

        # a resend (same id): acked again, not stored again, the alarm engine not told again
        gw.send(ev)
        await gw.acked([ev.id], times=2)
        assert stored(worker, [ev.id]) == 1
        assert len(worker.sink.events) == 1
        assert worker.count("safehome_events_stored_total", outcome="duplicate") == 1
        assert worker.count("safehome_events_stored_total", outcome="new") == 1
    finally:
        gw.close()


async def test_out_of_order_sequence_is_stored_as_it_comes(secured: SecuredBroker, worker: Worker) -> None:
    gw = ScriptedGateway(secured, "ev-gw-ooo").connect()
    try:
        evs = [gw.event(seq=s) for s in (5, 3, 4, 1)]
        for ev in evs:
            gw.send(ev)
        await gw.acked([e.id for e in evs])
        assert stored(worker, [e.id for e in evs]) == 4
        with worker.engine.connect() as conn:
            seqs = sorted(conn.scalars(select(StoredEvent.seq).where(StoredEvent.gateway_id == "ev-gw-ooo")))
        assert seqs == [1, 3, 4, 5]
    finally:
        gw.close()


class BrokenSink:
    def __init__(self) -> None:
        self.calls = 0

    async def events_stored(self, events: object) -> None:
        self.calls += 1
        raise RuntimeError("alarm engine bug")

    async def conditions_changed(self, changes: object) -> None:
        raise RuntimeError("alarm engine bug")


async def test_a_failing_sink_does_not_stop_the_ingest(secured: SecuredBroker, worker: Worker) -> None:
    broken = BrokenSink()
    worker.service.sinks.insert(0, broken)
    gw = ScriptedGateway(secured, "ev-gw-sink").connect()
    try:
        evs = [gw.event(seq=i) for i in range(3)]
        for ev in evs:
            gw.send(ev)
            await gw.acked([ev.id])
        await until(lambda: len(worker.sink.events) == 3, what="the healthy sink still told")
        assert worker.count("safehome_sink_errors_total", sink="BrokenSink") == broken.calls >= 1
        assert stored(worker, [e.id for e in evs]) == 3
    finally:
        gw.close()


async def test_the_consumer_also_speaks_mqtt5(secured: SecuredBroker, db_url: str) -> None:
    """protocol = "5" is an option (MQTT 3.1.1 is the default: aiomqtt over 5 was ~3x slower)."""
    from hub.settings import MqttSettings
    from tests.hub.ingest.conftest import start_worker

    w = await start_worker(secured, db_url)
    await w.service.stop()
    w.service.settings = w.settings.model_copy(update={"mqtt": MqttSettings(
        port=secured.broker.port, password=secured.hub_password, protocol="5")})
    await w.service.start()
    gw = ScriptedGateway(secured, "ev-gw-v5").connect()
    try:
        await until(w.service.subscribed.is_set, what="subscribed over MQTT 5")
        ev = gw.event()
        gw.send(ev)
        await gw.acked([ev.id])
        assert stored(w, [ev.id]) == 1
    finally:
        gw.close()
        await w.service.stop()
        w.engine.dispose()


class DecidingSink:
    """A TransactionalSink: writes a marker row in the ingest's transaction (an extra
    ``events`` row, for want of a table of its own), then maybe fails."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.order: list[str] = []
        self.seen_inside: list[bool] = []
        self.decided: list[bool] = []  #: NewEvent.decided, as events_stored saw it
        self.marker = p.new_event_id()

    def decide_in_transaction(self, session: Session, events: Sequence[NewEvent]) -> Decided:
        self.seen_inside += [session.get(StoredEvent, e.event.id) is not None for e in events]
        marker = events[0].event.model_copy(update={"id": self.marker})
        store_events(session, [marker], events[0].received_at)
        if self.fail:
            raise RuntimeError("decider bug")
        return Decided(frozenset(e.event.id for e in events), lambda: self.order.append("after-commit"))

    async def events_stored(self, events: Sequence[NewEvent]) -> None:
        self.order.append("events_stored")
        self.decided += [e.decided for e in events]

    async def conditions_changed(self, changes: object) -> None:
        pass


@pytest.mark.parametrize("fail", [False, True], ids=["decides", "fails"])
async def test_a_sink_decides_inside_the_storing_transaction_and_cannot_lose_the_events(
    secured: SecuredBroker, worker: Worker, fail: bool
) -> None:
    """Its writes commit with the events, its after-commit runs before events_stored; when
    it fails, only its own writes are rolled back: the events are stored and acked."""
    sink = DecidingSink(fail)
    worker.service.sinks.insert(0, sink)
    gw = ScriptedGateway(secured, f"ev-gw-decide-{str(fail).lower()}").connect()
    try:
        ev = gw.event(p.EventKind.SMOKE, sensor="smoke-1")
        gw.send(ev)
        await gw.acked([ev.id])
        await until(lambda: "events_stored" in sink.order, what="sink told")
        assert sink.seen_inside == [True]
        assert stored(worker, [ev.id]) == 1
        assert stored(worker, [sink.marker]) == (0 if fail else 1)
        assert sink.order == (["events_stored"] if fail else ["after-commit", "events_stored"])
        assert sink.decided == [not fail]  # whether it was decided travels with the event
        assert worker.count("safehome_sink_errors_total", sink="DecidingSink") == (1 if fail else 0)
        assert len(worker.sink.events) == 1  # the other sinks are told as always
    finally:
        gw.close()
