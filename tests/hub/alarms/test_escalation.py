"""Escalation policy: each step, stopping at the awaited state, policy from data (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.alarms.clock import ManualClock
from hub.alarms.errors import PolicyError
from hub.alarms.escalation import DEFAULT_ESCALATION, EscalationPolicy, should_fire, timers_for
from hub.alarms.lifecycle import State
from protocols import AlarmClass

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def due_steps(clock: ManualClock, state: State) -> list[str]:
    """What a timer worker would fire at the clock's time for an alarm in ``state``."""
    return [
        t.step.name
        for t in timers_for(AlarmClass.ALARM, T0, DEFAULT_ESCALATION)
        if t.due_at <= clock.now() and should_fire(t.step, state)
    ]


def test_default_alarm_steps() -> None:
    ts = timers_for(AlarmClass.ALARM, T0, DEFAULT_ESCALATION)
    assert [(t.step.tier, t.due_at - T0) for t in ts] == [
        ("subdistrict", timedelta(seconds=60)),
        ("district", timedelta(minutes=10)),
    ]
    assert timers_for(AlarmClass.TROUBLE, T0, DEFAULT_ESCALATION) == []


def test_each_step_fires_when_its_state_is_not_reached() -> None:
    clock = ManualClock(T0)
    clock.advance(59.999)
    assert due_steps(clock, State.NOTIFIED) == []
    clock.advance(0.001)
    assert due_steps(clock, State.NOTIFIED) == ["not_acknowledged_60s"]
    clock.advance(600)
    assert due_steps(clock, State.NOTIFIED) == ["not_acknowledged_60s", "not_dispatched_10min"]


def test_policy_stops_when_awaited_state_is_reached() -> None:
    clock = ManualClock(T0 + timedelta(hours=1))
    assert due_steps(clock, State.ACKNOWLEDGED) == ["not_dispatched_10min"]
    assert due_steps(clock, State.DISPATCHED) == []
    assert due_steps(clock, State.RESOLVED) == []  # resolved by phone: nothing left to wait for


def test_policy_from_data() -> None:
    p = EscalationPolicy.from_data(
        {"alarm": [{"name": "ack30", "after_s": 30, "awaits": "acknowledged", "tier": "district"}]}
    )
    (t,) = timers_for(AlarmClass.ALARM, T0, p)
    assert t.step.tier == "district" and t.due_at == T0 + timedelta(seconds=30)


@pytest.mark.parametrize(
    "data",
    [
        {"nope": []},
        {"alarm": [{"name": "x", "after_s": 30, "awaits": "acknowledged", "tier": "moon"}]},
        {"alarm": [{"name": "x", "after_s": -1, "awaits": "acknowledged", "tier": "district"}]},
        {"alarm": [{"name": "x", "after_s": 30, "awaits": "raised", "tier": "district"}]},
        {"alarm": [{"name": "x", "after_s": 30}]},
        {
            "alarm": [
                {"name": "a", "after_s": 60, "awaits": "acknowledged", "tier": "district"},
                {"name": "b", "after_s": 30, "awaits": "dispatched", "tier": "district"},
            ]
        },
    ],
)
def test_bad_policies_are_refused(data: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(PolicyError):
        EscalationPolicy.from_data(data)
