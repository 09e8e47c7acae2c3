"""The fault matrix's counting rules, on rows built by hand (no processes)."""

from __future__ import annotations

from bench.faults.count import Rows, tally
from bench.faults.harness import Raised
from bench.faults.receiver import Delivery

R = [Raised("e1", "gw-1", "smoke-1", "smoke", 100.0), Raised("e2", "gw-2", "smoke-1", "smoke", 101.0)]


def rows(**kw: object) -> Rows:
    base: dict[str, object] = {
        "events": [("e1", "gw-1", 1), ("e2", "gw-2", 1)],
        "alarms": [("a1", "gw-1", "smoke-1", "smoke"), ("a2", "gw-2", "smoke-1", "smoke")],
        "timers": [("a1", 0, "fired"), ("a2", 0, "fired")],
    }
    base.update(kw)
    return Rows(**base)  # type: ignore[arg-type]


HOOKS = [
    Delivery(102.0, "alarm.raised", "n1", "a1", "gw-1"),
    Delivery(103.0, "alarm.raised", "n2", "a2", "gw-2"),
    Delivery(106.0, "alarm.escalated", "n3", "a1", "gw-1"),
    Delivery(107.0, "alarm.escalated", "n4", "a2", "gw-2"),
]


def test_everything_accounted_for_is_ok() -> None:
    t = tally(R, rows(), HOOKS, recovered_at=100.5)
    assert t.ok()
    # a1 was raised before the recovery: its delay counts from the recovery
    assert t.worst_delay_s == 2.0


def test_a_missing_event_or_webhook_is_not_complete() -> None:
    assert not tally(R, rows(events=[("e1", "gw-1", 1)]), HOOKS, 0).complete()
    assert not tally(R, rows(), HOOKS[1:], 0).complete()
    assert not tally(R, rows(), HOOKS[:2], 0).complete()  # no escalation webhook


def test_duplicates_are_counted() -> None:
    # the same (gateway, seq) stored under two ids (a gateway that re-raised after a reboot)
    t = tally(R, rows(events=[("e1", "gw-1", 1), ("e2", "gw-2", 1), ("e9", "gw-2", 1)]), HOOKS, 0)
    assert t.duplicates == 1 and not t.ok()
    # a second alarm for one sensor and kind
    two = rows(alarms=[*rows().alarms, ("a3", "gw-1", "smoke-1", "smoke")])
    assert tally(R, two, HOOKS, 0).duplicates == 1


def test_escalation_fired_twice_is_not_ok_and_redelivery_is_counted_not_failed() -> None:
    t = tally(R, rows(timers=[("a1", 0, "fired"), ("a1", 0, "fired"), ("a2", 0, "fired")]), HOOKS, 0)
    assert not t.ok()
    again = tally(R, rows(), [*HOOKS, HOOKS[0]], 0)
    assert again.redeliveries == 1 and again.ok()


def test_other_gateways_and_alarms_are_ignored() -> None:
    extra = rows(
        events=[*rows().events, ("x", "gw-9", 1), ("y", "gw-9", 1)],
        alarms=[*rows().alarms, ("a9", "gw-9", "smoke-1", "smoke")],
    )
    assert tally(R, extra, [*HOOKS, Delivery(1.0, "alarm.raised", "n9", "a9", "gw-9")], 0).ok()


def test_repeats_and_restores_of_one_sensor_expect_one_alarm() -> None:
    # a power-cut agent: the same smoke sensor raised twice and restored once
    raised = [
        *R[:1],
        Raised("e3", "gw-1", "smoke-1", "smoke", 104.0),
        Raised("e4", "gw-1", "smoke-1", "smoke", 105.0, "restore"),
    ]
    events = [("e1", "gw-1", 1), ("e3", "gw-1", 2), ("e4", "gw-1", 3)]
    t = tally(raised, rows(events=events, alarms=rows().alarms[:1], timers=rows().timers[:1]), HOOKS[::2], 0)
    assert (t.raised, t.stored, t.keys, t.alarms) == (3, 3, 1, 1)
    assert t.ok()
    # the delay counts from the sensor's first alarm event
    assert t.worst_delay_s == 2.0
