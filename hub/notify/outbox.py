"""The outbox: enqueue notifications inside the caller's transaction; deliver them later.

:func:`enqueue` is all routing and escalation ever do. :class:`OutboxWorker` claims due
rows of one channel (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer at a
time, so the claiming ``UPDATE`` is itself the lock), leases them, delivers outside any
transaction, and records every attempt. Failures are retried with backoff; after
``max_attempts`` the row is dead-lettered (``status='dead'``) and stays in the log. A
lease that expires (the worker died mid-send) puts the row back in play: delivery is
at-least-once, and webhook receivers deduplicate on the delivery id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.notify.channel import Channel, Delivered, Message, RetryPolicy
from hub.notify.errors import DeliveryFailed
from hub.notify.models import DeliveryAttempt, Notification
from protocols import new_event_id

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outgoing:
    channel: str
    address: str
    role: str
    tier: str = "initial"


def enqueue(
    session: Session,
    alarm_id: str | None,
    recipients: Iterable[Outgoing],
    payload: Mapping[str, Any],
    now: dt.datetime,
    priority: int = 9,
) -> list[str]:
    """Add one pending notification per recipient (in the caller's transaction).
    ``priority``: lower is sent sooner (use the alarm class's priority)."""
    ids = []
    for r in recipients:
        nid = new_event_id(int(now.timestamp() * 1000))
        session.add(
            Notification(
                id=nid,
                alarm_id=alarm_id,
                channel=r.channel,
                address=r.address,
                role=r.role,
                tier=r.tier,
                payload={**payload, "tier": r.tier, "role": r.role},
                created_at=now,
                next_attempt_at=now,
                priority=priority,
            )
        )
        ids.append(nid)
    return ids


#: Called (inside the recording transaction) after a successful delivery.
OnDelivered = Callable[[Session, Notification, dt.datetime], None]


class OutboxWorker:
    """Delivers the notifications of one channel. Run one per channel per hub worker."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        channel: Channel,
        worker_id: str,
        now: Callable[[], dt.datetime],
        retry: RetryPolicy | None = None,
        batch: int = 20,
        lease_s: float = 60.0,
        send_timeout_s: float = 20.0,
        on_delivered: OnDelivered | None = None,
        on_result: Callable[[str, str], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.channel = channel
        self.worker_id = worker_id
        self.now = now
        self.retry = retry or RetryPolicy()
        self.batch = batch
        self.lease = dt.timedelta(seconds=lease_s)
        self.send_timeout_s = send_timeout_s
        self.on_delivered = on_delivered
        self.on_result = on_result  #: (channel, new status) after every attempt, e.g. for metrics
        self.wakeup = asyncio.Event()
        self.delivered = self.failed = self.dead = 0
        self.stopping = False

    # --- database steps (synchronous; run in a thread by the async loop) --------------

    def claim(self) -> list[Message]:
        now = self.now()
        due = and_(
            Notification.channel == self.channel.name,
            or_(
                and_(Notification.status == "pending", Notification.next_attempt_at <= now),
                and_(Notification.status == "sending", Notification.lease_until < now),
            ),
        )
        with self.sessions() as s, s.begin():
            pick = (
                select(Notification.id)
                .where(due)
                .order_by(Notification.priority, Notification.next_attempt_at)
                .limit(self.batch)
            )
            if s.get_bind().dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            # Select first, then update by id, in one transaction: an IN (subquery … LIMIT …
            # SKIP LOCKED) can be re-evaluated by PostgreSQL's planner and claim more than
            # the batch, and out of priority order.
            ids = list(s.scalars(pick))
            if not ids:
                return []
            rows = s.execute(
                update(Notification)
                .where(Notification.id.in_(ids), due)
                .values(
                    status="sending",
                    lease_owner=self.worker_id,
                    lease_until=now + self.lease,
                    attempts=Notification.attempts + 1,
                )
                .returning(
                    Notification.id,
                    Notification.alarm_id,
                    Notification.address,
                    Notification.role,
                    Notification.payload,
                    Notification.attempts,
                )
            ).all()
        return [
            Message(r.id, r.alarm_id or "", self.channel.name, r.address, r.role, r.payload, r.attempts)
            for r in rows
        ]

    def record(self, results: list[tuple[Message, dt.datetime, Delivered | DeliveryFailed]]) -> list[str]:
        """Log the attempts of one batch and settle their rows in one transaction; returns
        each row's new status. Retried on a lost write race; if it still fails, the leases
        run out and the rows are sent again (at least once)."""
        last: Exception | None = None
        for attempt in range(6):
            try:
                with self.sessions() as s, s.begin():
                    return [self._settle(s, *r) for r in results]
            except OperationalError as exc:
                last = exc
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
        assert last is not None
        raise last

    def _settle(
        self, s: Session, msg: Message, started: dt.datetime, result: Delivered | DeliveryFailed
    ) -> str:
        now = self.now()
        ok = isinstance(result, Delivered)
        s.add(
            DeliveryAttempt(
                notification_id=msg.notification_id,
                attempt=msg.attempt,
                worker=self.worker_id,
                started_at=started,
                finished_at=now,
                ok=ok,
                status_code=result.status_code,
                detail=str(result.detail)[:2000],
            )
        )
        n = s.get(Notification, msg.notification_id, with_for_update=True)
        if n is None or n.status != "sending" or n.lease_owner != self.worker_id:
            return n.status if n else "gone"  # the lease was lost; the other worker settles it
        n.lease_owner = n.lease_until = None
        if isinstance(result, Delivered):
            n.status, n.delivered_at, n.last_error = "delivered", now, None
            if self.on_delivered is not None and result.reached:
                self.on_delivered(s, n, now)
        elif not result.retryable or msg.attempt >= self.retry.max_attempts:
            n.status, n.last_error = "dead", result.detail[:2000]
        else:
            n.status, n.last_error = "pending", result.detail[:2000]
            n.next_attempt_at = now + dt.timedelta(seconds=self.retry.delay_after(msg.attempt))
        return n.status

    # --- async loop --------------------------------------------------------------------

    async def send(self, msg: Message) -> tuple[Message, dt.datetime, Delivered | DeliveryFailed]:
        """One attempt, bounded by the channel's timeout; never raises."""
        started = self.now()
        result: Delivered | DeliveryFailed
        try:
            result = await asyncio.wait_for(self.channel.send(msg), self.send_timeout_s)
        except TimeoutError:
            result = DeliveryFailed(f"{self.channel.name} gave no answer in {self.send_timeout_s} s")
        except DeliveryFailed as exc:
            result = exc
        return msg, started, result

    def _count(self, msg: Message, result: Delivered | DeliveryFailed, status: str) -> None:
        if self.on_result is not None:
            self.on_result(self.channel.name, status)
        if status == "delivered":
            self.delivered += 1
        elif status == "dead":
            self.dead += 1
            log.error(
                "notification %s to %s dead-lettered: %s", msg.notification_id, self.channel.name, result
            )
        else:
            self.failed += 1
            log.warning(
                "notification %s via %s not delivered (attempt %d): %s",
                msg.notification_id,
                self.channel.name,
                msg.attempt,
                result,
            )

    async def run_once(self) -> int:
        """Claim one batch, deliver it concurrently, record it; returns how many were claimed."""
        try:
            batch = await asyncio.to_thread(self.claim)
        except OperationalError as exc:  # SQLite writer contention, PostgreSQL restart
            log.warning("outbox %s: claim failed, will retry: %s", self.channel.name, exc)
            return 0
        if not batch:
            return 0
        results = await asyncio.gather(*(self.send(m) for m in batch))
        statuses = await asyncio.to_thread(self.record, list(results))
        for (msg, _, result), status in zip(results, statuses, strict=True):
            self._count(msg, result, status)
        return len(batch)

    async def run(self, idle_s: float = 0.5) -> None:
        """Deliver until :meth:`stop` (or cancelled); :meth:`wake` skips the idle wait."""
        self.stopping = False
        while not self.stopping:
            try:
                if await self.run_once():
                    continue
            except SQLAlchemyError as exc:  # the database is away: leases expire, rows come back
                log.error("outbox %s: %s; retrying", self.channel.name, exc)
            self.wakeup.clear()
            try:
                await asyncio.wait_for(self.wakeup.wait(), idle_s)
            except TimeoutError:
                pass

    def wake(self) -> None:
        self.wakeup.set()

    def stop(self) -> None:
        """Finish the batch in hand, then return from :meth:`run`."""
        self.stopping = True
        self.wakeup.set()


def dead_letter_unconfigured(session: Session, configured: Iterable[str], now: dt.datetime) -> dict[str, int]:
    """Dead-letter pending notifications of channels no worker here can deliver (e.g. SMS
    without a provider), so they show as failed instead of waiting forever."""
    names = sorted(set(configured))
    rows = (
        session.execute(
            update(Notification)
            .where(Notification.status == "pending", Notification.channel.not_in(names))
            .values(status="dead", last_error="channel not configured on this hub", lease_until=None)
            .returning(Notification.channel)
        )
        .scalars()
        .all()
    )
    out: dict[str, int] = {}
    for ch in rows:
        out[ch] = out.get(ch, 0) + 1
    return out
