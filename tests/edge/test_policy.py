"""Delivery policy as pure functions: lanes, window displacement, resend backoff, backlog order."""

from __future__ import annotations

from edge.policy import Flight, lane_for_event, next_due, plan, resend_delay
from edge.store import LANE_ALARM, LANE_EVENT, LANE_TELEMETRY, Entry
from protocols import EventKind, EventState


def e(name: str, lane: int, seq: int) -> Entry:
    return Entry(name, lane, "event", seq, seq, b"")


def test_lanes() -> None:
    assert lane_for_event(EventKind.SMOKE, EventState.ALARM) == LANE_ALARM
    assert lane_for_event(EventKind.PANIC, EventState.RESTORE) == LANE_EVENT
    assert lane_for_event(EventKind.BATTERY_LOW, EventState.ALARM) == LANE_EVENT
    assert lane_for_event(EventKind.SENSOR_SILENT, EventState.ALARM) == LANE_EVENT


def test_backoff_doubles_up_to_the_cap_forever() -> None:
    assert [resend_delay(n, 5, 60) for n in (1, 2, 3, 4, 5, 100, 10_000)] == [5, 10, 20, 40, 60, 60, 60]


def test_alarms_then_events_then_telemetry_oldest_first() -> None:
    flights: dict[str, Flight] = {}
    cands = [
        e("t1", LANE_TELEMETRY, 1),
        e("t2", LANE_TELEMETRY, 2),
        e("r3", LANE_EVENT, 3),
        e("a4", LANE_ALARM, 4),
    ]
    out = plan(cands, flights, window=10, now=0, newest_first=False, base_s=1, cap_s=8)
    assert [x.id for x in out] == ["a4", "r3", "t1", "t2"]


def test_newest_first_applies_to_the_telemetry_backlog_only() -> None:
    flights: dict[str, Flight] = {}
    cands = [
        e("t1", LANE_TELEMETRY, 1),
        e("t2", LANE_TELEMETRY, 2),
        e("r3", LANE_EVENT, 3),
        e("r4", LANE_EVENT, 4),
        e("a5", LANE_ALARM, 5),
    ]
    out = plan(cands, flights, window=10, now=0, newest_first=True, base_s=1, cap_s=8)
    assert [x.id for x in out] == ["a5", "r3", "r4", "t2", "t1"]


def test_window_bounds_in_flight_and_resends_when_due() -> None:
    flights: dict[str, Flight] = {}
    cands = [e(f"t{i}", LANE_TELEMETRY, i) for i in range(5)]
    out = plan(cands, flights, window=2, now=0, newest_first=False, base_s=1, cap_s=8)
    assert [x.id for x in out] == ["t0", "t1"]
    assert plan(cands, flights, window=2, now=0.5, newest_first=False, base_s=1, cap_s=8) == []
    assert next_due(flights) == 1
    out = plan(cands, flights, window=2, now=1.0, newest_first=False, base_s=1, cap_s=8)
    assert [x.id for x in out] == ["t0", "t1"]  # resent, same entries (same ids)
    assert flights["t0"].attempts == 2 and flights["t0"].due == 3.0


def test_an_alarm_displaces_the_lowest_priority_message_in_flight() -> None:
    flights: dict[str, Flight] = {}
    tele = [e(f"t{i}", LANE_TELEMETRY, i) for i in range(3)]
    plan(tele, flights, window=3, now=0, newest_first=False, base_s=1, cap_s=8)
    out = plan(
        [*tele, e("a9", LANE_ALARM, 9)], flights, window=3, now=0.1, newest_first=False, base_s=1, cap_s=8
    )
    assert [x.id for x in out] == ["a9"]
    assert set(flights) == {"a9", "t0", "t1"}  # t2 goes back to waiting, resent later with its id
