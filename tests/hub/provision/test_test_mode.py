"""Test mode at the alarm engine: a gateway's events during a walk test are stored and
marked, never routed to people; test mode ends by itself; sign-off needs a passed walk test."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from hub.alarms.engine.decide import event_signal
from hub.alarms.store.models import Alarm, ProcessedSignal
from hub.notify.models import Notification
from hub.provision import service
from hub.provision.errors import NotReady
from hub.provision.walktest import WalkResult
from protocols import EventKind, EventState
from safehome.testing.events import make_event
from tests.hub.conftest import Hub


def count(hub: Hub, model: type) -> int:
    with hub.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_events_in_test_mode_are_marked_and_never_routed(hub: Hub) -> None:
    with hub.sessions() as s, s.begin():
        service.start_test_mode(s, "gw-1", hub.clock.now(), 600)
    for kind, sensor in ((EventKind.SMOKE, "smoke-1"), (EventKind.PANIC, "panic-1")):
        r = hub.alarms.handle(*event_signal(make_event(kind=kind, sensor=sensor), hub.clock.now()))
        assert r.decision == "test" and r.alarm_id is None
    # the restore of a test finds no alarm: nothing to do, nothing sent
    assert hub.alarms.handle(*event_signal(make_event(kind=EventKind.SMOKE, sensor="smoke-1", state=EventState.RESTORE),
                                           hub.clock.now())).decision == "ignore"
    assert count(hub, Alarm) == 0 and count(hub, Notification) == 0
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).where(ProcessedSignal.decision == "test")) == 2
    # another home's gateway is not in test mode
    assert hub.alarms.handle(*event_signal(make_event("gw-2", kind=EventKind.SMOKE, sensor="smoke-1"),
                                           hub.clock.now())).decision == "open"


def test_test_mode_ends_by_itself_and_alarms_go_to_people_again(hub: Hub) -> None:
    with hub.sessions() as s, s.begin():
        until = service.start_test_mode(s, "gw-1", hub.clock.now(), 10 * 3600)  # asked for 10 h …
    assert until - hub.clock.now() == dt.timedelta(seconds=service.TEST_MODE_MAX_S)  # … bounded to 1 h
    hub.clock.advance(service.TEST_MODE_MAX_S + 1)
    r = hub.alarms.handle(*event_signal(make_event(kind=EventKind.SMOKE, sensor="smoke-1"), hub.clock.now()))
    assert r.decision == "open" and count(hub, Notification) > 0


def test_signoff_needs_a_passed_walk_test_and_ends_test_mode(hub: Hub) -> None:
    now = hub.clock.now()
    with hub.sessions() as s, s.begin():
        with pytest.raises(NotReady, match="the walk test has not been run"):
            service.signoff(s, "gw-1", now)
        service.start_test_mode(s, "gw-1", now, 600)
        service.record_walktest(s, WalkResult("gw-1", ("panic-1", "smoke-1"), {"smoke-1": now}), now)
        with pytest.raises(NotReady, match="failed: panic-1: never reported to gw-1"):
            service.signoff(s, "gw-1", now)
        # a failed walk test leaves test mode on only for the settling time
        assert not service.in_test_mode(s, "gw-1", now + dt.timedelta(seconds=service.SETTLE_S + 1))
        service.start_test_mode(s, "gw-1", now, 600)
        service.record_walktest(s, WalkResult("gw-1", ("smoke-1",), {"smoke-1": now}), now)
        rec = service.signoff(s, "gw-1", now, "installer-7")
        assert rec.signed_off_by == "installer-7"
        assert not service.in_test_mode(s, "gw-1", now)
        # provisioning again needs a new walk test
        service.provision(s, "home-1", "gw-1", now)
        with pytest.raises(NotReady, match="has not been run"):
            service.signoff(s, "gw-1", now)


def test_walk_test_status_reads_stored_events(hub: Hub) -> None:
    from hub.db.events import store_events

    now = hub.clock.now()
    with hub.sessions() as s, s.begin():
        service.start_test_mode(s, "gw-1", now - dt.timedelta(seconds=1), 600)
        store_events(s, [make_event(kind=EventKind.SMOKE, sensor="smoke-1"), make_event("gw-2", kind=EventKind.SMOKE, sensor="panic-1")], now)
    with hub.sessions() as s:
        r = service.walktest_status(s, "gw-1")
    assert r.reported.keys() == {"smoke-1"} and r.missing == ("panic-1",)
    assert r.wrong_gateway == ()  # gw-2 is another home's gateway: not part of this walk test
