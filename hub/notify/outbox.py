"""The outbox: enqueue notifications inside the caller's transaction; deliver them later.

:func:`enqueue` is all routing and escalation ever do. :class:`OutboxWorker` claims due
rows of one channel (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer at a
time, so the claiming ``UPDATE`` is itself the lock), leases them, delivers outside any
transaction, and records every attempt. Failures are retried with backoff; after
``max_attempts`` the row is dead-lettered (``status='dead'``) and stays in the log. A
lease that expires (the worker died mid-send) puts the row back in play: delivery is
at-least-once, and webhook receivers deduplicate on the delivery id.

The lease (``[hub.alarms] outbox_lease_s``, 20 s: just above the 15 s send timeout) is kept
short and renewed every third of it while the worker still holds the row (handed, being
sent, or sent and not yet recorded), so a live worker never loses a row it is working on
and a killed worker's rows are taken over by another worker within one lease. A worker
restarted under the same worker id (:meth:`OutboxWorker.recover`, before it hands or claims
anything) first puts back every row still leased to its previous life: those are sent again
at once, not after the lease.

A :class:`Handover` lets the enqueuing transaction claim the rows itself for this hub
worker (the same lease as a claim): after commit the caller hands the messages straight to
the channels' workers (:meth:`OutboxWorker.hand`), so an alarm's first notification costs
no second transaction (on SQLite: no second wait for the one write lock) and no poll.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.db.engine import read_only
from hub.notify.channel import Channel, Delivered, Message, RetryPolicy
from hub.notify.errors import DeliveryFailed
from hub.notify.models import DeliveryAttempt, Notification
from hub.notify.names import ChannelName
from hub.notify.names import NotificationStatus as St
from protocols import new_event_id

log = logging.getLogger(__name__)

#: Sent deliveries recorded per transaction at most.
SETTLE_MAX = 200
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
#: Ids per renewing ``UPDATE … WHERE id IN (…)`` (well below SQLite's bound parameters).
RENEW_CHUNK = 500


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
        lease_s: float = DEFAULT_LEASE_S,
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
        #: claimed by the enqueuing transaction (:class:`Handover`), sent before any claim
        self._handed: deque[Message] = deque()
        #: sent, not recorded yet (settled in the background while the next ones go out)
        self._unsettled: list[tuple[Message, dt.datetime, Delivered | DeliveryFailed]] = []
        self._settling: asyncio.Task[None] | None = None
        #: ids leased to this worker and still in its hands (handed, in flight, unsettled):
        #: their leases are renewed until they are recorded or released
        self._held: set[str] = set()
        #: life-safety messages being sent at once (:meth:`hand`), awaited on stop
        self._express: set[asyncio.Task[None]] = set()

    # --- database steps (synchronous; run in a thread by the async loop) --------------

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

    def record(self, results: list[tuple[Message, dt.datetime, Delivered | DeliveryFailed]]) -> list[str]:
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

    def _settle(
        self, s: Session, results: list[tuple[Message, dt.datetime, Delivered | DeliveryFailed]]
    ) -> list[str]:
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
        if status == St.DELIVERED:
            self.delivered += 1
        elif status == St.DEAD:
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

    async def _renew_forever(self) -> None:
        """Every third of the lease, renew the leases of the rows in hand (a send that takes
        the whole send timeout, a settle waiting for the write lock, a long handed queue)."""
        every = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            if not self._held:
                continue
            try:
                await asyncio.to_thread(self.renew, list(self._held))
            except SQLAlchemyError as exc:  # the leases may run out: another worker resends
                log.warning("outbox %s: leases not renewed: %s", self.channel.name, exc)

    def release(self, messages: list[Message]) -> int:
        """Give back leased rows this worker will not send (stopping with handed messages in
        hand): pending again, the attempt not counted. Returns how many were released."""
        if not messages:
            return 0
        self._held.difference_update(m.notification_id for m in messages)
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

    @property
    def handed(self) -> int:
        """Handed-over messages waiting to be sent."""
        return len(self._handed)

    def hand(self, messages: Iterable[Message]) -> None:
        """Messages of this channel claimed for this worker by the enqueuing transaction
        (:class:`Handover`): sent next, without a claim. Call on the worker's event loop."""
        got = [m for m in messages if m.channel == self.channel.name]
        if not got:
            return
        self._held.update(m.notification_id for m in got)
        urgent = [m for m in got if m.priority <= EXPRESS_PRIORITY]
        if urgent and not self.stopping:
            # life safety: sent now, not after the batch in flight, a claim waiting for the
            # write lock or the storm's messages handed before it
            task = asyncio.create_task(self._send_now(urgent), name=f"outbox-{self.channel.name}-express")
            self._express.add(task)
            task.add_done_callback(self._express.discard)
            got = [m for m in got if m.priority > EXPRESS_PRIORITY]
        if got:
            self._handed.extend(got)
            self.wakeup.set()

    async def _send_now(self, messages: list[Message]) -> None:
        """Send ``messages`` at once and record them with the rest (in the background)."""
        results = await asyncio.gather(*(self.send(m) for m in messages))
        self._unsettled.extend(results)
        self._ensure_settling()

    def _ensure_settling(self) -> None:
        if self._settling is None or self._settling.done():
            self._settling = asyncio.create_task(self._settle_unsettled(), name=f"outbox-{self.channel.name}-settle")

    def _take_handed(self) -> list[Message]:
        out: list[Message] = []
        while self._handed and len(out) < self.batch:
            out.append(self._handed.popleft())
        return out

    async def run_once(self, settle_later: bool = False) -> int:
        """Deliver what was handed over, else claim one batch; deliver it concurrently,
        record it (``settle_later``: in the background); returns how many messages were in
        the batch."""
        batch = self._take_handed()
        if not batch:
            try:
                batch = await asyncio.to_thread(self.claim)
            except OperationalError as exc:  # SQLite writer contention, PostgreSQL restart
                log.warning("outbox %s: claim failed, will retry: %s", self.channel.name, exc)
                return 0
        if not batch:
            return 0
        self._held.update(m.notification_id for m in batch)
        results = await asyncio.gather(*(self.send(m) for m in batch))
        if settle_later:
            self._unsettled.extend(results)
            self._ensure_settling()
            return len(batch)
        try:
            statuses = await asyncio.to_thread(self.record, list(results))
        finally:
            self._let_go(results)
        for (msg, _, result), status in zip(results, statuses, strict=True):
            self._count(msg, result, status)
        return len(batch)

    async def _settle_unsettled(self) -> None:
        """Record what was sent, up to SETTLE_MAX rows per transaction, while the next
        messages go out: in a storm the record waited seconds for SQLite's write lock, and a
        smoke alarm handed over meanwhile waited for it (publish → webhook p99 of seconds).
        A record that fails leaves the rows leased: they are sent again when the lease runs
        out (at least once, as always)."""
        while self._unsettled:
            batch, self._unsettled = self._unsettled[:SETTLE_MAX], self._unsettled[SETTLE_MAX:]
            try:
                statuses = await asyncio.to_thread(self.record, batch)
            except SQLAlchemyError as exc:
                self._let_go(batch)
                log.error("outbox %s: %d deliveries not recorded (resent after their lease): %s",
                          self.channel.name, len(batch), exc)  # fmt: skip
                continue
            self._let_go(batch)
            for (msg, _, result), status in zip(batch, statuses, strict=True):
                self._count(msg, result, status)

    def _let_go(self, results: Iterable[tuple[Message, dt.datetime, Delivered | DeliveryFailed]]) -> None:
        """Recorded (or not recordable): stop renewing; an unrecorded row's lease runs out."""
        self._held.difference_update(msg.notification_id for msg, _, _ in results)

    async def run(self, idle_s: float = 0.5) -> None:
        """Deliver until :meth:`stop` (or cancelled); :meth:`wake` skips the idle wait."""
        self.stopping = False
        renewing = asyncio.create_task(self._renew_forever(), name=f"outbox-{self.channel.name}-renew")
        try:
            await self._deliver_until_stopped(idle_s)
        finally:
            renewing.cancel()

    async def _deliver_until_stopped(self, idle_s: float) -> None:
        while not self.stopping:
            try:
                if await self.run_once(settle_later=True):
                    continue
            except SQLAlchemyError as exc:  # the database is away: leases expire, rows come back
                log.error("outbox %s: %s; retrying", self.channel.name, exc)
            if self._handed:
                continue
            self.wakeup.clear()
            try:
                async with asyncio.timeout(idle_s):
                    await self.wakeup.wait()
            except TimeoutError:
                pass
        if self._express:  # life-safety messages being sent: let them finish and be recorded
            await asyncio.gather(*self._express, return_exceptions=True)
        if self._unsettled:
            self._ensure_settling()
        if self._settling is not None:
            await self._settling
        await self._release_handed()

    async def _release_handed(self) -> None:
        left = list(self._handed)
        self._handed.clear()
        if not left:
            return
        try:
            n = await asyncio.to_thread(self.release, left)
            log.info("outbox %s: stopping, %d handed notifications released", self.channel.name, n)
        except SQLAlchemyError as exc:  # the leases run out and another worker sends them
            log.warning("outbox %s: %d handed notifications not released: %s", self.channel.name, len(left), exc)

    def wake(self) -> None:
        self.wakeup.set()

    def stop(self) -> None:
        """Finish the batch in hand, then return from :meth:`run`."""
        self.stopping = True
        self.wakeup.set()


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
