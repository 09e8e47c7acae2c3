"""Delivery policy as pure functions: lanes, window displacement, resend backoff, backlog order."""

from __future__ import annotations

from pathlib import Path

from edge.outbox import Outbox
from edge.policy import ALARM_RESEND_MAX_S, Flight, lane_for_event, next_due, plan, resend_delay
from edge.store import LANE_ALARM, LANE_EVENT, LANE_TELEMETRY, Entry, Store
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
    assert [x.id for x in out] == ["a4"]  # the rest waits for the hub's ack of the alarm
    del flights["a4"]
    out = plan(cands[:3], flights, window=10, now=0.1, newest_first=False, base_s=1, cap_s=8)
    assert [x.id for x in out] == ["r3", "t1", "t2"]


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
    assert [x.id for x in out] == ["a5"]
    del flights["a5"]
    out = plan(cands[:4], flights, window=10, now=0, newest_first=True, base_s=1, cap_s=8)
    assert [x.id for x in out] == ["r3", "r4", "t2", "t1"]


def test_nothing_else_is_sent_or_resent_while_an_alarm_is_unacked() -> None:
    flights: dict[str, Flight] = {}
    tele = [e(f"t{i}", LANE_TELEMETRY, i) for i in range(3)]
    assert len(plan(tele, flights, window=4, now=0, newest_first=False, base_s=1, cap_s=8)) == 3
    cands = [*tele, e("a9", LANE_ALARM, 9), e("r10", LANE_EVENT, 10)]
    out = plan(cands, flights, window=4, now=0.1, newest_first=False, base_s=1, cap_s=8)
    assert [x.id for x in out] == ["a9"]
    # the telemetry in flight is due at 1 s; while the alarm is unacked only it is resent
    assert next_due(flights) == 0.1 + 1
    out = plan(cands, flights, window=4, now=1.2, newest_first=False, base_s=1, cap_s=8)
    assert [x.id for x in out] == ["a9"]
    del flights["a9"]  # acked: the event and the due telemetry go at once
    out = plan([*tele, cands[4]], flights, window=4, now=1.3, newest_first=False, base_s=1, cap_s=8)
    assert [x.id for x in out] == ["r10", "t0", "t1", "t2"]


def test_an_alarm_is_resent_at_least_every_alarm_resend_max_s() -> None:
    flights: dict[str, Flight] = {}
    cands = [e("a", LANE_ALARM, 1)]
    for now in (0.0, 10.0, 30.0, 60.0):
        plan(cands, flights, window=2, now=now, newest_first=False, base_s=10, cap_s=300)
    assert flights["a"].due == 60.0 + ALARM_RESEND_MAX_S


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


def test_resend_floor_holds_back_everything_but_alarms() -> None:
    flights: dict[str, Flight] = {}
    plan([e("a", LANE_ALARM, 1)], flights, window=3, now=0, newest_first=False, base_s=1, cap_s=8, floor_s=5)
    assert flights.pop("a").due == 1.0
    cands = [e("b", LANE_EVENT, 2), e("t", LANE_TELEMETRY, 3)]
    plan(cands, flights, window=3, now=0, newest_first=False, base_s=1, cap_s=8, floor_s=5)
    # an alarm keeps its backoff; the rest wait at least the floor, never past the cap
    assert {k: f.due for k, f in flights.items()} == {"b": 5.0, "t": 5.0}
    plan(cands, flights, window=3, now=5, newest_first=False, base_s=1, cap_s=8, floor_s=50)
    assert flights["b"].due == 5 + 8 and flights["b"].sent == 5


def test_outbox_learns_the_ack_time_from_first_sends_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "o.db")
    ob = Outbox(store, window=4, newest_first=False, ack_timeout_s=1, resend_max_s=60)
    for i in range(3):
        ob.add_telemetry(Entry(f"t{i}", LANE_TELEMETRY, "telemetry", i + 1, i + 1, b"x"))
    ob.plan(0.0)
    ob.ack(["t0"], now=2.0)  # first send acked after 2 s
    assert ob.srtt_s == 2.0
    ob.plan(1.0)  # t1, t2 resent (due at 1 s): their acks are ambiguous
    ob.ack(["t1"], now=30.0)
    assert ob.srtt_s == 2.0  # not sampled (Karn)
    ob.add_telemetry(Entry("t3", LANE_TELEMETRY, "telemetry", 4, 4, b"x"))
    ob.plan(30.0)
    assert ob.flights["t3"].due == 30.0 + 4 * 2.0  # resend floor: 4x the ack time
    store.close()
