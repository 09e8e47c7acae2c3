"""The outbox table as one worker of one channel sees it: the synchronous database steps
(run in a thread by the worker's loop, ``hub/notify/outbox.py``).

:meth:`LeasedRows.claim` takes due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has
one writer at a time, so the claiming ``UPDATE`` is itself the lock) under a lease;
:meth:`LeasedRows.record` logs a batch of attempts and settles each row: delivered, pending
again after the retry policy's backoff, or dead after ``max_attempts`` (it stays in the
log). The lease is renewed while the worker holds a row (:meth:`LeasedRows.renew`), given
back when it will not send it (:meth:`LeasedRows.release`), and taken back from a previous
life of the same worker id (:meth:`LeasedRows.recover`); a lease that runs out puts the row
back in play for any worker: delivery is at least once.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from hub.db.engine import read_only
from hub.notify.channel import Channel, Delivered, Message, RetryPolicy
from hub.notify.enqueue import DEFAULT_LEASE_S
from hub.notify.errors import DeliveryFailed
from hub.notify.models import DeliveryAttempt, Notification
from hub.notify.names import NotificationStatus as St

log = logging.getLogger(__name__)

#: Ids per renewing ``UPDATE … WHERE id IN (…)`` (well below SQLite's bound parameters).
RENEW_CHUNK = 500

#: Called (inside the recording transaction) after a successful delivery.
OnDelivered = Callable[[Session, Notification, dt.datetime], None]
#: One attempt: the message, when it started, what came of it.
Attempt = tuple[Message, dt.datetime, Delivered | DeliveryFailed]


class LeasedRows:
    """Claim, settle and lease the rows of one channel for one hub worker."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        channel: Channel,
        worker_id: str,
        now: Callable[[], dt.datetime],
        retry: RetryPolicy | None = None,
        batch: int = 20,
        lease_s: float = DEFAULT_LEASE_S,
        on_delivered: OnDelivered | None = None,
    ) -> None:
        self.sessions = sessions
        self.channel = channel
        self.worker_id = worker_id
        self.now = now
        self.retry = retry or RetryPolicy()
        self.batch = batch
        self.lease = dt.timedelta(seconds=lease_s)
        self.on_delivered = on_delivered

    def claim(self) -> list[Message]:
        now = self.now()
        due = and_(
            Notification.channel == self.channel.name,
            or_(
                and_(Notification.status == St.PENDING, Notification.next_attempt_at <= now),
                and_(Notification.status == St.SENDING, Notification.lease_until < now),
            ),
        )
        pick = (
            select(Notification.id)
            .where(due)
            .order_by(Notification.priority, Notification.next_attempt_at)
            .limit(self.batch)
        )
        # Look first without the write lock: an idle poll (most of them) then never queues
        # for SQLite's single write lock, nor makes an alarm's transaction wait behind it.
        with self.sessions() as s:
            if read_only(s).scalars(pick.limit(1)).first() is None:
                return []
        with self.sessions() as s, s.begin():
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
                    status=St.SENDING,
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
                    Notification.priority,
                )
            ).all()
        return [
            Message(r.id, r.alarm_id or "", self.channel.name, r.address, r.role, r.payload, r.attempts, r.priority)
            for r in rows
        ]

    def record(self, results: list[Attempt]) -> list[str]:
        """Log the attempts of one batch and settle their rows in one transaction; returns
        each row's new status. Retried on a lost write race; if it still fails, the leases
        run out and the rows are sent again (at least once)."""
        last: Exception | None = None
        for attempt in range(6):
            try:
                with self.sessions() as s, s.begin():
                    return self._settle(s, results)
            except OperationalError as exc:
                last = exc
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
        assert last is not None
        raise last

    def _settle(self, s: Session, results: list[Attempt]) -> list[str]:
        """The whole batch at once: one INSERT of the attempts, one SELECT of the rows, one
        flush of their updates (row by row, a storm's 4,000 webhooks cost 8,000 statements
        under SQLite's single write lock)."""
        now = self.now()
        s.execute(
            insert(DeliveryAttempt),
            [
                {
                    "notification_id": msg.notification_id,
                    "attempt": msg.attempt,
                    "worker": self.worker_id,
                    "started_at": started,
                    "finished_at": now,
                    "ok": isinstance(result, Delivered),
                    "status_code": result.status_code,
                    "detail": str(result.detail)[:2000],
                }
                for msg, started, result in results
            ],
        )
        pick = select(Notification).where(Notification.id.in_([m.notification_id for m, _, _ in results]))
        if s.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update()
        rows = {n.id: n for n in s.scalars(pick)}
        return [self._settle_row(s, rows.get(msg.notification_id), msg, now, result) for msg, _, result in results]

    def _settle_row(
        self, s: Session, n: Notification | None, msg: Message, now: dt.datetime, result: Delivered | DeliveryFailed
    ) -> str:
        if n is None or n.status != St.SENDING or n.lease_owner != self.worker_id:
            return n.status if n else "gone"  # the lease was lost; the other worker settles it
        n.lease_owner = n.lease_until = None
        if isinstance(result, Delivered):
            n.status, n.delivered_at, n.last_error = St.DELIVERED, now, None
            if self.on_delivered is not None and result.reached:
                self.on_delivered(s, n, now)
        elif not result.retryable or msg.attempt >= self.retry.max_attempts:
            n.status, n.last_error = St.DEAD, result.detail[:2000]
        else:
            n.status, n.last_error = St.PENDING, result.detail[:2000]
            n.next_attempt_at = now + dt.timedelta(seconds=self.retry.delay_after(msg.attempt))
        return n.status

    def recover(self) -> int:
        """Put back the rows of this channel still leased to this worker id: a worker
        restarted under the same id (killed mid-send) sends them again at once instead of
        waiting out its previous life's lease (at least once: they may have been sent).
        Call before the worker hands or claims anything. Returns how many."""
        now = self.now()
        with self.sessions() as s, s.begin():
            rows = s.execute(
                update(Notification)
                .where(
                    Notification.channel == self.channel.name,
                    Notification.status == St.SENDING,
                    Notification.lease_owner == self.worker_id,
                )
                .values(status=St.PENDING, lease_owner=None, lease_until=None, next_attempt_at=now)
                .returning(Notification.id)
            ).all()
        if rows:
            log.warning("outbox %s: %d notifications leased to %s before a restart put back",
                        self.channel.name, len(rows), self.worker_id)  # fmt: skip
        return len(rows)

    def renew(self, ids: list[str]) -> int:
        """Extend the leases of ``ids`` this worker still holds by a full lease from now.
        Returns how many were renewed (a row whose lease was lost is not taken back)."""
        if not ids:
            return 0
        until = self.now() + self.lease
        n = 0
        with self.sessions() as s, s.begin():
            for i in range(0, len(ids), RENEW_CHUNK):
                n += len(
                    s.execute(
                        update(Notification)
                        .where(
                            Notification.id.in_(ids[i : i + RENEW_CHUNK]),
                            Notification.status == St.SENDING,
                            Notification.lease_owner == self.worker_id,
                        )
                        .values(lease_until=until)
                        .returning(Notification.id)
                    ).all()
                )
        return n

    def release(self, messages: list[Message]) -> int:
        """Give back leased rows this worker will not send (stopping with handed messages in
        hand): pending again, the attempt not counted. Returns how many were released."""
        if not messages:
            return 0
        with self.sessions() as s, s.begin():
            rows = s.execute(
                update(Notification)
                .where(
                    Notification.id.in_([m.notification_id for m in messages]),
                    Notification.status == St.SENDING,
                    Notification.lease_owner == self.worker_id,
                )
                .values(
                    status=St.PENDING,
                    lease_owner=None,
                    lease_until=None,
                    attempts=Notification.attempts - 1,
                )
                .returning(Notification.id)
            ).all()
        return len(rows)
