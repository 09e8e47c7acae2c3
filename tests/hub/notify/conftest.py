"""Helpers of the notification tests: queue a notification, read it back with its attempts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from hub.notify.enqueue import Outgoing, enqueue
from hub.notify.models import DeliveryAttempt, Notification
from tests.hub.conftest import Hub


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def add(hub: Hub, channel: str, address: str, payload: dict[str, Any] | None = None) -> str:
    with hub.sessions() as s, s.begin():
        (nid,) = enqueue(
            s,
            None,
            [Outgoing(channel, address, "webhook")],
            payload or {"event": "alarm.raised", "alarm_id": "a-1"},
            utcnow(),
        )
    return nid


def row(hub: Hub, nid: str) -> tuple[Notification, list[DeliveryAttempt]]:
    with hub.sessions() as s:
        n = s.get(Notification, nid)
        assert n is not None
        atts = list(
            s.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.notification_id == nid)
                .order_by(DeliveryAttempt.attempt)
            )
        )
        return n, atts
