"""The outbox worker: delivers the notifications of one channel, outside any transaction.

Rows are enqueued in the alarm's own transaction (``hub/notify/enqueue.py``) and claimed,
settled and leased by the database steps of ``hub/notify/leases.py``. :class:`OutboxWorker`
sends what the enqueuing transaction handed it (:meth:`OutboxWorker.hand`) before it claims
anything, sends a life-safety message at once beside whatever it is doing, records the
attempts in the background while the next ones go out, and renews, every third of the
lease (``[hub.alarms] outbox_lease_s``, 20 s: just above the 15 s send timeout), the lease
of every row in its hands (handed, being sent, sent and not yet recorded): a live worker
never loses a row it is working on, a killed worker's rows are taken over within one
lease (at least once: webhook receivers deduplicate on the delivery id), and a worker
restarted under the same id first takes back its previous life's rows (:meth:`recover`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import deque
from collections.abc import Callable, Iterable

from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.notify.channel import Channel, Delivered, Message, RetryPolicy
from hub.notify.enqueue import DEFAULT_LEASE_S, EXPRESS_PRIORITY
from hub.notify.errors import DeliveryFailed
from hub.notify.leases import Attempt, LeasedRows, OnDelivered
from hub.notify.names import NotificationStatus as St

log = logging.getLogger(__name__)

#: Sent deliveries recorded per transaction at most.
SETTLE_MAX = 200


class OutboxWorker(LeasedRows):
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
        super().__init__(sessions, channel, worker_id, now, retry, batch, lease_s, on_delivered)
        self.send_timeout_s = send_timeout_s
        self.on_result = on_result  #: (channel, new status) after every attempt, e.g. for metrics
        self.wakeup = asyncio.Event()
        self.delivered = self.failed = self.dead = 0
        self.stopping = False
        #: claimed by the enqueuing transaction (:class:`Handover`), sent before any claim
        self._handed: deque[Message] = deque()
        #: sent, not recorded yet (settled in the background while the next ones go out)
        self._unsettled: list[Attempt] = []
        self._settling: asyncio.Task[None] | None = None
        #: ids leased to this worker and still in its hands (handed, in flight, unsettled):
        #: their leases are renewed until they are recorded or released
        self._held: set[str] = set()
        #: life-safety messages being sent at once (:meth:`hand`), awaited on stop
        self._express: set[asyncio.Task[None]] = set()

    async def send(self, msg: Message) -> Attempt:
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
        """Give back leased rows this worker will not send (see :meth:`LeasedRows.release`);
        their leases are no longer renewed."""
        self._held.difference_update(m.notification_id for m in messages)
        return super().release(messages)

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

    def _let_go(self, results: Iterable[Attempt]) -> None:
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
