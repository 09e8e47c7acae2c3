"""The Dispatcher: this hub worker's notification channels, and the one object the alarm
engine hands its new notifications to.

The engine asks it for a :class:`~hub.notify.enqueue.Handover` before each transaction
(:meth:`Dispatcher.handover`: the rows of the channels run here are claimed in that very
transaction) and tells it after the commit (:meth:`Dispatcher.committed`): the claimed
messages go straight to their channel's :class:`~hub.notify.outbox.OutboxWorker`, and the
workers are woken for the rest (rows nobody claimed: escalations, operators' steps).
Both are thread-safe (the engine runs in worker threads); the outbox workers run on the
event loop. Channels this worker does not run (no SMS/voice provider) are recorded as
``unconfigured``: a startup warning, a health flag and a counter, no per-alarm noise.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from prometheus_client import Counter, Gauge
from sqlalchemy.orm import Session, sessionmaker

from hub.notify.channel import Channel, Message, RetryPolicy
from hub.notify.enqueue import CHANNELS, DEFAULT_LEASE_S, Handover, mark_unconfigured
from hub.notify.leases import OnDelivered
from hub.notify.outbox import OutboxWorker

log = logging.getLogger(__name__)

#: A channel whose worker has this many handed-over messages waiting gets no more: new ones
#: wait in the table, where every hub worker can claim them (and no lease runs out unsent).
HANDOVER_BACKLOG = 100


class DeliveryMetrics(Protocol):
    """The counters the dispatcher keeps (``hub.alarms.metrics.AlarmMetrics`` has them)."""

    deliveries: Counter  #: (channel, status) after every attempt
    unconfigured: Counter  #: (channel) rows recorded as never sent
    configured: Gauge  #: (channel) 1 when run by this worker


class Dispatch(Protocol):
    """What the alarm engine needs of a dispatcher (tests may pass their own)."""

    def handover(self) -> Handover | None: ...
    def committed(self, handover: Handover | None, enqueued: int) -> None: ...
    def wake(self) -> None: ...


class Dispatcher:
    """One :class:`OutboxWorker` per channel run by this hub worker (none when ``deliver``
    is False: another process delivers), fed by the engine's handovers."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        channels: Sequence[Channel],
        worker_id: str,
        now: Callable[[], dt.datetime],
        metrics: DeliveryMetrics,
        retry: RetryPolicy | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        send_timeout_s: float = 20.0,
        on_delivered: OnDelivered | None = None,
        deliver: bool = True,
    ) -> None:
        """``on_delivered``: runs in the transaction that records a delivery (the alarm
        engine marks the alarm notified there)."""
        self.worker_id = worker_id
        self.metrics = metrics
        self.workers = [
            OutboxWorker(
                sessions,
                ch,
                worker_id,
                now,
                retry,
                lease_s=lease_s,
                send_timeout_s=send_timeout_s,
                on_delivered=on_delivered,
                on_result=lambda c, st: metrics.deliveries.labels(c, st).inc(),
            )
            for ch in channels
            if deliver
        ]
        self.lease_s = lease_s
        #: channels no worker of this hub runs: their recipients are recorded as
        #: ``unconfigured`` (a worker that delivers nothing judges no channel: the delivering
        #: workers do)
        self.unconfigured = frozenset(CHANNELS) - {w.channel.name for w in self.workers} if deliver else frozenset()
        for ch in CHANNELS:
            metrics.configured.labels(ch).set(0 if ch in self.unconfigured else 1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- the engine's side (thread-safe) ------------------------------------------------

    def handover(self) -> Handover | None:
        """While running, a new alarm's notifications are claimed for this worker's outboxes
        in the alarm's own transaction (no claim transaction, no poll). A new one per
        transaction attempt."""
        if self._loop is None or not self._tasks:
            return None
        channels = frozenset(w.channel.name for w in self.workers if w.handed < HANDOVER_BACKLOG)
        # a backlogged channel still takes life-safety rows: they are sent at once, beside it
        express = frozenset(w.channel.name for w in self.workers)
        if not express and not self.unconfigured:
            return None
        return Handover(self.worker_id, channels, self.lease_s, unconfigured=self.unconfigured, express=express)

    def committed(self, handover: Handover | None, enqueued: int) -> None:
        """After the commit of a transaction that enqueued ``enqueued`` notifications: count
        the rows stored as unconfigured, give the claimed messages to their channels' workers
        (should this worker be gone, their leases run out and any worker sends them) and
        wake the workers for the rest."""
        if handover is not None:
            for ch in handover.skipped:
                self.metrics.unconfigured.labels(ch).inc()
        claimed = handover.messages if handover is not None else []
        loop = self._loop
        if claimed and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._hand, claimed)
        if enqueued > len(claimed):
            self.wake()

    def wake(self) -> None:
        """New notifications were committed: the workers look at the table now."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for w in self.workers:
            loop.call_soon_threadsafe(w.wake)

    def _hand(self, messages: list[Message]) -> None:
        for w in self.workers:
            w.hand(messages)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self, idle_s: float) -> None:
        """Put back what this worker id held before a restart, then run one loop per channel."""
        for ch in sorted(self.unconfigured):
            log.warning(
                "notification channel %s is not configured on this hub: its recipients are recorded as "
                "'unconfigured' and never reached (configure [hub.alarms.%s] to send)", ch, ch
            )
        self._loop = asyncio.get_running_loop()
        # Before any handover or claim: a restart under the same worker id sends what its
        # killed predecessor held at once, not after the lease (nothing is in hand yet).
        for w in self.workers:
            await asyncio.to_thread(w.recover)
        self._tasks = [asyncio.create_task(w.run(idle_s), name=f"outbox-{w.channel.name}") for w in self.workers]

    def stop(self) -> list[asyncio.Task[None]]:
        """Ask every worker to finish what it holds; returns their tasks to wait for. No new
        handover from now on."""
        tasks, self._tasks = self._tasks, []
        for w in self.workers:
            w.stop()
        return tasks

    # --- the re-check's side ------------------------------------------------------------

    def settle_unconfigured(self, sessions: sessionmaker[Session]) -> None:
        """Rows enqueued without a handover (escalations, operators' steps, other workers) for
        a channel no worker of this hub runs: recorded ``unconfigured``, counted (warned once
        at start, not logged per alarm)."""
        if not self.workers:  # this worker delivers nothing: a delivering worker judges channels
            return
        with sessions() as s, s.begin():
            marked = mark_unconfigured(s, [w.channel.name for w in self.workers])
        for ch, n in marked.items():
            self.metrics.unconfigured.labels(ch).inc(n)

    def health(self) -> tuple[bool, str]:
        """The health flag of unconfigured channels: reported, not failing (the console and
        webhooks still reach the centers)."""
        if not self.unconfigured:
            return True, "all channels configured"
        return True, f"not configured, recipients not reached: {', '.join(sorted(self.unconfigured))}"
