"""The alarm engine on a real database (SQLite and PostgreSQL): signals → stored, routed
alarms, exactly-once processing, repeats, restores, lifecycle with one winner."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.alarms.engine.actions import apply_action
from hub.alarms.engine.decide import condition_signal, event_signal
from hub.alarms.errors import ConcurrentUpdate, TransitionRefused
from hub.alarms.lifecycle import Action, Outcome
from hub.alarms.rules import Signal
from hub.alarms.store.models import Alarm, AlarmTimer, AlarmTransition, HomeOverride
from hub.db.engine import read_only
from hub.db.state import Condition
from hub.notify.models import Notification
from protocols import EventKind, EventState, new_event_id
from safehome.testing.events import make_event
from safehome.testing.poll import until
from tests.hub.alarms.conftest import load, notifications
from tests.hub.conftest import NIGHT, Hub, act, alarm_settings, district_webhook


def test_smoke_event_opens_routed_alarm_with_timers(hub: Hub) -> None:
    ev = make_event()
    r = hub.alarms.handle(*event_signal(ev, hub.clock.now()))
    assert r.decision == "open" and r.alarm_id
    a = load(hub, r.alarm_id)
    assert (a.kind, a.alarm_class, a.priority, a.state, a.count) == ("smoke", "alarm", 1, "raised", 1)
    assert (a.home_id, a.workstation_id, a.subdistrict_id, a.district_id) == (
        "home-1",
        "ws-0001",
        "sd-01",
        "pudong",
    )
    assert (a.device_model, a.location, a.shift, a.event_id) == ("smoke-dry-contact", "kitchen", "day", ev.id)
    assert [h.action for h in a.history] == ["raise"]
    n = notifications(hub, a.id)
    assert ("console", "workstation:ws-0001", "initial") in n
    assert ("voice", "+86-ws1", "initial") in n and ("sms", "+86-fam1", "initial") in n
    assert not any("ws2" in addr or "ws-0002" in addr for _, addr, _ in n)
    with hub.sessions() as s:
        timers = s.scalars(
            select(AlarmTimer).where(AlarmTimer.alarm_id == a.id).order_by(AlarmTimer.step_index)
        ).all()
        assert [(t.tier, t.due_at - a.raised_at) for t in timers] == [
            ("subdistrict", dt.timedelta(seconds=60)),
            ("district", dt.timedelta(minutes=10)),
        ]


def test_night_routing_includes_oncall_and_subdistrict(hub: Hub) -> None:
    hub.clock.set(NIGHT)
    r = hub.alarms.handle(*event_signal(make_event(), hub.clock.now()))
    assert r.alarm_id
    n = notifications(hub, r.alarm_id)
    assert {("voice", "+86-oncall1", "initial"), ("console", "subdistrict:sd-01", "initial")} <= n
    assert load(hub, r.alarm_id).shift == "night"


def test_same_event_twice_is_processed_once_and_repeat_updates_count(hub: Hub) -> None:
    ev = make_event()
    first = hub.alarms.handle(*event_signal(ev, hub.clock.now()))
    assert hub.alarms.handle(*event_signal(ev, hub.clock.now())).decision == "duplicate"
    hub.clock.advance(5)
    again = hub.alarms.handle(*event_signal(make_event(), hub.clock.now()))
    assert again.decision == "repeat" and again.alarm_id == first.alarm_id
    a = load(hub, first.alarm_id or "")
    assert a.count == 2 and a.last_seen_at == hub.clock.now()
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Alarm)) == 1


def test_restore_latches_life_safety_and_auto_resolves_untaken_trouble(hub: Hub) -> None:
    a = hub.alarms.handle(*event_signal(make_event(), hub.clock.now())).alarm_id or ""
    r = hub.alarms.handle(*event_signal(make_event(state=EventState.RESTORE), hub.clock.now()))
    assert r.decision == "restore"
    assert load(hub, a).state == "raised" and load(hub, a).restored_at is not None

    t = hub.alarms.handle(*event_signal(make_event(kind=EventKind.BATTERY_LOW), hub.clock.now())).alarm_id or ""
    hub.alarms.handle(
        *event_signal(make_event(kind=EventKind.BATTERY_LOW, state=EventState.RESTORE), hub.clock.now())
    )
    closed = load(hub, t)
    assert (closed.state, closed.outcome, closed.open_key) == ("resolved", "restored", None)
    # once closed, the next battery_low opens a new alarm
    again = hub.alarms.handle(*event_signal(make_event(kind=EventKind.BATTERY_LOW), hub.clock.now()))
    assert again.decision == "open" and again.alarm_id != t


def test_supervisory_condition_from_ingest(hub: Hub) -> None:
    r = hub.alarms.handle(*condition_signal(7, "gw-2", None, "gateway_silent", False, hub.clock.now()))
    a = load(hub, r.alarm_id or "")
    assert (a.alarm_class, a.workstation_id, a.sensor_id) == ("supervisory", "ws-0002", "")
    assert (
        hub.alarms.handle(
            *condition_signal(7, "gw-2", None, "gateway_silent", False, hub.clock.now())
        ).decision
        == "duplicate"
    )
    hub.alarms.handle(*condition_signal(7, "gw-2", None, "gateway_silent", True, hub.clock.now()))
    assert load(hub, a.id).state == "resolved"


def test_unregistered_gateway_still_raises_to_district(hub: Hub) -> None:
    r = hub.alarms.handle(*event_signal(make_event(gw="gw-stranger"), hub.clock.now()))
    a = load(hub, r.alarm_id or "")
    assert (a.workstation_id, a.district_id, a.flags) == (None, "pudong", ["unregistered_gateway"])
    assert ("console", "district:pudong", "initial") in notifications(hub, a.id)


def test_home_override_flags_but_never_suppresses_panic(hub: Hub) -> None:
    with hub.sessions() as s, s.begin():
        s.add(
            HomeOverride(
                home_id="home-1",
                suppress=["panic", "battery_low"],
                frequent_false=["panic"],
                note="presses by mistake",
            )
        )
    p = hub.alarms.handle(*event_signal(make_event(kind=EventKind.PANIC, sensor="panic-1"), hub.clock.now()))
    assert p.decision == "open"
    assert load(hub, p.alarm_id or "").flags == ["frequent_false_alarms", "suppression_ignored_life_safety"]
    assert (
        hub.alarms.handle(*event_signal(make_event(kind=EventKind.BATTERY_LOW), hub.clock.now())).decision
        == "ignore"
    )


def test_closed_loop_records_who_when_note_and_tells_home(hub: Hub) -> None:
    ev = make_event()
    a = hub.alarms.handle(*event_signal(ev, hub.clock.now())).alarm_id or ""
    assert act(hub, a, Action.ACKNOWLEDGE, note="calling") == "acknowledged"
    hub.clock.advance(60)
    act(hub, a, Action.DISPATCH, responder="volunteer Li")
    act(hub, a, Action.ARRIVE)
    act(hub, a, Action.RESOLVE, outcome=Outcome.COOKING_SMOKE, note="burnt rice")
    act(hub, a, Action.REVIEW, actor="supervisor")
    alarm = load(hub, a)
    assert [(h.action, h.to_state) for h in alarm.history][1:] == [
        ("acknowledge", "acknowledged"),
        ("dispatch", "dispatched"),
        ("arrive", "on_site"),
        ("resolve", "resolved"),
        ("review", "reviewed"),
    ]
    assert alarm.history[1].note == "calling" and alarm.history[-1].actor == "supervisor"
    assert (alarm.outcome, alarm.responder, alarm.open_key) == ("cooking_smoke", "volunteer Li", None)
    with hub.sessions() as s:
        home = s.scalars(
            select(Notification).where(Notification.alarm_id == a, Notification.channel == "home")
        ).all()
        assert [n.payload["status"] for n in home] == ["acknowledged", "dispatched", "on_site", "resolved"]
        assert {n.payload["event_id"] for n in home} == {ev.id} and {n.address for n in home} == {"gw-1"}
        pending = s.scalars(select(AlarmTimer.status).where(AlarmTimer.alarm_id == a)).all()
        assert set(pending) == {"cancelled"}
    with pytest.raises(TransitionRefused, match="closed"):
        act(hub, a, Action.ACKNOWLEDGE)


def test_stale_writer_loses(hub: Hub) -> None:
    """Two operators read version 1; the first to commit wins, the second is refused."""
    a = hub.alarms.handle(*event_signal(make_event(), hub.clock.now())).alarm_id or ""
    s1, s2 = hub.sessions(), hub.sessions()
    try:
        s1.begin()
        # s2 reads without the write lock (SQLite begins writers IMMEDIATE, so two writers
        # could not even read at once there): the stale view of a second operator
        read_only(s2)  # begins the transaction
        a1, a2 = s1.get(Alarm, a), s2.get(Alarm, a)
        assert a1 and a2 and a1.version == a2.version
        apply_action(s1, a1, Action.ACKNOWLEDGE, "op-1", hub.clock.now(), by="ws")
        s1.commit()
        with pytest.raises((ConcurrentUpdate, Exception)) as err:
            apply_action(s2, a2, Action.ACKNOWLEDGE, "op-2", hub.clock.now(), by="ws")
            s2.commit()
        # PostgreSQL: version conflict; SQLite: the stale snapshot cannot become a writer
        assert isinstance(err.value, ConcurrentUpdate) or "locked" in str(err.value)
    finally:
        s1.close()
        s2.close()


def test_two_operators_at_once_exactly_one_winner(hub: Hub) -> None:
    a = hub.alarms.handle(*event_signal(make_event(), hub.clock.now())).alarm_id or ""
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def operator(name: str) -> None:
        barrier.wait()
        try:
            results[name] = act(hub, a, Action.ACKNOWLEDGE, actor=name)
        except TransitionRefused as exc:
            results[name] = exc.reason

    threads = [threading.Thread(target=operator, args=(f"op-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results.values()) == ["acknowledged", "already_done"]
    acks = [h for h in load(hub, a).history if h.action == "acknowledge"]
    assert len(acks) == 1 and results[acks[0].actor] == "acknowledged"


def test_two_workers_same_key_open_one_alarm(hub: Hub) -> None:
    """Two hub workers processing two smoke events of one sensor at once: one alarm, count 2."""
    barrier = threading.Barrier(2)
    out: list[str] = []

    def worker() -> None:
        sig, key = event_signal(make_event(), hub.clock.now())
        barrier.wait()
        out.append(hub.alarms.handle(sig, key).decision)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(out) == ["open", "repeat"]
    with hub.sessions() as s:
        (alarm,) = s.scalars(select(Alarm)).all()
        assert alarm.count == 2


def test_signal_with_unknown_kind_is_supervisory(hub: Hub) -> None:
    sig = Signal("gw-1", None, "brand_new_condition", EventState.ALARM, hub.clock.now())
    r = hub.alarms.handle(sig, "cond:99:alarm")
    assert load(hub, r.alarm_id or "").alarm_class == "supervisory"
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AlarmTransition)) == 1


def test_recheck_raises_what_the_sink_never_heard(hub: Hub) -> None:
    """Ingest committed an event and crashed before telling the engine: the service's
    re-check at start turns it into an alarm, once."""
    from hub.alarms.service import AlarmService
    from hub.db.events import store_events

    ev = make_event(gw="gw-3")
    with hub.sessions() as s, s.begin():
        assert store_events(s, [ev], hub.clock.now()) == [True]
        s.add(
            Condition(
                gateway_id="gw-2",
                sensor_id=None,
                kind="gateway_silent",
                state="restored",
                opened_at=hub.clock.now(),
                restored_at=hub.clock.now(),
            )
        )
    svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock)
    assert svc.reconcile() == 3  # the event; the condition's open and its restore
    assert svc.reconcile() == 0
    with hub.sessions() as s:
        alarms = {(a.gateway_id, a.kind): a.state for a in s.scalars(select(Alarm))}
    assert alarms == {("gw-3", "smoke"): "raised", ("gw-2", "gateway_silent"): "resolved"}


async def test_an_event_told_to_a_stopped_alarm_service_is_decided_by_its_re_check(hub: Hub) -> None:
    """Nothing is decided in the caller's thread: an acked (stored) event told to an alarm
    service that is not running waits for the re-check, which decides it, once, when the
    service starts."""
    from hub.alarms.service import AlarmService
    from hub.db.events import store_events
    from hub.sinks import NewEvent

    ev = make_event(gw="gw-3")
    with hub.sessions() as s, s.begin():
        assert store_events(s, [ev], hub.clock.now()) == [True]
    svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock)
    await svc.sink.events_stored([NewEvent(ev, hub.clock.now())])
    with hub.sessions() as s:
        assert s.scalars(select(Alarm)).all() == []
    await svc.start()
    try:
        with hub.sessions() as s:
            decided = [(a.gateway_id, a.kind, a.event_id) for a in s.scalars(select(Alarm))]
        assert decided == [("gw-3", "smoke", ev.id)]
        assert svc.reconcile() == 0
    finally:
        await svc.stop()


def test_notifications_of_unconfigured_channels_are_settled_not_left_waiting(hub: Hub) -> None:
    """Rows enqueued without a handover (here: the engine alone) are settled by the re-check."""
    from hub.alarms.service import AlarmService

    a = hub.alarms.handle(*event_signal(make_event(), hub.clock.now())).alarm_id
    svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock)  # no SMS/voice provider
    svc.reconcile()
    with hub.sessions() as s:
        status = {
            (n.channel, n.status) for n in s.scalars(select(Notification).where(Notification.alarm_id == a))
        }
    assert ("sms", "unconfigured") in status and ("voice", "unconfigured") in status
    assert ("console", "pending") in status and ("sms", "pending") not in status
    assert not any(st == "dead" for _, st in status)
    assert svc.metrics.unconfigured.labels("sms")._value.get() >= 1


async def test_an_unconfigured_channel_is_a_startup_warning_and_a_health_flag_not_per_alarm_noise(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    from hub.alarms.service import AlarmService

    svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock)  # no SMS/voice provider
    assert svc.channel_health() == (True, "not configured, recipients not reached: home, sms, voice")
    assert svc.metrics.configured.labels("sms")._value.get() == 0
    assert svc.metrics.configured.labels("console")._value.get() == 1
    await svc.start()
    try:
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert sum("channel sms is not configured" in w for w in warnings) == 1
        assert sum("channel voice is not configured" in w for w in warnings) == 1
        caplog.clear()
        ids = [
            await asyncio.to_thread(svc.engine.handle, *event_signal(make_event(f"gw-{n}"), hub.clock.now()))
            for n in (1, 2, 3)
        ]
        with hub.sessions() as s:  # stored as unconfigured at once, in the alarm's transaction
            status = {
                (n.channel, n.status)
                for n in s.scalars(select(Notification).where(Notification.alarm_id.in_([r.alarm_id for r in ids])))
            }
        assert {st for ch, st in status if ch in ("sms", "voice")} == {"unconfigured"}
        await asyncio.to_thread(svc.reconcile)
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert svc.metrics.unconfigured.labels("sms")._value.get() >= 6  # duty phone + family, 3 alarms
    finally:
        await svc.stop()


async def test_gas_readings_raise_and_restore_with_hysteresis(hub: Hub) -> None:
    from hub.alarms.service import AlarmService
    from protocols import Reading, Telemetry

    svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock)

    def batch(*lels: float) -> tuple[Telemetry, dt.datetime]:
        hub.clock.advance(60)
        readings = [
            Reading(sensor="gas-1", metric="gas_lel", value=v, ts=int(hub.clock.now().timestamp() * 1000) + i)
            for i, v in enumerate(lels)
        ]
        readings.append(Reading(sensor="gas-1", metric="battery_v", value=3.0))
        return Telemetry(
            gw="gw-1", seq=1, id=new_event_id(), ts=1, synced=True, readings=readings
        ), hub.clock.now()

    def gas() -> list[Alarm]:
        with hub.sessions() as s:
            return list(s.scalars(select(Alarm).where(Alarm.kind == "gas")))

    await svc.sink.telemetry_stored([batch(5.0, 19.9)])
    assert gas() == []
    await svc.sink.telemetry_stored([batch(21.0, 25.0, 12.0)])  # raise; still above clear
    (a,) = gas()
    assert (a.sensor_id, a.state, a.restored_at, a.alarm_class) == ("gas-1", "raised", None, "alarm")
    await svc.sink.telemetry_stored([batch(9.5)])  # below clear: restored (latched, life safety)
    (a,) = gas()
    assert a.restored_at is not None and a.state == "raised"
    await svc.sink.telemetry_stored([batch(15.0)])  # between thresholds: nothing
    await svc.sink.telemetry_stored([batch(30.0)])  # above raise again: the same alarm, active again
    (a,) = gas()
    assert a.restored_at is None and a.count == 2


async def test_sink_queues_life_safety_ahead_of_trouble(hub: Hub) -> None:
    from hub.alarms.service import AlarmService
    from hub.sinks import NewEvent

    svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock)
    await svc.start()
    try:
        (signals,) = [t for t in svc._tasks if t.get_name() == "alarm-signals"]
        signals.cancel()  # hold the queue still to look at its order
        await asyncio.gather(signals, return_exceptions=True)
        kinds = [EventKind.BATTERY_LOW, EventKind.TAMPER, EventKind.SMOKE, EventKind.TEST, EventKind.PANIC]
        await svc.sink.events_stored([NewEvent(make_event(kind=k), hub.clock.now()) for k in kinds])
        order = [svc.sink.inbox.get_nowait()[2].kind for _ in kinds]
        assert order == ["smoke", "panic", "battery_low", "tamper", "test"]
    finally:
        await svc.stop()


async def test_a_running_service_hands_a_new_alarms_notifications_to_its_outboxes(hub: Hub) -> None:
    """The alarm's transaction claims its notifications for this worker: the webhook is
    delivered without any outbox claiming a row, and no console/home row is left pending."""
    from hub.alarms.service import AlarmService
    from hub.sinks import NewEvent

    with district_webhook(hub) as receiver:
        svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock)
        claimed: list[str] = []
        for w in svc.outboxes:
            real = w.claim

            def counting(real: Any = real) -> Any:
                got = real()
                claimed.extend(m.notification_id for m in got)
                return got

            w.claim = counting  # type: ignore[method-assign]
        await svc.start()
        try:
            await svc.sink.events_stored([NewEvent(make_event(), hub.clock.now())])
            await until(lambda: receiver.requests, within=15, what="the webhook")
        finally:
            await svc.stop()
    with hub.sessions() as s:
        hook = s.scalars(
            select(Notification).where(Notification.channel == "webhook", Notification.tier == "initial")
        ).one()
        # the first delivery makes the alarm "notified": that line goes to the webhook as a
        # follow-up (tier "update"), enqueued by the outbox's transaction, so claimed
        followups = set(s.scalars(select(Notification.id).where(Notification.tier == "update")))
        by_channel = {(n.channel, n.status) for n in s.scalars(select(Notification).where(Notification.tier != "update"))}
    assert hook.status == "delivered" and hook.attempts == 1
    assert receiver.requests[0].headers["x-safehome-delivery"] == hook.id
    assert set(claimed) <= followups  # the alarm's own notifications: handed over, never claimed
    assert ("console", "pending") not in by_channel and ("webhook", "pending") not in by_channel


async def test_life_safety_events_are_decided_in_the_transaction_that_stores_them(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingest's hook: smoke alarms are decided inside the storing transaction (visible
    with it, not before); a life-safety event whose decision fails there gets its fail-safe
    alarm in it too (to the 24-hour center, flagged); trouble is left to the alarm task,
    which decides it after the commit."""
    from hub.alarms.service import AlarmService
    from hub.db.events import store_events
    from hub.sinks import NewEvent

    svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock)
    first, repeat = make_event("gw-1"), make_event("gw-1")  # one sensor twice: open, then repeat
    trouble, unlucky = make_event("gw-1", kind=EventKind.BATTERY_LOW), make_event("gw-2")
    events = [first, trouble, repeat, unlucky]
    real = svc.engine.process
    failed: list[str] = []

    def fails_once_for_unlucky(s: Any, signal: Signal, key: str, handover: Any = None) -> Any:
        if key == f"ev:{unlucky.id}" and not failed:
            failed.append(key)
            s.flush()
            raise RuntimeError("a bug in routing")
        return real(s, signal, key, handover)

    monkeypatch.setattr(svc.engine, "process", fails_once_for_unlucky)
    await svc.start()
    try:
        now = hub.clock.now()
        with hub.sessions() as s, s.begin():
            assert store_events(s, events, now) == [True] * 4
            with s.begin_nested():
                after = svc.sink.decide_in_transaction(s, [NewEvent(e, now) for e in events])
            with hub.sessions() as other:  # not committed yet: nobody else sees the alarm
                assert read_only(other).scalars(select(Alarm)).all() == []
        assert after is not None and failed == [f"ev:{unlucky.id}"]
        assert after.event_ids == {first.id, repeat.id, unlucky.id}  # not the trouble event
        after.after_commit()
        with hub.sessions() as s:
            alarm, failsafe = s.scalars(select(Alarm).order_by(Alarm.gateway_id)).all()
            to = {(n.channel, n.address) for n in s.scalars(select(Notification).where(
                Notification.alarm_id == failsafe.id))}
        assert (alarm.gateway_id, alarm.kind, alarm.count, alarm.flags) == ("gw-1", "smoke", 2, [])
        assert (failsafe.gateway_id, failsafe.kind, failsafe.flags) == ("gw-2", "smoke", ["routing_failed"])
        assert to == {("console", "subdistrict:sd-01"), ("sms", "+86-sd1"), ("voice", "+86-sd1")}
        assert svc.metrics.failsafe.labels("engine", "failsafe")._value.get() == 1
        # what ingest does next: every new event, the decided ones marked
        await svc.sink.events_stored([NewEvent(e, now, decided=e.id in after.event_ids) for e in events])

        def kinds() -> set[tuple[str, str]]:
            with hub.sessions() as s:
                return {(a.gateway_id, a.kind) for a in s.scalars(select(Alarm))}

        deadline = time.monotonic() + 10
        while kinds() != {("gw-1", "smoke"), ("gw-1", "battery_low"), ("gw-2", "smoke")}:
            assert time.monotonic() < deadline, kinds()
            await asyncio.sleep(0.01)
        with hub.sessions() as s:
            (alarm,) = s.scalars(select(Alarm).where(Alarm.gateway_id == "gw-1", Alarm.kind == "smoke"))
        assert alarm.count == 2  # the queue did not process the inline-decided events again
    finally:
        await svc.stop()
