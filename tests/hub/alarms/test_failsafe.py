"""Fail-safe decisions on a real database (SQLite and PostgreSQL): whatever step of deciding
or routing fails, the event ends as an alarm at the home's 24-hour center, flagged with the
error, counted and logged once at ERROR; if not even that can be stored, the signal stays
undecided and is retried until it is."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.exc import OperationalError

from hub.alarms.engine.decide import AlarmEngine, Steps, event_signal
from hub.alarms.engine.timers import TimerWorker
from hub.alarms.errors import Undecided
from hub.alarms.store.models import Alarm, AlarmTimer, ProcessedSignal
from hub.notify.models import Notification
from hub.registry.models import District, Workstation
from protocols import EventKind, EventState
from safehome.testing.events import make_event
from safehome.testing.poll import until
from tests.hub.alarms.conftest import STEPS, broken, load, notifications
from tests.hub.conftest import Hub, alarm_settings

SUBDISTRICT = {
    ("console", "subdistrict:sd-01", "initial"),
    ("sms", "+86-sd1", "initial"),
    ("voice", "+86-sd1", "initial"),
}


def engine_with(hub: Hub, steps: Steps) -> AlarmEngine:
    return AlarmEngine(hub.sessions, hub.clock, steps=steps, default_district="pudong")


def errors_about(caplog: pytest.LogCaptureFixture, alarm_id: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and alarm_id in r.getMessage()]


@pytest.mark.parametrize("step", STEPS)
def test_each_failing_step_ends_in_a_flagged_alarm_at_the_24_hour_center(
    hub: Hub, step: str, caplog: pytest.LogCaptureFixture
) -> None:
    ev = make_event("gw-1")
    r = engine_with(hub, broken(step)).handle(*event_signal(ev, hub.clock.now()))
    assert (r.decision, r.failed_step) == ("failsafe", step)
    assert r.alarm_id is not None and f"injected failure in {step}" in r.detail
    a = load(hub, r.alarm_id)
    assert (a.kind, a.alarm_class, a.state, a.flags, a.event_id) == ("smoke", "alarm", "raised", ["routing_failed"], ev.id)
    assert (a.home_id, a.workstation_id, a.subdistrict_id, a.district_id) == ("home-1", "ws-0001", "sd-01", "pudong")
    assert notifications(hub, a.id) == SUBDISTRICT
    assert [h.action for h in a.history] == ["raise"] and f"injected failure in {step}" in a.history[0].note
    with hub.sessions() as s:
        n = s.scalars(select(Notification).where(Notification.alarm_id == a.id)).first()
        assert n is not None and f"injected failure in {step}" in n.payload["routing_error"]
        sig = s.get(ProcessedSignal, f"ev:{ev.id}")
        assert sig is not None and (sig.decision, sig.alarm_id) == ("failsafe", a.id)
        timers = s.scalars(select(AlarmTimer.tier).where(AlarmTimer.alarm_id == a.id)).all()
    # the fail-safe alarm escalates like any other (its own, plain use of the policy)
    assert sorted(timers) == ["district", "subdistrict"]
    assert len(errors_about(caplog, a.id)) == 1
    # the same event again (a re-check, a second worker) changes nothing
    again = engine_with(hub, broken(step)).handle(*event_signal(ev, hub.clock.now()))
    assert again.decision == "duplicate"


def test_a_repeat_whose_decision_fails_stays_on_the_open_alarm(hub: Hub) -> None:
    first = hub.alarms.handle(*event_signal(make_event("gw-1"), hub.clock.now()))
    assert first.decision == "open"
    r = engine_with(hub, broken("rules")).handle(*event_signal(make_event("gw-1"), hub.clock.now()))
    assert (r.decision, r.alarm_id, r.failed_step) == ("failsafe", first.alarm_id, "rules")
    with hub.sessions() as s:
        assert s.scalars(select(Alarm.id)).all() == [first.alarm_id]  # no second alarm for the key


def test_a_failed_restore_leaves_the_alarm_open_and_is_not_retried_forever(hub: Hub) -> None:
    first = hub.alarms.handle(*event_signal(make_event("gw-1"), hub.clock.now()))
    restore = make_event("gw-1", state=EventState.RESTORE)
    r = engine_with(hub, broken("rules")).handle(*event_signal(restore, hub.clock.now()))
    assert (r.decision, r.failed_step) == ("restore_failed", "rules")
    assert first.alarm_id is not None and load(hub, first.alarm_id).restored_at is None
    with hub.sessions() as s:
        sig = s.get(ProcessedSignal, f"ev:{restore.id}")
        assert sig is not None and sig.decision == "restore_failed"


def test_unknown_home_goes_to_the_district_center(hub: Hub) -> None:
    """Even the subdistrict cannot be found (a gateway the failing lookup cannot place)."""
    r = engine_with(hub, broken("registry")).handle(*event_signal(make_event("gw-unknown"), hub.clock.now()))
    assert r.decision == "failsafe" and r.alarm_id is not None
    a = load(hub, r.alarm_id)
    assert (a.subdistrict_id, a.district_id, a.flags) == (None, "pudong", ["routing_failed"])
    assert notifications(hub, a.id) == {
        ("console", "district:pudong", "initial"),
        ("sms", "+86-d", "initial"),
        ("voice", "+86-d", "initial"),
    }


@pytest.mark.parametrize(
    "corrupt",
    [
        # rows the importer refuses, written past it: half-given hours, an unknown zone
        lambda s: s.execute(update(Workstation).where(Workstation.id == "ws-0001").values(day_end=None)),
        lambda s: s.execute(update(District).values(timezone="Mars/Olympus")),
    ],
    ids=["half_given_hours", "unknown_timezone"],
)
def test_registry_rows_the_engine_cannot_use_end_in_the_failsafe_alarm(
    hub: Hub, corrupt: Callable[[Any], Any]
) -> None:
    with hub.sessions() as s, s.begin():
        corrupt(s)
    r = hub.alarms.handle(*event_signal(make_event("gw-1"), hub.clock.now()))
    assert (r.decision, r.failed_step) == ("failsafe", "routing")
    assert r.alarm_id is not None and notifications(hub, r.alarm_id) == SUBDISTRICT


def test_a_workstation_staffed_24_hours_gets_its_alarm_normally(hub: Hub) -> None:
    """The case found in the field: day_start == day_end (docs: staffed 24 h) made the
    engine raise PolicyError, and the smoke alarm was never raised."""
    with hub.sessions() as s, s.begin():
        s.execute(
            update(Workstation).where(Workstation.id == "ws-0001").values(day_start=dt.time(0), day_end=dt.time(0))
        )
    for at in (hub.clock.now(), hub.clock.now() + dt.timedelta(hours=12)):  # day and night in Shanghai
        hub.clock.set(at)
        r = hub.alarms.handle(*event_signal(make_event("gw-1", sensor=f"smoke-{at.hour}"), at))
        assert r.decision == "open" and r.alarm_id is not None
        a = load(hub, r.alarm_id)
        assert (a.shift, a.flags) == ("day", [])
        assert ("console", "workstation:ws-0001", "initial") in notifications(hub, a.id)


def locked_writes(hub: Hub) -> dict[str, bool]:
    """While ``lock["on"]``, every flush of this database's sessions fails as a locked
    SQLite database does (the session event is SQLAlchemy's seam; nothing is patched)."""
    lock = {"on": True}

    def before_flush(session: Any, *_: Any) -> None:
        if lock["on"] and any(isinstance(o, Alarm | ProcessedSignal) for o in session.new):
            raise OperationalError("INSERT", {}, Exception("database is locked"))

    event.listen(hub.sessions, "before_flush", before_flush)
    return lock


def test_when_the_failsafe_insert_fails_too_the_signal_stays_undecided(hub: Hub) -> None:
    locked_writes(hub)
    ev = make_event("gw-1")
    with pytest.raises(Undecided) as info:
        engine_with(hub, broken("routing")).handle(*event_signal(ev, hub.clock.now()))
    assert "database is locked" in str(info.value) and info.value.key == f"ev:{ev.id}"
    with hub.sessions() as s:
        assert s.get(ProcessedSignal, f"ev:{ev.id}") is None  # the re-check will find it
        assert s.scalars(select(Alarm)).all() == []


async def test_an_undecided_event_is_retried_loudly_until_it_is_an_alarm(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    from hub.alarms.service import AlarmService
    from hub.sinks import NewEvent

    svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock)
    lock = locked_writes(hub)
    ev = make_event("gw-2")
    await svc.start()
    try:
        await svc.sink.events_stored([NewEvent(ev, hub.clock.now())])
        # failed, then retried and failed again
        await until(lambda: svc.metrics.undecided._value.get() >= 2, within=60, what="two undecided rounds")
        assert any("still undecided" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
        lock["on"] = False

        def the_alarm() -> Alarm | None:
            with hub.sessions() as s:
                return s.scalars(select(Alarm).where(Alarm.event_id == ev.id)).first()

        alarm = await until(the_alarm, within=60, what="the alarm decided")
        assert alarm is not None
        assert (alarm.gateway_id, alarm.flags) == ("gw-2", [])  # decided normally once it could be
        await until(lambda: not svc.sink.undecided, within=60, what="the event forgotten once decided")
    finally:
        await svc.stop()


def test_escalation_with_an_unusable_registry_still_reaches_the_tier(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    r = hub.alarms.handle(*event_signal(make_event("gw-1", kind=EventKind.PANIC, sensor="panic-1"), hub.clock.now()))
    assert r.alarm_id is not None

    def boom(*_: Any) -> Any:
        raise RuntimeError("registry gone")

    worker = TimerWorker(hub.sessions, hub.clock, "w", place=boom)
    for after_s, tier, console in ((61, "subdistrict", "subdistrict:sd-01"), (600, "district", "district:pudong")):
        hub.clock.set(load(hub, r.alarm_id).raised_at + dt.timedelta(seconds=after_s))
        assert [f.fired for f in worker.fire_due()] == [True]
        with hub.sessions() as s:
            n = s.scalars(
                select(Notification).where(Notification.alarm_id == r.alarm_id, Notification.tier == tier)
            ).one()
        assert (n.channel, n.address, n.payload["event"]) == ("console", console, "alarm.escalated")
        assert "registry gone" in n.payload["routing_error"]
    assert sum("registry gone" in m for m in errors_about(caplog, r.alarm_id)) == 2
