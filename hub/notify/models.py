"""Outbox tables: one ``notifications`` row per (alarm, channel, recipient) and one
``notification_attempts`` row per delivery attempt (the delivery log).

Routing and escalation only insert notification rows, in their own transaction; channel
workers deliver them later, so a slow or down channel never holds up anything else.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base
from hub.notify.names import NotificationStatus


class Notification(Base):
    """``status`` (:class:`~hub.notify.names.NotificationStatus`): pending → sending (leased
    by a worker) → delivered | pending (retry) | dead; or unconfigured."""

    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alarm_id: Mapped[str | None] = mapped_column(String(36), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(500))
    role: Mapped[str] = mapped_column(String(32))
    tier: Mapped[str] = mapped_column(String(16), default="initial")
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=NotificationStatus.PENDING)
    #: lower = sooner: the alarm class's priority (life safety 1), so a flood of trouble
    #: notifications never delays a smoke alarm's
    priority: Mapped[int] = mapped_column(Integer(), default=9, server_default="9")
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime]
    next_attempt_at: Mapped[dt.datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(120), default=None)
    lease_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text(), default=None)

    __table_args__ = (
        Index(
            "ix_notifications_channel_status_priority_next_attempt_at",
            "channel", "status", "priority", "next_attempt_at",
        ),
        # a webhook's delivery log: its URL's rows, newest first (/api/v1/webhooks/{id}/deliveries)
        Index("ix_notifications_address_id", "address", "id"),
    )


class DeliveryAttempt(Base):
    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int]
    worker: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime]
    ok: Mapped[bool]
    status_code: Mapped[int | None] = mapped_column(default=None)
    detail: Mapped[str] = mapped_column(Text(), default="")
