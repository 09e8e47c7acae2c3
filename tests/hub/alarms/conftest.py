"""Helpers of the alarm tests (the ``hub`` fixture itself is in tests/hub/conftest.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select

from hub.alarms.engine.decide import Steps
from hub.alarms.store.models import Alarm
from hub.notify.models import Notification
from tests.hub.conftest import Hub


def notifications(hub: Hub, alarm_id: str) -> set[tuple[str, str, str]]:
    with hub.sessions() as s:
        return {
            (n.channel, n.address, n.tier)
            for n in s.scalars(select(Notification).where(Notification.alarm_id == alarm_id))
        }


def load(hub: Hub, alarm_id: str) -> Alarm:
    with hub.sessions() as s:
        a = s.get(Alarm, alarm_id)
        assert a is not None
        _ = a.history
        return a


#: decision step (as counted and flagged) → the Steps field that runs it
STEPS = {"registry": "place", "rules": "decide", "routing": "route", "escalation": "timers", "notify": "notify"}


def broken(step: str) -> Steps:
    """The default steps with ``step`` raising, as a bug there would."""

    def boom(*_: Any) -> Any:
        raise RuntimeError(f"injected failure in {step}")

    return replace(Steps(), **{STEPS[step]: boom})
