"""KPIs over plain alarm facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.alarms.kpi import AlarmFacts, false_alarm_rates, kpis
from hub.alarms.lifecycle import Outcome
from protocols import AlarmClass

T0 = datetime(2026, 3, 1, tzinfo=UTC)
A = AlarmClass.ALARM


def s(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


def test_times_and_share_within_60s() -> None:
    facts = [
        AlarmFacts(A, T0, acknowledged_at=s(30), dispatched_at=s(120), on_site_at=s(600)),
        AlarmFacts(A, T0, acknowledged_at=s(60)),
        AlarmFacts(A, T0, acknowledged_at=s(90)),
        AlarmFacts(A, T0),  # never acknowledged, long ago: a miss
        AlarmFacts(A, s(3590)),  # raised 10 s before now: not judged yet
        AlarmFacts(AlarmClass.TROUBLE, T0, acknowledged_at=s(9999)),  # not counted
    ]
    k = kpis(facts, now=s(3600))
    assert k.alarms == 5
    assert k.acknowledged_within_60s == pytest.approx(2 / 4)
    assert (k.time_to_acknowledge.count, k.time_to_acknowledge.median_s, k.time_to_acknowledge.max_s) == (
        3,
        60,
        90,
    )
    assert k.time_to_dispatch.median_s == 120 and k.time_to_arrive.median_s == 600


def test_no_alarms() -> None:
    k = kpis([], now=T0)
    assert k.acknowledged_within_60s is None and k.time_to_acknowledge.median_s is None


def test_false_alarm_rates_by_home_model_workstation() -> None:
    facts = [
        AlarmFacts(A, T0, "h1", "ws1", "panic-button", outcome=Outcome.FALSE_PRESS),
        AlarmFacts(A, T0, "h1", "ws1", "panic-button", outcome=Outcome.FALSE_PRESS),
        AlarmFacts(A, T0, "h1", "ws1", "smoke-dry-contact", outcome=Outcome.REAL_FIRE),
        AlarmFacts(A, T0, "h2", "ws1", "smoke-dry-contact", outcome=Outcome.COOKING_SMOKE),
        AlarmFacts(A, T0, "h2", "ws2", "smoke-dry-contact", outcome=Outcome.TEST),  # not counted
        AlarmFacts(A, T0, "h2", "ws2", "smoke-dry-contact"),  # unresolved: not counted
    ]
    by_home = false_alarm_rates(facts, "home_id")
    assert by_home["h1"].rate == pytest.approx(2 / 3) and by_home["h2"].rate == 1.0
    by_model = false_alarm_rates(facts, "device_model")
    assert by_model["panic-button"].rate == 1.0 and by_model["smoke-dry-contact"].rate == 0.5
    assert set(false_alarm_rates(facts, "workstation_id")) == {"ws1"}
    with pytest.raises(ValueError):
        false_alarm_rates(facts, "nope")
