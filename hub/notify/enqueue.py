"""Enqueue notifications inside the caller's transaction: :func:`enqueue` is all routing and
escalation ever do. A row is ``pending`` until an :class:`~hub.notify.outbox.OutboxWorker`
of its channel claims it (``hub/notify/leases.py``) and sends it (``hub/notify/outbox.py``).

A :class:`Handover` lets the enqueuing transaction claim the rows itself for this hub
worker (the same lease as a claim): after commit the caller hands the messages straight to
the channels' workers (:meth:`OutboxWorker.hand`), so an alarm's first notification costs
no second transaction (on SQLite: no second wait for the one write lock) and no poll.
Rows of a channel this hub does not run are stored ``unconfigured`` at once
(:func:`mark_unconfigured` settles those enqueued without a handover).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from hub.notify.channel import Message
from hub.notify.models import Notification
from hub.notify.names import ChannelName
from hub.notify.names import NotificationStatus as St
from protocols import new_event_id

#: Every channel the hub knows (:class:`ChannelName`), in a stable order.
CHANNELS = tuple(ChannelName)
#: Terminal status of a notification for a channel this hub does not run.
UNCONFIGURED = St.UNCONFIGURED
#: How long a claim holds without renewal (``[hub.alarms] outbox_lease_s``): the longest a
#: killed worker's notifications wait before another worker sends them.
DEFAULT_LEASE_S = 20.0
#: Handed-over messages of this priority or more urgent (life safety: the alarm class's
#: priority, hub/alarms/classes.py) are sent at once, beside whatever the worker is doing
#: (a storm's batch in flight, a claim waiting for SQLite's write lock, a handed backlog),
#: and are claimed in their own transaction even when the channel's handed backlog is full
#: (:attr:`Handover.express`). Measured before (``safehome bench storm``): a smoke alarm's
#: webhook waited p99 3.3 s between "queued" and "attempt started" behind storm work.
EXPRESS_PRIORITY = 1


@dataclass(frozen=True, slots=True)
class Outgoing:
    channel: str
    address: str
    role: str
    tier: str = "initial"


@dataclass(slots=True)
class Handover:
    """Claim, in the enqueuing transaction, the notifications of ``channels`` for worker
    ``worker_id`` (status ``sending``, leased for ``lease_s``, attempt 1). After commit, hand
    :attr:`messages` to the channels' :class:`OutboxWorker`; if the worker dies first, the
    lease runs out and any worker claims them (at least once, as with a claim). Use a new
    one per transaction attempt: a rolled-back attempt's messages do not exist."""

    worker_id: str
    channels: frozenset[str]
    lease_s: float = DEFAULT_LEASE_S
    messages: list[Message] = field(default_factory=list)
    #: channels this hub does not run (no SMS provider…): their rows are stored at once as
    #: ``unconfigured`` (who would have been told, never sent), not left to wait
    unconfigured: frozenset[str] = frozenset()
    #: the channel of every row stored as ``unconfigured`` by this transaction (for metrics)
    skipped: list[str] = field(default_factory=list)
    #: channels whose rows of priority :data:`EXPRESS_PRIORITY` or more urgent are claimed
    #: too when not in :attr:`channels` (a handed backlog never makes a life-safety
    #: notification wait for a claim: it is sent at once, :meth:`OutboxWorker.hand`)
    express: frozenset[str] = frozenset()


def enqueue(
    session: Session,
    alarm_id: str | None,
    recipients: Iterable[Outgoing],
    payload: Mapping[str, Any],
    now: dt.datetime,
    priority: int = 9,
    handover: Handover | None = None,
    not_before: dt.datetime | None = None,
) -> list[str]:
    """Add one pending notification per recipient (in the caller's transaction).
    ``priority``: lower is sent sooner (use the alarm class's priority). ``handover``: its
    channels' rows are claimed here already (see :class:`Handover`). ``not_before``: held
    until then (not claimed; a storm's below-threshold alarm, hub/alarms/storm.py)."""
    ids = []
    held = not_before is not None and not_before > now
    for r in recipients:
        nid = new_event_id(int(now.timestamp() * 1000))
        body = {**payload, "tier": r.tier, "role": r.role}
        row = Notification(
            id=nid,
            alarm_id=alarm_id,
            channel=r.channel,
            address=r.address,
            role=r.role,
            tier=r.tier,
            payload=body,
            created_at=now,
            next_attempt_at=not_before if held and not_before is not None else now,
            priority=priority,
        )
        if handover is not None and r.channel in handover.unconfigured:
            row.status, row.last_error = UNCONFIGURED, f"no {r.channel} channel configured on this hub"
            handover.skipped.append(r.channel)
        elif handover is not None and not held and (
            r.channel in handover.channels or (priority <= EXPRESS_PRIORITY and r.channel in handover.express)
        ):
            row.status, row.attempts = St.SENDING, 1
            row.lease_owner = handover.worker_id
            row.lease_until = now + dt.timedelta(seconds=handover.lease_s)
            handover.messages.append(Message(nid, alarm_id or "", r.channel, r.address, r.role, body, 1, priority))
        session.add(row)
        ids.append(nid)
    return ids



def mark_unconfigured(session: Session, configured: Iterable[str]) -> dict[str, int]:
    """Settle pending notifications of channels no worker here can deliver (e.g. SMS
    without a provider) as ``unconfigured``, so they neither wait forever nor pass for
    failed deliveries: the channel's absence is a startup warning and a health flag, not
    an error per alarm. Returns how many per channel."""
    names = sorted(set(configured))
    rows = (
        session.execute(
            update(Notification)
            .where(Notification.status == St.PENDING, Notification.channel.not_in(names))
            .values(status=UNCONFIGURED, last_error="channel not configured on this hub", lease_until=None)
            .returning(Notification.channel)
        )
        .scalars()
        .all()
    )
    out: dict[str, int] = {}
    for ch in rows:
        out[ch] = out.get(ch, 0) + 1
    return out
