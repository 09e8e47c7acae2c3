"""Alarm rules: every class, dedup, restore, hysteresis, home overrides (pure, controlled clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.alarms.classes import PRIORITY, classify, is_life_safety, priority_of
from hub.alarms.lifecycle import State
from hub.alarms.rules import (
    HomeOverrides,
    Ignore,
    Open,
    OpenAlarm,
    Reading,
    Repeat,
    Restore,
    Signal,
    analogue_signal,
    decide,
)
from protocols import AlarmClass, EventKind, EventState, class_of

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALARM, RESTORE = EventState.ALARM, EventState.RESTORE


def sig(kind: str, state: EventState = ALARM, at: datetime = T0, sensor: str | None = "s-1") -> Signal:
    return Signal("gw-1", sensor, kind, state, at, event_id="e")


def opened(state: State = State.RAISED, restored: datetime | None = None, count: int = 1) -> OpenAlarm:
    return OpenAlarm("a-1", state, count, T0, restored)


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_wire_kind_opens_an_alarm_of_its_protocol_class(kind: EventKind) -> None:
    d = decide(sig(kind.value), None)
    assert isinstance(d, Open)
    assert d.alarm_class is class_of(kind)
    assert d.priority == PRIORITY[class_of(kind)]
    assert d.key == ("gw-1", "s-1", kind.value)


def test_priorities_order_life_safety_first() -> None:
    assert (
        priority_of("smoke") < priority_of("sensor_silent") < priority_of("battery_low") < priority_of("test")
    )
    assert [k for k in EventKind if is_life_safety(k)] == ["smoke", "gas", "panic", "heat", "co"]


def test_hub_conditions_and_unknown_kinds_are_never_dropped() -> None:
    assert classify("gateway_silent") is AlarmClass.SUPERVISORY
    assert classify("broker_dropped") is AlarmClass.TROUBLE
    assert classify("something_new") is AlarmClass.SUPERVISORY
    assert isinstance(decide(sig("gateway_silent", sensor=None), None), Open)


def test_gateway_level_signal_keys_on_empty_sensor() -> None:
    assert sig("mains_lost", sensor=None).key == ("gw-1", "", "mains_lost")


def test_repeat_updates_the_open_alarm_instead_of_opening_another() -> None:
    d = decide(sig("smoke", at=T0 + timedelta(seconds=5)), opened(count=3))
    assert d == Repeat("a-1", 4, T0 + timedelta(seconds=5), "e", reactivated=False)


def test_late_repeat_does_not_move_last_seen_backwards() -> None:
    d = decide(sig("smoke", at=T0 - timedelta(seconds=30)), opened())
    assert isinstance(d, Repeat) and d.at == T0


def test_repeat_after_restore_reactivates() -> None:
    d = decide(sig("smoke"), opened(restored=T0))
    assert isinstance(d, Repeat) and d.reactivated


def test_life_safety_restore_latches_the_alarm() -> None:
    d = decide(sig("smoke", RESTORE), opened())
    assert d == Restore("a-1", T0, auto_resolve=False)


@pytest.mark.parametrize("kind", ["battery_low", "sensor_fault", "gateway_silent", "tamper", "buffer_failed"])
def test_untaken_non_life_safety_restore_auto_resolves(kind: str) -> None:
    assert decide(sig(kind, RESTORE), opened(State.NOTIFIED)) == Restore("a-1", T0, auto_resolve=True)


def test_taken_trouble_restore_is_left_to_the_person() -> None:
    assert decide(sig("battery_low", RESTORE), opened(State.ACKNOWLEDGED)) == Restore("a-1", T0, False)


def test_restore_without_alarm_and_double_restore_are_ignored() -> None:
    assert isinstance(decide(sig("smoke", RESTORE), None), Ignore)
    d = decide(sig("smoke", RESTORE), opened(restored=T0))
    assert isinstance(d, Ignore) and d.reason == "already_restored"


def test_home_override_suppresses_trouble() -> None:
    d = decide(sig("battery_low"), None, HomeOverrides(suppress=frozenset({"battery_low"})))
    assert isinstance(d, Ignore) and d.reason == "suppressed_by_home"


@pytest.mark.parametrize("kind", ["smoke", "gas", "panic", "heat", "co"])
def test_home_override_never_suppresses_life_safety(kind: str) -> None:
    d = decide(sig(kind), None, HomeOverrides(suppress=frozenset({kind}), frequent_false=frozenset({kind})))
    assert isinstance(d, Open)
    assert d.flags == ("frequent_false_alarms", "suppression_ignored_life_safety")


def reading(value: float, metric: str = "gas_lel") -> Reading:
    return Reading("gw-1", "gas-1", metric, value, T0)


def test_gas_hysteresis_raises_at_threshold_and_restores_only_below_clear() -> None:
    assert analogue_signal(reading(19.9), active=False) is None
    up = analogue_signal(reading(20.0), active=False)
    assert up is not None and up.kind == "gas" and up.state is ALARM and up.source == "telemetry"
    # hovering between clear (10) and raise (20) changes nothing either way
    assert analogue_signal(reading(15.0), active=True) is None
    assert analogue_signal(reading(25.0), active=True) is None
    assert analogue_signal(reading(10.1), active=True) is None
    down = analogue_signal(reading(10.0), active=True)
    assert down is not None and down.state is RESTORE
    assert analogue_signal(reading(5.0), active=False) is None


def test_co_threshold_and_unknown_metric() -> None:
    s = analogue_signal(reading(60, "co_ppm"), active=False)
    assert s is not None and s.kind == "co"
    assert analogue_signal(reading(99, "battery_v"), active=False) is None
