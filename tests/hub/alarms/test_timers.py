"""Escalation timers on a real database: each step fires once, stops at the awaited state,
survives a hub restart, and fires once with two workers racing for it."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import select

from hub.alarms.clock import ManualClock
from hub.alarms.engine.actions import apply_action
from hub.alarms.engine.timers import TimerWorker
from hub.alarms.lifecycle import Action
from hub.alarms.store.models import Alarm, AlarmTimer
from hub.db.engine import make_engine, make_session_factory
from hub.db.tx import in_transaction
from hub.notify.models import Notification
from tests.hub.conftest import Hub, raise_alarm


def escalations(hub: Hub, alarm_id: str) -> list[tuple[str, str]]:
    with hub.sessions() as s:
        return sorted(
            (n.tier, n.address)
            for n in s.scalars(
                select(Notification).where(Notification.alarm_id == alarm_id, Notification.tier != "initial")
            )
        )


def test_each_step_fires_once_at_its_deadline(hub: Hub) -> None:
    a = raise_alarm(hub)
    w = TimerWorker(hub.sessions, hub.clock, "w1")
    hub.clock.advance(59)
    assert w.fire_due() == []
    hub.clock.advance(1)
    (f,) = w.fire_due()
    assert (f.alarm_id, f.step_name, f.fired) == (a, "not_acknowledged_60s", True)
    assert escalations(hub, a) == [
        ("subdistrict", "+86-sd1"),
        ("subdistrict", "+86-sd1"),
        ("subdistrict", "subdistrict:sd-01"),
    ]
    assert w.fire_due() == []  # fired means fired
    hub.clock.advance(600)
    (g,) = w.fire_due()
    assert g.step_name == "not_dispatched_10min" and g.fired
    assert ("district", "district:pudong") in escalations(hub, a)
    with hub.sessions() as s:
        notes = [h.note for h in s.get(Alarm, a).history if h.action == "escalate"]  # type: ignore[union-attr]
        assert len(notes) == 2 and "subdistrict" in notes[0]


def test_escalation_stops_when_the_awaited_state_is_reached(hub: Hub) -> None:
    a = raise_alarm(hub)
    hub.clock.advance(30)
    in_transaction(
        hub.sessions,
        lambda s: apply_action(s, s.get(Alarm, a), Action.ACKNOWLEDGE, "op", hub.clock.now(), by="ws"),  # type: ignore[arg-type]
    )
    hub.clock.advance(31)
    w = TimerWorker(hub.sessions, hub.clock, "w1")
    (f,) = w.fire_due()
    assert not f.fired and f.step_name == "not_acknowledged_60s"
    assert escalations(hub, a) == []
    hub.clock.advance(600)
    (g,) = w.fire_due()
    assert g.fired and g.step_name == "not_dispatched_10min"  # acknowledged but nobody dispatched


def test_restart_between_raise_and_deadline_fires_once(hub: Hub) -> None:
    a = raise_alarm(hub)
    hub.engine.dispose()  # the hub stops; nothing in memory survives
    clock = ManualClock(hub.clock.now() + dt.timedelta(seconds=61))
    engine = make_engine(hub.url)
    try:
        sessions = make_session_factory(engine)
        fired = TimerWorker(sessions, clock, "after-restart").fire_due()
        assert [(f.alarm_id, f.fired) for f in fired] == [(a, True)]
        assert TimerWorker(sessions, clock, "after-restart-2").fire_due() == []
    finally:
        engine.dispose()


def test_two_workers_fire_each_timer_exactly_once(hub: Hub) -> None:
    alarms = [raise_alarm(hub, gw) for gw in ("gw-1", "gw-2", "gw-3")]
    alarms += [raise_alarm(hub, f"gw-x{i}") for i in range(12)]  # unregistered: district
    hub.clock.advance(3600)  # every step of every alarm is due
    engines = [make_engine(hub.url) for _ in range(2)]
    results: dict[str, list[tuple[int, bool]]] = {}
    barrier = threading.Barrier(2)

    def work(name: str, i: int) -> None:
        w = TimerWorker(make_session_factory(engines[i]), hub.clock, name, batch=3)
        barrier.wait()
        results[name] = [(f.timer_id, f.fired) for f in w.fire_due()]

    threads = [threading.Thread(target=work, args=(f"w{i}", i)) for i in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for e in engines:
            e.dispose()
    ids = [tid for r in results.values() for tid, _ in r]
    assert len(ids) == len(set(ids)) == 2 * len(alarms)  # every timer once, none twice
    with hub.sessions() as s:
        timers = s.scalars(select(AlarmTimer)).all()
        assert {t.status for t in timers} == {"fired"}
        assert {t.fired_by for t in timers} <= {"w0", "w1"}
        per_alarm = {
            a: s.scalars(
                select(Notification.address).where(
                    Notification.alarm_id == a, Notification.tier == "district"
                )
            ).all()
            for a in alarms[:3]
        }
    # one district console notification per registered alarm, not two
    assert all(addrs.count("district:pudong") == 1 for addrs in per_alarm.values())


def test_worker_with_nothing_due(hub: Hub) -> None:
    raise_alarm(hub)
    assert TimerWorker(hub.sessions, hub.clock, "w").fire_due() == []


def test_webhook_subscribers_of_the_tier_get_alarm_escalated_once_per_step(hub: Hub) -> None:
    """docs/api.md: a subscriber of the region an escalation reaches gets alarm.escalated,
    although it had the alarm's alarm.raised (people are not told twice; webhooks are)."""
    from hub.alarms.store.models import WebhookSubscription

    with hub.sessions() as s, s.begin():
        for url, kind, region in (("http://sd.example/hook", "subdistrict", "sd-01"), ("http://d.example/hook", "district", "pudong")):
            s.add(WebhookSubscription(url=url, secret_sealed="sealed", region_kind=kind, region_id=region))
    a = raise_alarm(hub)
    w = TimerWorker(hub.sessions, hub.clock, "w1")
    hub.clock.advance(60)
    w.fire_due()
    hub.clock.advance(600)
    w.fire_due()
    w.fire_due()  # nothing left: once per step
    with hub.sessions() as s:
        hooks = sorted(
            (n.payload["event"], n.tier, n.address)
            for n in s.scalars(select(Notification).where(Notification.alarm_id == a, Notification.channel == "webhook"))
        )
    # each subscriber hears of each step once: routed to it when the step reaches its
    # region (the step's tier), else as a follow-up of an alarm it already heard of ("update")
    assert hooks == [
        ("alarm.escalated", "district", "http://d.example/hook"),
        ("alarm.escalated", "subdistrict", "http://sd.example/hook"),
        ("alarm.escalated", "update", "http://d.example/hook"),
        ("alarm.escalated", "update", "http://sd.example/hook"),
        ("alarm.raised", "initial", "http://d.example/hook"),
        ("alarm.raised", "initial", "http://sd.example/hook"),
    ]
