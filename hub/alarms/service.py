"""The alarm feature as a hub service (wired in ``hub/runner.py``, ``build_hub``).

It listens to ingest and supervision (an :class:`~hub.sinks.EventSink`), re-checks the
stored events and conditions at start and periodically (a crash between ingest's commit
and the sink call loses nothing), fires escalation timers and runs one outbox worker per
channel.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms.classes import is_life_safety, priority_of
from hub.alarms.clock import Clock, SystemClock
from hub.alarms.errors import AlarmError, Undecided
from hub.alarms.escalation import DEFAULT_ESCALATION
from hub.alarms.metrics import AlarmMetrics
from hub.alarms.rules import DEFAULT_THRESHOLDS, Reading, Signal, analogue_candidates
from hub.alarms.settings import AlarmSettings, ProviderSettings
from hub.alarms.store.actions import mark_notified
from hub.alarms.store.engine import AlarmEngine, Processed, condition_signal, event_signal, open_key
from hub.alarms.store.models import Alarm, ProcessedSignal, WebhookSubscription
from hub.alarms.store.storms import StormDesk
from hub.alarms.store.timers import TimerWorker
from hub.alarms.store.tx import RETRYABLE, in_transaction
from hub.db.engine import read_only
from hub.db.events import StoredEvent
from hub.db.state import Condition
from hub.notify.channel import Channel, Message, RetryPolicy
from hub.notify.console import ConsoleBus
from hub.notify.errors import DeliveryFailed
from hub.notify.home import AckPublisher, HomeAckChannel
from hub.notify.outbox import CHANNELS, Handover, OutboxWorker, mark_unconfigured
from hub.notify.sms import HttpProviderChannel, ProviderConfig
from hub.notify.webhook import WebhookChannel
from hub.sealing import SealingError, SecretBox, dev_box
from hub.sinks import AfterCommit, ConditionChange, NewEvent
from protocols import Event, ProtocolError, Telemetry

log = logging.getLogger(__name__)

#: A channel whose worker has this many handed-over messages waiting gets no more: new ones
#: wait in the table, where every hub worker can claim them (and no lease runs out unsent).
HANDOVER_BACKLOG = 100
#: Life-safety events decided inside the ingest's transaction, per batch at most (the rest
#: queue for the alarm task): a burst must not hold the write lock for long.
INLINE_MAX = 16
#: An undecided signal (not even the fail-safe alarm could be stored) is retried after
#: this many seconds, doubling up to the maximum, until it is decided.
UNDECIDED_RETRY_S = 0.5
UNDECIDED_RETRY_MAX_S = 30.0
#: A webhook's signing secret is read from the database at most this often (the send path
#: runs on the event loop); a changed secret signs within this many seconds.
SECRET_TTL_S = 10.0


def _provider(p: ProviderSettings) -> ProviderConfig:
    return ProviderConfig(
        p.url,
        token=p.token.get_secret_value() if p.token else None,
        username=p.username,
        password=p.password.get_secret_value() if p.password else None,
        sender=p.sender,
    )


class AlarmService:
    """Start/stop service and event sink of the alarm engine for one hub worker."""

    def __init__(
        self,
        settings: AlarmSettings,
        sessions: sessionmaker[Session],
        worker_id: str,
        clock: Clock | None = None,
        publisher: AckPublisher | None = None,
        bus: ConsoleBus | None = None,
        metrics: AlarmMetrics | None = None,
        secret_box: SecretBox | None = None,
        deliver: bool = True,
    ) -> None:
        """``deliver``: run the outbox workers here (see ``AlarmSettings.deliver``)."""
        self.settings = settings
        #: Opens the sealed webhook secrets (the hub's [hub.secrets] key; tests: the dev key).
        self.secret_box = secret_box or dev_box()
        self.sessions = sessions
        self.worker_id = worker_id
        self.clock = clock or SystemClock()
        self.bus = bus or ConsoleBus()
        self.publisher = publisher
        self.metrics = metrics or AlarmMetrics()
        self.http = httpx.AsyncClient(timeout=settings.send_timeout_s)
        self.engine = AlarmEngine(
            sessions,
            self.clock,
            escalation=settings.escalation_policy() or DEFAULT_ESCALATION,
            default_district=settings.default_district,
            on_enqueued=self.wake,
            handover=self._handover,
            on_claimed=self._claimed,
            on_unconfigured=self._count_unconfigured,
            storms=StormDesk(settings.storm.policy()),
        )
        self.timers = TimerWorker(
            sessions,
            self.clock,
            worker_id,
            default_district=settings.default_district,
            on_enqueued=self.wake,
            on_fired=lambda f: self.metrics.timers.labels("fired" if f.fired else "skipped").inc(),
        )
        retry = RetryPolicy(settings.retry_max_attempts, settings.retry_base_s, settings.retry_max_s)
        channels: list[Channel] = [
            self.bus,
            WebhookChannel(self.http, self.webhook_secret, formats=self.webhook_format),
        ]
        if settings.sms:
            channels.append(HttpProviderChannel(self.http, _provider(settings.sms), "sms"))
        if settings.voice:
            channels.append(HttpProviderChannel(self.http, _provider(settings.voice), "voice"))
        if publisher is not None and settings.home_acks:
            channels.append(HomeAckChannel(publisher))
        self.outboxes = [
            OutboxWorker(
                sessions,
                ch,
                worker_id,
                self.clock.now,
                retry,
                lease_s=settings.outbox_lease_s,
                send_timeout_s=settings.send_timeout_s,
                on_delivered=mark_notified,
                on_result=lambda ch, st: self.metrics.deliveries.labels(ch, st).inc(),
            )
            for ch in channels
            if deliver
        ]
        #: channels no worker of this hub runs (no SMS/voice provider): their recipients are
        #: recorded as ``unconfigured``; a startup warning and a health flag, no per-alarm noise
        #: (a worker that delivers nothing judges no channel: the delivering workers do)
        self.unconfigured = frozenset(CHANNELS) - {w.channel.name for w in self.outboxes} if deliver else frozenset()
        for ch in CHANNELS:
            self.metrics.configured.labels(ch).set(0 if ch in self.unconfigured else 1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()
        #: (priority, arrival, signal, key): smoke/gas/panic overtake a backlog of trouble
        self._inbox: asyncio.PriorityQueue[tuple[int, int, Signal, str]] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._busy = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._reading_tasks: set[asyncio.Task[None]] = set()
        #: open_keys of open analogue-kind alarms, refreshed with every re-check
        self._analogue_open: set[str] = set()
        #: signal keys decided inside the ingest's transaction, skipped by events_stored
        self._decided: set[str] = set()
        self._secrets: dict[str, tuple[str | None, float]] = {}  #: url → (secret, read at)
        self._formats: dict[str, tuple[str, float]] = {}  #: url → (format, read at)
        #: signal key → failed attempts, while a signal is undecided (retried with backoff)
        self.undecided: dict[str, int] = {}
        self.monotonic = time.monotonic  #: the secret cache's clock

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        for ch in sorted(self.unconfigured):
            log.warning(
                "notification channel %s is not configured on this hub: its recipients are recorded as "
                "'unconfigured' and never reached (configure [hub.alarms.%s] to send)", ch, ch
            )
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.reconcile)
        await asyncio.to_thread(self.refresh_analogue_open)
        # Before any handover or claim: a restart under the same worker id sends what its
        # killed predecessor held at once, not after the lease (nothing is in hand yet).
        for w in self.outboxes:
            await asyncio.to_thread(w.recover)
        self._tasks = [
            asyncio.create_task(self._process_forever(), name="alarm-signals"),
            asyncio.create_task(self.timers.run(self.settings.timer_tick_s), name="alarm-timers"),
            asyncio.create_task(self._reconcile_forever(), name="alarm-reconcile"),
            asyncio.create_task(self._storms_forever(), name="alarm-storms"),
            *(
                asyncio.create_task(w.run(self.settings.outbox_idle_s), name=f"outbox-{w.channel.name}")
                for w in self.outboxes
            ),
        ]

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let every loop finish the work in hand (database work runs in threads that a
        cancel would not stop), then cancel what is still waiting on the network."""
        self._stopping.set()
        for t in self._tasks:  # idle on the (in-memory) inbox: nothing in hand, stop now
            if t.get_name() == "alarm-signals" and not self._busy:
                t.cancel()
        self.timers.stop()
        for w in self.outboxes:
            w.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.http.aclose()
        close = getattr(self.publisher, "close", None)
        if close is not None:
            await close()

    def wake(self) -> None:
        """Thread-safe: wake the outbox workers (new notifications were committed)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for w in self.outboxes:
            loop.call_soon_threadsafe(w.wake)

    def _handover(self) -> Handover | None:
        """Thread-safe: while running, a new alarm's notifications are claimed for this
        worker's outboxes in the alarm's own transaction (no claim transaction, no poll)."""
        if self._loop is None or not self._tasks or self._stopping.is_set():
            return None
        channels = frozenset(w.channel.name for w in self.outboxes if w.handed < HANDOVER_BACKLOG)
        if not channels and not self.unconfigured:
            return None
        return Handover(
            self.worker_id, channels, self.outboxes[0].lease.total_seconds(), unconfigured=self.unconfigured
        )

    def _count_unconfigured(self, channels: list[str]) -> None:
        for ch in channels:
            self.metrics.unconfigured.labels(ch).inc()

    def channel_health(self) -> tuple[bool, str]:
        """The health flag of unconfigured channels: reported, not failing (the console and
        webhooks still reach the centers)."""
        if not self.unconfigured:
            return True, "all channels configured"
        return True, f"not configured, recipients not reached: {', '.join(sorted(self.unconfigured))}"

    def _claimed(self, messages: list[Message]) -> None:
        """Thread-safe: give committed, claimed notifications to their channels' workers.
        Should this worker be gone, their leases run out and any worker sends them."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._hand, messages)

    def _hand(self, messages: list[Message]) -> None:
        for w in self.outboxes:
            w.hand(messages)

    # --- EventSink ---------------------------------------------------------------------

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
        self._count(result)

    def _count(self, result: Processed) -> None:
        self.metrics.decisions.labels(result.decision).inc()
        if result.failed_step is not None:
            self.metrics.failsafe.labels(result.failed_step, result.decision).inc()

    async def events_stored(self, events: Sequence[NewEvent]) -> None:
        """Queue the events (life safety first) and return: ingest never waits for routing."""
        for e in events:
            signal, key = event_signal(e.event, e.received_at)
            if key in self._decided:
                self._decided.discard(key)  # decided in the ingest's own transaction
                continue
            self._put(signal, key)

    def decide_in_transaction(self, session: Session, events: Sequence[NewEvent]) -> AfterCommit | None:
        """Life-safety events (smoke, gas, panic, …) are decided, routed and their first
        notifications claimed in the transaction that stores them: from receipt to a webhook
        on its way, one write transaction. Each in a SAVEPOINT of its own; one that loses a
        race with another worker is left to the alarm task, which retries it; one whose
        decision fails gets its fail-safe alarm here (a savepoint of its own again), or is
        left to the alarm task if even that fails."""
        if not self._tasks or self._stopping.is_set():
            return None
        urgent = [e for e in events if is_life_safety(e.event.kind.value)][:INLINE_MAX]
        done: list[tuple[str, Processed, Handover | None]] = []
        for e in urgent:
            signal, key = event_signal(e.event, e.received_at)
            handover = self.engine.new_handover()
            try:
                with session.begin_nested():
                    result = self.engine.process(session, signal, key, handover)
            except RETRYABLE as exc:  # another worker won a race: the alarm task re-reads
                log.info("alarm signal %s left to the alarm queue (%s)", key, type(exc).__name__)
                continue
            except Exception as exc:  # noqa: BLE001 - any failed decision: the fail-safe alarm, now
                handover = self.engine.new_handover()
                try:
                    with session.begin_nested():
                        result = self.engine.process_failsafe(session, signal, key, exc, handover)
                except Exception as again:  # noqa: BLE001 - the alarm task retries, loudly
                    log.error("alarm signal %s: fail-safe failed in the ingest's transaction (%s); "
                              "left to the alarm queue", key, again)
                    continue
            done.append((key, result, handover))
        if not done:
            return None

        def after_commit() -> None:
            for key, result, handover in done:
                self._decided.add(key)
                self._count(result)
                self.engine.after_commit(result, handover)

        return after_commit

    def _put(self, signal: Signal, key: str) -> None:
        if not self._tasks:  # not running (tests, tools): decide now, in the caller's thread
            self.handle(signal, key)
            return
        self._inbox.put_nowait((priority_of(signal.kind), next(self._seq), signal, key))

    async def _process_forever(self) -> None:
        """Most urgent first: a life-safety signal on its own, the rest in batches of
        ``batch_max`` per transaction. One left undecided (not even its fail-safe alarm could
        be stored) goes back into the queue after a backoff."""
        while not self._stopping.is_set():
            item = await self._inbox.get()
            batch = [item]
            if not is_life_safety(item[2].kind):  # none is queued: they come out first
                while len(batch) < self.settings.batch_max and not self._inbox.empty():
                    batch.append(self._inbox.get_nowait())
            self._busy = True
            try:
                for left in await asyncio.to_thread(self._decide, batch):
                    self._retry_later(left)
            except Exception:  # this task must outlive any bug; the signals are retried
                log.exception("%d signals not turned into alarm decisions yet; retrying", len(batch))
                for left in batch:
                    self._retry_later(left)
            finally:
                self._busy = False

    def _decide(self, items: Sequence[tuple[int, int, Signal, str]]) -> list[tuple[int, int, Signal, str]]:
        """Decide queued items: one alone, several in one transaction (one that fails there
        is decided alone). Returns those left undecided."""
        left = []
        results: Sequence[Processed | None] = (
            [None] if len(items) == 1 else self.engine.handle_batch([(i[2], i[3]) for i in items])
        )
        for item, result in zip(items, results, strict=True):
            if result is not None:
                self._count(result)
                continue
            try:
                self.handle(item[2], item[3])
            except Undecided:  # logged and counted by handle
                left.append(item)
        return left

    def _retry_later(self, item: tuple[int, int, Signal, str]) -> None:
        attempts = self.undecided.get(item[3], 1)
        delay = min(UNDECIDED_RETRY_MAX_S, UNDECIDED_RETRY_S * 2 ** (attempts - 1))
        loop = asyncio.get_running_loop()
        loop.call_later(delay, self._inbox.put_nowait, item)

    def handle_batch(self, batch: Sequence[tuple[Signal, str]]) -> None:
        """Decide ``batch`` in one transaction; a signal that failed there is decided alone
        (one left undecided is for the re-check)."""
        self._decide([(0, 0, signal, key) for signal, key in batch])

    async def telemetry_stored(self, batches: Sequence[tuple[Telemetry, dt.datetime]]) -> None:
        """Analogue readings with a threshold (gas_lel, co_ppm) → raise/restore with hysteresis.

        Called by ingest for every stored telemetry message, so it must be cheap: readings
        that cannot change anything (below the raise level with no open analogue alarm for
        that sensor, or inside the hysteresis band) are dropped here without touching the
        database; the rest are evaluated in the background, ingest never waits for them.
        """
        candidates = [
            reading
            for tm, received_at in batches
            for reading in analogue_candidates(tm, received_at, self._is_analogue_open)
        ]
        if not candidates:
            return
        if not self._tasks:  # not running (tests, tools): decide now
            await self._evaluate(candidates)
            return
        task = asyncio.create_task(self._evaluate(candidates), name="alarm-readings")
        self._reading_tasks.add(task)
        task.add_done_callback(self._reading_tasks.discard)

    async def _evaluate(self, readings: Sequence[Reading]) -> None:
        for reading in readings:
            th = reading.thresholds[reading.metric]
            okey = open_key((reading.gateway_id, reading.sensor_id, th.kind))
            try:
                result = await asyncio.to_thread(self.engine.handle_reading, reading)
            except AlarmError:
                log.exception("reading %s/%s %s not evaluated", reading.gateway_id, reading.sensor_id,
                              reading.metric)
                continue
            if result.decision == "ignore":
                continue
            self.metrics.decisions.labels(result.decision).inc()
            if reading.value >= th.raise_at:
                self._analogue_open.add(okey)
            elif reading.value <= th.clear_at:
                self._analogue_open.discard(okey)

    def _is_analogue_open(self, gateway_id: str, sensor_id: str, kind: str) -> bool:
        return open_key((gateway_id, sensor_id, kind)) in self._analogue_open

    def refresh_analogue_open(self) -> None:
        """Which sensors have an open, unrestored alarm of an analogue kind (any worker's)."""
        kinds = {th.kind for th in DEFAULT_THRESHOLDS.values()}
        with self.sessions() as s:
            keys = read_only(s).scalars(
                select(Alarm.open_key).where(
                    Alarm.open_key.is_not(None), Alarm.restored_at.is_(None), Alarm.kind.in_(kinds)
                )
            ).all()
        self._analogue_open = {k for k in keys if k is not None}

    async def conditions_changed(self, changes: Sequence[ConditionChange]) -> None:
        """Decided in batches of ``batch_max`` per transaction: a supervision round opening
        2,000 conditions (a power cut) is 40 short write transactions, not 2,000 commits."""
        signals = [
            condition_signal(c.condition_id, c.gateway_id, c.sensor_id, c.kind, c.state == "restored", c.at)
            for c in changes
        ]
        size = self.settings.batch_max
        for start in range(0, len(signals), size):
            batch = signals[start : start + size]
            try:
                await asyncio.to_thread(self.handle_batch, batch)
            except AlarmError:
                log.exception("%d conditions not turned into alarms yet; the re-check will retry", len(batch))

    # --- storms ------------------------------------------------------------------------

    def settle_storms(self) -> int:
        """One check of every open mass-event incident (each in its own transaction): push
        the running count, close the quiet ones. Returns the notifications enqueued."""
        storms = self.engine.storms
        if storms is None:
            return 0
        with self.sessions() as s:
            ids = storms.open_incidents(read_only(s))
        total = 0
        for incident_id in ids:
            now = self.clock.now()

            def work(s: Session, i: str = incident_id, t: dt.datetime = now) -> tuple[str, int]:
                return storms.settle_one(s, i, t, self.engine.route_unfolded)

            total += in_transaction(self.sessions, work)[1]
        if total:
            self.wake()
        return total

    async def _storms_forever(self) -> None:
        every = self.settings.storm.update_every_s
        while True:
            try:
                await asyncio.wait_for(self._stopping.wait(), every)
                return
            except TimeoutError:
                pass
            try:
                await asyncio.to_thread(self.settle_storms)
            except AlarmError:
                log.exception("mass-event check failed; next round retries")

    # --- re-check ----------------------------------------------------------------------

    def reconcile(self) -> int:
        """Process stored events and conditions of the window that have no decision yet."""
        since = self.clock.now() - dt.timedelta(seconds=self.settings.reconcile_window_s)
        done = 0
        with self.sessions() as s:
            processed = set(
                read_only(s).scalars(select(ProcessedSignal.key).where(ProcessedSignal.processed_at >= since))
            )
            events = s.execute(
                select(StoredEvent.id, StoredEvent.payload, StoredEvent.received_at)
                .where(StoredEvent.received_at >= since)
                .order_by(StoredEvent.received_at)
            ).all()
            conds = s.scalars(
                select(Condition).where((Condition.opened_at >= since) | (Condition.restored_at >= since))
            ).all()
        for eid, payload, received_at in events:
            if f"ev:{eid}" in processed:
                continue
            try:
                ev = Event.model_validate_json(orjson.dumps(payload))
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                log.error(
                    "stored event %s cannot be decoded: %s",
                    eid,
                    ProtocolError("bad_stored_event", str(exc)[:200]),
                )
                continue
            done += self._recheck(*event_signal(ev, received_at))
        for c in conds:
            steps = [(False, c.opened_at)] + ([(True, c.restored_at)] if c.restored_at else [])
            for restored, at in steps:
                sig, key = condition_signal(c.id, c.gateway_id, c.sensor_id, c.kind, restored, at)
                if key not in processed:
                    done += self._recheck(sig, key)
        if done:
            log.warning("re-check turned %d stored signals into alarm decisions", done)
        if not self.outboxes:  # this worker delivers nothing: a delivering worker judges channels
            return done
        with self.sessions() as s, s.begin():
            # rows enqueued without a handover (escalations, operators' steps, other workers)
            marked = mark_unconfigured(s, [w.channel.name for w in self.outboxes])
        for ch, n in marked.items():  # warned once at start; counted here, not logged per alarm
            self.metrics.unconfigured.labels(ch).inc(n)
        return done

    def _recheck(self, signal: Signal, key: str) -> int:
        """One signal of the re-check; one left undecided does not stop the others."""
        try:
            self.handle(signal, key)
        except Undecided:  # logged and counted by handle; the next re-check retries
            return 0
        return 1

    async def _reconcile_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._stopping.wait(), self.settings.reconcile_every_s)
                return
            except TimeoutError:
                pass
            try:
                await asyncio.to_thread(self.reconcile)
                await asyncio.to_thread(self.refresh_analogue_open)
            except Exception:  # a database blip must not end the re-check for good
                log.exception("alarm re-check failed; next round retries")

    def webhook_secret(self, url: str) -> str | None:
        """The signing secret of the webhook at ``url``, opened; read at most every SECRET_TTL_S."""
        now = self.monotonic()
        cached = self._secrets.get(url)
        if cached is not None and now - cached[1] < SECRET_TTL_S:
            return cached[0]
        with self.sessions() as s:
            sealed = read_only(s).scalars(
                select(WebhookSubscription.secret_sealed).where(WebhookSubscription.url == url).limit(1)
            ).first()
        try:
            secret = self.secret_box.open(sealed) if sealed is not None else None
        except SealingError as exc:
            # A wrong or missing key is a configuration fault: retried (with backoff) so
            # that deliveries go out once the key is fixed, and loud in the log meanwhile.
            log.error("webhook %s: its secret does not open: %s ([hub.secrets] key_file)", url, exc)
            raise DeliveryFailed(f"webhook secret of {url} does not open with the configured key", retryable=True) from exc
        self._secrets[url] = (secret, now)
        return secret


    def webhook_format(self, url: str) -> str:
        """``json`` or ``cap`` (the subscription's choice); read at most every SECRET_TTL_S."""
        now = self.monotonic()
        cached = self._formats.get(url)
        if cached is not None and now - cached[1] < SECRET_TTL_S:
            return cached[0]
        with self.sessions() as s:
            fmt = read_only(s).scalars(
                select(WebhookSubscription.format).where(WebhookSubscription.url == url).limit(1)
            ).first()
        self._formats[url] = (fmt or "json", now)
        return fmt or "json"
