"""A database that fails: nothing is acked until the write succeeds, the loop carries on,
and nothing is stored twice. The failure is real: the table is renamed away and back."""

from __future__ import annotations

from sqlalchemy import func, select, text

import protocols as p
from hub.db.events import StoredEvent
from safehome.testing.poll import until
from tests.hub.ingest.conftest import Worker
from tests.support.hub_gateway import ScriptedGateway
from tests.support.hub_mqtt import SecuredBroker


def rename(worker: Worker, old: str, new: str) -> None:
    with worker.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_no_ack_before_the_store_succeeds(secured: SecuredBroker, worker: Worker) -> None:
    gw = ScriptedGateway(secured, "fail-gw-1").connect()
    try:
        rename(worker, "events", "events_away")
        rename(worker, "readings", "readings_away")
        ev = gw.event(p.EventKind.SMOKE)
        tel = gw.telemetry([("smoke-1", "battery_v", 3.0)])
        gw.send(ev)
        await until(lambda: worker.count("safehome_store_errors_total", kind="core") >= 2, what="core retries")
        assert gw.collect_acks() == {}
        rename(worker, "events_away", "events")
        await gw.acked([ev.id])
        gw.send(tel)
        await until(lambda: worker.count("safehome_store_errors_total", kind="telemetry") >= 2, what="ts retries")
        assert tel.id not in gw.collect_acks()
        # the gateway resends meanwhile (same id): still one row once the store is back
        gw.send(tel)
        rename(worker, "readings_away", "readings")
        await gw.acked([tel.id])
        with worker.engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(StoredEvent).where(StoredEvent.id == ev.id)) == 1
            assert conn.scalar(text("SELECT count(*) FROM readings WHERE gateway_id = 'fail-gw-1'")) == 1
        await until(lambda: len(worker.sink.events) == 1, what="alarm engine told once")
    finally:
        gw.close()
