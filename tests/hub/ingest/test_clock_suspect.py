"""A device clock that says it is synced but is far from the hub's: flagged, the clock
trouble raised and restored, the ingest-lag metric kept clean, and the alarm still stored
and handed on as usual (a clock problem never costs an alarm). Real Mosquitto, real ingest,
SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from unittest import mock

import protocols as p
from hub.db.engine import make_session_factory
from hub.db.events import StoredEvent
from hub.ingest.clock import ClockWatch
from hub.ingest.decode import Incoming, classify
from hub.ingest.plan import make_plan
from hub.supervision.service import SupervisionService
from hub.timeseries.sql import SqlTimeSeriesStore
from safehome.testing.events import make_event
from safehome.testing.poll import until
from tests.hub.ingest.conftest import Clock, Worker, gateway_state
from tests.support.hub_gateway import ScriptedGateway, now_ms
from tests.support.hub_mqtt import SecuredBroker

HOUR_MS = 3_600_000


def stored(worker: Worker, event_id: str) -> StoredEvent | None:
    with make_session_factory(worker.engine)() as s:
        return s.get(StoredEvent, event_id)


def lag_count(worker: Worker, kind: str) -> float:
    return worker.count("safehome_ingest_lag_seconds_count", type=kind)


async def test_a_synced_clock_an_hour_ahead_is_flagged_and_raises_the_clock_trouble(
    secured: SecuredBroker, worker: Worker
) -> None:
    gw = ScriptedGateway(secured, "clock-ahead-1").connect()
    try:
        clock = Clock()
        sup = SupervisionService(
            worker.settings.supervision, make_session_factory(worker.engine), worker.metrics, [worker.sink], clock
        )
        ahead = gw.status(reason="birth").model_copy(update={"ts": now_ms() + HOUR_MS})
        gw.send(ahead)
        await until(lambda: (st := gateway_state(worker, gw.gw)) is not None and st.online, what="birth")
        st = gateway_state(worker, gw.gw)
        assert st is not None and st.clock_offset_s is not None
        assert 3590 < st.clock_offset_s < 3610

        # an alarm stamped by that clock: stored, acked, handed to the alarm engine, flagged
        smoke = gw.event(ts=now_ms() + HOUR_MS)
        good = gw.event(kind=p.EventKind.PANIC, sensor="panic-1")
        gw.send(smoke)
        await gw.acked([smoke.id])
        gw.send(good)
        await gw.acked([good.id])
        await until(lambda: {e.event.id for e in worker.sink.events} >= {smoke.id, good.id}, what="handed on")
        row = stored(worker, smoke.id)
        assert row is not None and row.synced and row.clock_suspect  # stored as sent, flagged
        assert row.device_ts > row.received_at + dt.timedelta(minutes=59)
        assert not stored(worker, good.id).clock_suspect  # type: ignore[union-attr]
        assert lag_count(worker, "event") == 1  # only the good one; the hour stays out
        assert worker.count("safehome_ingest_lag_seconds_sum", type="event") < 60
        assert worker.count("safehome_clock_suspect_messages_total") == 1

        changes = await sup.tick()
        assert [(c.kind, c.state, c.gateway_id) for c in changes] == [("clock_suspect", "open", gw.gw)]
        assert " s ahead of the hub" in changes[0].detail
        assert await sup.tick() == []  # open once

        gw.send(gw.status())  # the clock is right again
        await until(lambda: abs(gateway_state(worker, gw.gw).clock_offset_s or 1e9) < 60, what="offset")  # type: ignore[union-attr]
        assert [(c.kind, c.state) for c in await sup.tick()] == [("clock_suspect", "restored")]
    finally:
        gw.close()


async def test_readings_of_a_suspect_clock_are_stored_at_the_hub_receive_time(
    secured: SecuredBroker, worker: Worker
) -> None:
    gw = ScriptedGateway(secured, "clock-ahead-2").connect()
    try:
        t = gw.telemetry([("gas-1", "gas_lel", 3.0)], ts=now_ms() + 24 * HOUR_MS)
        before = dt.datetime.now(dt.UTC)
        gw.send(t)
        await gw.acked([t.id])
        after = dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=1)
        # stored at the hub's receive time, not a day ahead
        assert SqlTimeSeriesStore(worker.engine).query(gw.gw, "gas-1", "gas_lel", before, after) == [
            (mock.ANY, 3.0)
        ]
        assert lag_count(worker, "telemetry") == 0
        assert worker.count("safehome_clock_suspect_messages_total") == 1
    finally:
        gw.close()


def test_backlog_is_not_a_bad_clock_unless_the_gateways_status_says_so() -> None:
    """Events hours old are a backlog (the link was down), not a bad clock; behind the hub's
    clock they are suspect only once a live status showed that gateway's clock off."""
    now = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)
    ms = int(now.timestamp() * 1000)

    def heard(msg: p.Event | p.Status) -> Incoming:
        channel = "event" if isinstance(msg, p.Event) else "status"
        item = classify(str(p.Topic.of(msg.gw, channel)), p.encode(msg), False, now)
        assert isinstance(item, Incoming)
        return item

    def status(gw: str, ts: int, reason: str = "heartbeat") -> p.Status:
        state = "offline" if reason == "lwt" else "online"
        return p.Status.model_validate({"gw": gw, "state": state, "reason": reason, "ts": ts, "synced": True},
                                       strict=False)  # fmt: skip

    watch = ClockWatch(120)
    backlog, ahead = make_event("gw-1", ts=ms - 3 * HOUR_MS), make_event("gw-1", ts=ms + 121_000)
    plan = make_plan([heard(backlog), heard(ahead)], watch)
    assert plan.clock_suspect == {ahead.id}
    # a Last-Will is stamped at connect time: it measures nothing
    plan = make_plan([heard(status("gw-2", ms - 3 * HOUR_MS, "lwt"))], watch)
    assert plan.gateways["gw-2"].clock_offset_s is None and watch.off == {}
    # a heartbeat three hours behind: that gateway's old-looking events are suspect too
    behind = make_event("gw-2", ts=ms - 3 * HOUR_MS)
    plan = make_plan([heard(status("gw-2", ms - 3 * HOUR_MS)), heard(behind)], watch)
    assert plan.gateways["gw-2"].clock_offset_s == -3 * 3600
    assert plan.clock_suspect == {behind.id}
    # fixed: the next heartbeat within tolerance clears it
    plan = make_plan([heard(status("gw-2", ms - 1000)), heard(make_event("gw-2", ts=ms - 3 * HOUR_MS))], watch)
    assert plan.clock_suspect == set() and watch.off == {}
