"""The alarm engine's ear: what ingest and supervision stored becomes alarm decisions.

Life-safety events are decided inside the ingest's own transaction
(:meth:`AlarmSink.decide_in_transaction`, at most :data:`INLINE_MAX` per batch); every other
event and condition goes through a priority inbox (smoke/gas/panic overtake a backlog of
trouble) to one task that decides them in short batches. A signal left undecided (not even
its fail-safe alarm could be stored) goes back into the inbox after a backoff. An event
told to a sink that is not running (before the service starts, after it stopped) is not
decided here: it is stored, and the re-check (``hub/alarms/reconciler.py``, at every start
and every ``reconcile_every_s`` on every worker) decides it. The inbox lives in memory;
the stored event is what guarantees the decision.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session

from hub.alarms.analogue import AnalogueWatch
from hub.alarms.classes import is_life_safety, priority_of
from hub.alarms.engine.decide import AlarmEngine, Processed, condition_signal, event_signal
from hub.alarms.errors import AlarmError, Undecided
from hub.alarms.metrics import AlarmMetrics
from hub.alarms.rules import Signal
from hub.db.errors import RetriesExhausted
from hub.db.gate import BACKGROUND, LIFE_SAFETY, writing_as
from hub.db.state import ConditionState
from hub.db.tx import RETRYABLE
from hub.notify.enqueue import Handover
from hub.sinks import ConditionChange, Decided, NewEvent
from protocols import Telemetry

log = logging.getLogger(__name__)

#: Life-safety events decided inside the ingest's transaction, per batch at most (the rest
#: queue for the alarm task): a burst must not hold the write lock for long.
INLINE_MAX = 16
#: An undecided signal (not even the fail-safe alarm could be stored) is retried after
#: this many seconds, doubling up to the maximum, until it is decided.
UNDECIDED_RETRY_S = 0.5
UNDECIDED_RETRY_MAX_S = 30.0

Item = tuple[int, int, Signal, str]  #: (priority, arrival, signal, key)


class AlarmSink:
    """The :class:`~hub.sinks.EventSink` (and transactional and telemetry sink) of the alarm
    engine for one hub worker."""

    def __init__(self, engine: AlarmEngine, metrics: AlarmMetrics, watch: AnalogueWatch, batch_max: int) -> None:
        self.engine = engine
        self.metrics = metrics
        self.watch = watch
        self.batch_max = batch_max
        self.running = False  #: False: events are left to the re-check (see the module doc)
        self.stopping = False
        self.busy = False  #: deciding a batch now (stop waits for it)
        self.inbox: asyncio.PriorityQueue[Item] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        #: signal key → failed attempts, while a signal is undecided (retried with backoff)
        self.undecided: dict[str, int] = {}

    # --- deciding ---------------------------------------------------------------------

    def handle(self, signal: Signal, key: str) -> None:
        """Decide one signal; raises :class:`Undecided` (counted, logged) when not even the
        fail-safe alarm could be stored."""
        try:
            result = self.engine.handle(signal, key)
        except Undecided as exc:
            attempts = self.undecided[key] = self.undecided.get(key, 0) + 1
            self.metrics.undecided.inc()
            log.error("signal %s still undecided after %d attempts: %s", key, attempts, exc)
            raise
        self.undecided.pop(key, None)
        self.count(result)

    def count(self, result: Processed) -> None:
        self.metrics.decisions.labels(result.decision).inc()
        if result.failed_step is not None:
            self.metrics.failsafe.labels(result.failed_step, result.decision).inc()

    def handle_batch(self, batch: Sequence[tuple[Signal, str]]) -> list[str]:
        """Decide ``batch`` in one transaction; a signal that failed there is decided alone.
        Returns the keys left undecided (for the re-check)."""
        return [item[3] for item in self._decide([(0, 0, signal, key) for signal, key in batch])]

    def _decide(self, items: Sequence[Item]) -> list[Item]:
        """Decide queued items: one alone, several in one transaction (one that fails there
        is decided alone). Returns those left undecided."""
        left = []
        results: Sequence[Processed | None] = (
            [None] if len(items) == 1 else self.engine.handle_batch([(i[2], i[3]) for i in items])
        )
        for item, result in zip(items, results, strict=True):
            if result is not None:
                self.count(result)
                continue
            try:
                self.handle(item[2], item[3])
            except Undecided:  # logged and counted by handle
                left.append(item)
        return left

    # --- EventSink, TransactionalSink, TelemetrySink ------------------------------------

    async def events_stored(self, events: Sequence[NewEvent]) -> None:
        """Queue the events (life safety first) and return: ingest never waits for routing."""
        for e in events:
            if not e.decided:  # else decided in the ingest's own transaction
                self._put(*event_signal(e.event, e.received_at))

    def decide_in_transaction(self, session: Session, events: Sequence[NewEvent]) -> Decided | None:
        """Life-safety events (smoke, gas, panic, …) are decided, routed and their first
        notifications claimed in the transaction that stores them: from receipt to a webhook
        on its way, one write transaction, through :meth:`AlarmEngine.decide` (a failing
        decision gets its fail-safe alarm here). One that loses a race with another worker,
        or whose fail-safe fails too, is left to the alarm task, which retries it."""
        if not self.running or self.stopping:
            return None
        urgent = [e for e in events if is_life_safety(e.event.kind.value)][:INLINE_MAX]
        done: list[tuple[str, Processed, Handover | None]] = []  #: (event id, …)
        for e in urgent:
            signal, key = event_signal(e.event, e.received_at)
            handover = self.engine.new_handover()
            try:
                result = self.engine.decide(session, signal, key, handover)
            except RETRYABLE as exc:  # another worker won a race: the alarm task re-reads
                log.info("alarm signal %s left to the alarm queue (%s)", key, type(exc).__name__)
                continue
            except Exception as exc:  # noqa: BLE001 - the alarm task retries, loudly
                log.error("alarm signal %s: fail-safe failed in the ingest's transaction (%s); "
                          "left to the alarm queue", key, exc)
                continue
            done.append((e.event.id, result, handover))
        if not done:
            return None

        def after_commit() -> None:
            for _, result, handover in done:
                self.count(result)
                self.engine.after_commit(result, handover)

        return Decided(frozenset(i for i, _, _ in done), after_commit)

    async def conditions_changed(self, changes: Sequence[ConditionChange]) -> None:
        """Queued like trouble events (the alarm task decides them ``batch_max`` per
        transaction) and return: a supervision round never waits for its decisions. It used
        to decide them here, so in a power cut the next round (the next Last-Wills past
        their grace) waited for the previous round's thousands of decisions: conditions
        opened up to ~9 s after their grace (``safehome bench storm``). Not running (tests,
        tools): decided here, in batches, in a thread."""
        signals = [
            condition_signal(c.condition_id, c.gateway_id, c.sensor_id, c.kind, c.state == ConditionState.RESTORED, c.at)
            for c in changes
        ]
        if self.running:
            for signal, key in signals:
                self._put(signal, key)
            return
        size = self.batch_max
        for start in range(0, len(signals), size):
            batch = signals[start : start + size]
            try:
                await asyncio.to_thread(self.handle_batch, batch)
            except (AlarmError, RetriesExhausted):
                log.exception("%d conditions not turned into alarms yet; the re-check will retry", len(batch))

    async def telemetry_stored(self, batches: Sequence[tuple[Telemetry, dt.datetime]]) -> None:
        """Analogue readings with a threshold: the analogue watch (``hub/alarms/analogue.py``)."""
        await self.watch.telemetry_stored(batches)

    # --- the inbox ----------------------------------------------------------------------

    def _put(self, signal: Signal, key: str) -> None:
        if not self.running:  # nobody drains the inbox: the re-check decides the stored event
            log.info("alarm signal %s left to the re-check (the alarm service is not running)", key)
            return
        self.inbox.put_nowait((priority_of(signal.kind), next(self._seq), signal, key))

    async def run(self) -> None:
        """Most urgent first: a life-safety signal on its own, the rest in batches of
        ``batch_max`` per transaction. One left undecided (not even its fail-safe alarm could
        be stored) goes back into the queue after a backoff."""
        while not self.stopping:
            item = await self.inbox.get()
            batch = [item]
            urgent = is_life_safety(item[2].kind)
            if not urgent:  # none is queued: they come out first
                while len(batch) < self.batch_max and not self.inbox.empty():
                    batch.append(self.inbox.get_nowait())
            self.busy = True
            try:
                # a life-safety decision takes SQLite's write lock before storm batches
                with writing_as(LIFE_SAFETY if urgent else BACKGROUND):
                    left_over = await asyncio.to_thread(self._decide, batch)
                for left in left_over:
                    self._retry_later(left)
            except Exception:  # this task must outlive any bug; the signals are retried
                log.exception("%d signals not turned into alarm decisions yet; retrying", len(batch))
                for left in batch:
                    self._retry_later(left)
            finally:
                self.busy = False

    def _retry_later(self, item: Item) -> None:
        attempts = self.undecided.get(item[3], 1)
        delay = min(UNDECIDED_RETRY_MAX_S, UNDECIDED_RETRY_S * 2 ** (attempts - 1))
        loop = asyncio.get_running_loop()
        loop.call_later(delay, self.inbox.put_nowait, item)
