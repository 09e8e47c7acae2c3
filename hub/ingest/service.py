"""The ingest service: consume the gateways' uplink, store, ack after commit, notify.

Two receivers (one broker connection per lane: ``$share/<group>/…`` on Mosquitto, a queue
group on NATS, :mod:`hub.ingest.uplink`) take messages off the broker (reconnecting by
themselves) and queue them: events, status and command results on the priority queue,
telemetry on the other. Each queue serves life safety first, then supervisory, trouble and
test, round-robin across gateways, with a bound per gateway per batch
(:mod:`hub.ingest.fair`), so one gateway's flood costs only that gateway; a gateway
sending far more than a home raises ``gateway_flooding`` (:mod:`hub.ingest.flooding`).
Before any of that, the broker's rate limit keeps a flood out of the priority lane's broker
queue (hub/broker/plugin/safehome_ratelimit.c); what it refused is counted from its notices
(:func:`hub.ingest.flooding.parse_shed_notice`) as if received.
Each queue has its own processor, so an alarm
never waits for a telemetry batch to be validated and written. A processor takes a batch
(whatever is waiting, up to ``batch_max``), validates it, stores the events in one
transaction, acks them, tells the sinks about the new ones, then writes and acks the
telemetry. What the batch says about connectivity (last-seen, status) is merged into a
buffer that a third task writes every ``state_flush_s``. A failed store is retried (never
acked before it succeeds); a bad message is counted and logged, never stops either loop.
Because the gateway resends until acked, this worker may shed what is not life safety
under memory pressure (the flooding gateway's first): it is not lost, only delayed.
Life-safety events are never shed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from hub.broker.plugin import SHED_TOPIC
from hub.db.commands import record_results
from hub.db.errors import StoreError
from hub.db.gate import INGEST, LIFE_SAFETY, writing_as
from hub.downlink import acks, stored_items
from hub.ingest.clock import ClockWatch
from hub.ingest.decode import Incoming, RateLimitedLog, Rejected, classify
from hub.ingest.fair import Admit, Bounds, FairQueue, FloodWatch, Rank, gateway_of, rank_of
from hub.ingest.flooding import FloodAlarms, parse_shed_notice
from hub.ingest.nats_source import NatsLane
from hub.ingest.plan import Plan, SeenGate, StateBuffer, make_plan
from hub.ingest.store import Decider, store_event_batch, store_state, store_telemetry
from hub.ingest.uplink import AckPublisher, MqttLane, Uplink, UplinkSource
from hub.metrics import HubMetrics
from hub.mqtt import LazyPublisher, downlink_client_id
from hub.settings import HubSettings
from hub.sinks import Decided, EventSink, NewEvent, TelemetrySink, TransactionalSink
from hub.threads import ThreadWork
from hub.timeseries import TimeSeriesStore
from protocols import AckItem, AlarmClass, Event, Telemetry, class_of, encode

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_URGENT = tuple(r for r in Rank if r < Rank.TELEMETRY)


class UplinkQueue:
    """Received messages of one lane, in the order :class:`hub.ingest.fair.FairQueue` serves
    them: most urgent class first, round-robin across gateways, a bound per gateway."""

    def __init__(self, bounds: Bounds) -> None:
        self._fair: FairQueue[Uplink] = FairQueue(bounds)
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._fair)

    def held(self, gateway: str) -> int:
        return self._fair.held(gateway)

    def put(self, msg: Uplink, gateway: str, rank: Rank) -> Admit:
        verdict = self._fair.offer(gateway, rank, msg)
        if verdict is Admit.ADMITTED:
            self._ready.set()
        return verdict

    async def take(
        self, limit: int, per_gateway: int, linger_s: float = 0.0, heavy_at: int | None = None
    ) -> list[Uplink]:
        """Up to ``limit`` messages, at most ``per_gateway`` of one gateway. ``linger_s``:
        when fewer than ``limit`` are waiting, wait this long for more first (telemetry: one
        transaction and one ack per gateway for many messages)."""
        while not self._fair:
            self._ready.clear()
            await self._ready.wait()
        if linger_s > 0:
            deadline = asyncio.get_running_loop().time() + linger_s
            while len(self._fair) < limit:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                self._ready.clear()
                try:
                    async with asyncio.timeout(remaining):
                        await self._ready.wait()
                except TimeoutError:
                    break
        # a batch never mixes events, status and results with telemetry: an alarm is
        # committed, acked and handed to the alarm engine in a small transaction of its own
        # committed, acked and handed to the alarm engine in a small transaction of its own;
        # a life-safety batch holds nothing else either: a smoke alarm is not planned,
        # stored and acked together with a storm's Last-Wills and mains_lost (up to
        # batch_max of them), those go in the next batch
        head = self._fair.head_rank()
        if head is None or head >= Rank.TELEMETRY:
            ranks: tuple[Rank, ...] = (Rank.TELEMETRY,)
        else:
            ranks = (Rank.LIFE_SAFETY,) if head == Rank.LIFE_SAFETY else _URGENT
        return self._fair.take(limit, per_gateway, ranks, heavy_at)


#: the ingest's own threads: both lanes' stores, the state flush, planning, flood alarms
INGEST_THREADS = 4
#: batches larger than this are validated in a thread (a few ms of pure Python and more)
PLAN_IN_THREAD_OVER = 50
PRIORITY_LANE = "priority"
#: NATS: how long a batch waits for the ack publisher's fresh connect (loopback: ms). Past it
#: the acks of the batch are dropped (the gateways resend) while the connect goes on behind.
ACK_CONNECT_WAIT_S = 1.0
TELEMETRY_LANE = "telemetry"
#: uplink channels per receiving connection
LANES: dict[str, frozenset[str]] = {
    # Status (heartbeats, Last-Will) stays off the telemetry lane: behind a telemetry
    # backlog, heartbeats arrive late and supervision reports healthy gateways silent (a
    # recovery run with status on the telemetry lane flooded the alarm engine with
    # gateway_silent troubles: webhook p99 21.6 s instead of 1.2 s).
    PRIORITY_LANE: frozenset({"event", "status", "result"}),
    TELEMETRY_LANE: frozenset({"telemetry"}),
}


def seen_write_every(settings: HubSettings) -> float:
    """``[hub.ingest] seen_write_every_s``, at most half of supervision's shortest grace:
    last-seen written that much late can never make a reporting sensor or gateway look
    silent, nor delay the restore of one that was."""
    sup = settings.supervision
    return min(settings.ingest.seen_write_every_s, sup.sensor_grace_s / 2, sup.gateway_min_silence_s / 2)


class IngestService:
    def __init__(
        self,
        settings: HubSettings,
        session_factory: sessionmaker[Session],
        timeseries: TimeSeriesStore,
        metrics: HubMetrics,
        sinks: list[EventSink] | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.settings = settings
        self.factory = session_factory
        self.timeseries = timeseries
        self.metrics = metrics
        self.sinks = sinks if sinks is not None else []  # shared: sinks added later are seen
        self.clock = clock
        ing = settings.ingest
        bounds = Bounds.of(ing.max_pending, ing.gateway_pending)
        self.queue = UplinkQueue(bounds)  #: events, status, results
        self.telemetry_queue = UplinkQueue(bounds)
        #: set while both lanes are subscribed
        self.subscribed = asyncio.Event()
        self._lanes_up: set[str] = set()
        self._sources: dict[str, UplinkSource] = {}  #: per lane; acks go out on a connected one
        #: NATS: acks over MQTT QoS 1 to the cluster's listeners (hub/ingest/nats_source.py)
        self._downlink: LazyPublisher | None = None
        if settings.mqtt.backend == "nats":
            ids = (settings.worker_id, "ingest-acks")
            # a batch's acks go out at once (up to one per gateway of the batch), as on the lane
            self._downlink = LazyPublisher(settings.mqtt, downlink_client_id(settings.mqtt, *ids), max_inflight=1000)
        self.lanes = settings.ingest.lanes  #: validated: each lane at most once
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._rejects = RateLimitedLog(log, settings.ingest.reject_log_interval_s)
        # threads of its own: a smoke alarm's store never waits for a thread of the default
        # pool, all of them waiting for SQLite's write lock in a storm (hub/threads.py)
        self._threads = ThreadWork(INGEST_THREADS, "ingest")
        self.state = StateBuffer()
        self._gate = SeenGate(seen_write_every(settings))
        self.clock_watch = ClockWatch(settings.supervision.clock_tolerance_s)
        self._flush_lock = asyncio.Lock()
        self._shed = RateLimitedLog(log, settings.ingest.reject_log_interval_s)
        self.floods = FloodAlarms(
            FloodWatch(ing.flood_max_messages, ing.flood_window_s),
            self.lanes,
            session_factory,
            metrics,
            self.sinks,
            self._threads,
        )

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        # Two connections: the broker keeps one FIFO queue per connection, so alarms get a
        # connection of their own and never wait at the broker behind a telemetry backlog
        # (a 5,000-gateway reconnect queues tens of thousands of telemetry messages).
        # A worker may consume only some lanes (``[hub.ingest] lanes``): a process of its own
        # for the priority lane keeps alarms off the CPU that drains a telemetry backlog.
        # Every syscall of the receiver (a PUBACK sent, a wake-up) lets a busy storing thread
        # take the GIL, which it gives back only after the switch interval (5 ms by default):
        # under a flood the receiver then took a few hundred messages/s off the broker, and
        # the backlog waited in the broker's FIFO, not in our fair queue (hub/ingest/reads.py).
        sys.setswitchinterval(min(sys.getswitchinterval(), self.settings.ingest.switch_interval_s))
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._flush_forever(), name="ingest-state"),
            asyncio.create_task(self.floods.run(), name="ingest-flooding"),
        ]
        if PRIORITY_LANE in self.lanes:
            # a batch holds at most gateway_batch_max messages of one gateway, one of a
            # gateway holding more than twice that, none of it beside another gateway's
            # of its class: a flood (even of smoke events, never shed) is cut into single
            # messages in batches of their own, never in another home's alarm's batch
            per_gateway = self.settings.ingest.gateway_batch_max
            process = self._process_forever(self.queue, per_gateway, heavy_at=2 * per_gateway)
            self._tasks += [
                asyncio.create_task(self._source(PRIORITY_LANE).run(), name="ingest-receive"),
                asyncio.create_task(process, name="ingest-process"),
            ]
        if TELEMETRY_LANE in self.lanes:
            linger = self.settings.ingest.telemetry_linger_s
            self._tasks += [
                asyncio.create_task(self._source(TELEMETRY_LANE).run(), name="ingest-receive-telemetry"),
                # telemetry waits for nobody's life: round-robin across gateways keeps one
                # gateway's backlog from delaying the others', full batches keep it fast
                asyncio.create_task(
                    self._process_forever(self.telemetry_queue, self.settings.ingest.batch_max, linger),
                    name="ingest-process-telemetry",
                ),
            ]

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
        self._tasks = []
        await self.floods.drain()
        await self._threads.drain()
        if self._downlink is not None:
            await self._downlink.close()
        try:
            await self.flush_state()  # what was heard last is not lost on an orderly stop
        except StoreError as exc:
            log.warning("ingest stopped with unsaved gateway state: %s", exc)

    # --- receiving -------------------------------------------------------------------
    def _source(self, lane: str) -> UplinkSource:
        mqtt, worker = self.settings.mqtt, self.settings.worker_id
        source: UplinkSource
        if mqtt.backend == "nats":
            # no broker rate limit there, hence no shed notices (docs/broker.md)
            source = NatsLane(
                mqtt,
                worker,
                lane,
                LANES[lane],
                deliver=self._accept,
                up=lambda up: self._lane_up(lane, up),
                dropped=self._client_dropped,
            )
        else:
            source = MqttLane(
                mqtt,
                worker,
                lane,
                LANES[lane],
                shed=lane == PRIORITY_LANE,
                deliver=self._accept,
                up=lambda up: self._lane_up(lane, up),
            )
        self._sources[lane] = source
        return source

    def _client_dropped(self, topic: str) -> None:
        """The broker client dropped a message it had no room for (not acked: resent)."""
        self.metrics.rejects.labels("slow_consumer").inc()
        detail = "dropped by the hub's NATS client past its pending limit; not acked, to be resent"
        self._shed.reject(Rejected("slow_consumer", detail, topic))

    def _lane_up(self, lane: str, up: bool) -> None:
        if not up and lane in self._lanes_up and not self._stopping:  # lost, not stopped
            self.metrics.lane_lost.labels(lane).inc()
        (self._lanes_up.add if up else self._lanes_up.discard)(lane)
        self.metrics.lane_up.labels(lane).set(1 if up else 0)
        if self._lanes_up == set(self.lanes):
            self.subscribed.set()
        else:
            self.subscribed.clear()

    def _accept(self, msg: Uplink) -> None:
        topic = msg.topic
        if topic == SHED_TOPIC:
            self._broker_shed(msg.payload)
            return
        channel = topic.rsplit("/", 1)[-1]
        gateway = gateway_of(topic)
        self.floods.observe(gateway)
        queue = self.queue if channel in LANES[PRIORITY_LANE] else self.telemetry_queue
        verdict = queue.put(msg, gateway, rank_of(channel, msg.payload))
        if verdict is not Admit.ADMITTED:
            # not acked: the gateway resends it later (deferred, not lost)
            self.metrics.rejects.labels(verdict.value).inc()
            detail = f"{len(queue)} waiting, {queue.held(gateway)} of {gateway}; not acked, to be resent"
            self._shed.reject(Rejected(verdict.value, detail, topic, gateway))
            return
        self.metrics.queue_depth.set(len(self.queue) + len(self.telemetry_queue))

    def _broker_shed(self, payload: bytes) -> None:
        """A notice of the broker's rate limit: ``n`` messages of a gateway refused (not
        acked: it resends them). They count towards its rate (``gateway_flooding``)."""
        notice = parse_shed_notice(payload)
        if isinstance(notice, str):
            self.metrics.rejects.labels("bad_shed_notice").inc()
            self._rejects.reject(Rejected("bad_shed_notice", notice, SHED_TOPIC))
            return
        gateway, n = notice
        self.metrics.broker_shed.inc(n)
        self.floods.observe(gateway, n)

    # --- processing ------------------------------------------------------------------
    async def _process_forever(
        self, queue: UplinkQueue, per_gateway: int, linger_s: float = 0.0, heavy_at: int | None = None
    ) -> None:
        while True:
            batch = await queue.take(self.settings.ingest.batch_max, per_gateway, linger_s, heavy_at)
            self.metrics.queue_depth.set(len(self.queue) + len(self.telemetry_queue))
            try:
                await self.process(batch)
            except Exception:
                # A bug must not stop the ingest. Nothing of this batch that was not stored
                # was acked, so the gateways resend it.
                self.metrics.store_errors.labels("unexpected").inc()
                log.exception("ingest failed on a batch of %d messages; continuing", len(batch))

    def _plan(self, batch: Sequence[Uplink], now: dt.datetime) -> Plan:
        return make_plan(self._classify(batch, now), self.clock_watch)

    def _classify(self, batch: Sequence[Uplink], now: dt.datetime) -> list[Incoming | Rejected]:
        items: list[Incoming | Rejected] = []
        for topic, payload, retain in batch:
            item = classify(topic, payload, retain, now)
            if isinstance(item, Rejected):
                self.metrics.rejects.labels(item.reason).inc()
                self._rejects.reject(item)
            else:
                self.metrics.messages_in.labels(item.topic.channel.value).inc()
            items.append(item)
        return items

    async def process(self, batch: Sequence[Uplink]) -> None:
        """Store and ack one batch (public so that benchmarks can drive it directly)."""
        now = self.clock()
        if len(batch) > PLAN_IN_THREAD_OVER:
            # validating a telemetry batch takes tens of ms of pure Python: in a thread, the
            # event loop (alarm path, acks, outbox) keeps running meanwhile
            plan = await self._threads.run(self._plan, batch, now)
        else:
            plan = self._plan(batch, now)
        if plan.rejected_acks:
            await self.publish_acks(plan.rejected_acks)
        if plan.clock_suspect:
            self.metrics.clock_suspect.inc(len(plan.clock_suspect))
        self.state.add(plan.gateways, plan.sensors)
        if plan.events:
            # storing and deciding a smoke alarm goes before any other writer of this process,
            # what gateways wait an ack for before the alarm engine's background work
            urgency = LIFE_SAFETY if any(class_of(e.kind) is AlarmClass.ALARM for e in plan.events) else INGEST
            with writing_as(urgency):
                answers, after = await self._retry(
                    "core", store_event_batch, self.factory, plan.events, now, self._deciders(), plan.clock_suspect
                )
            new = [e for e, is_new in zip(plan.events, answers, strict=True) if is_new]
            self.metrics.events_stored.labels("new").inc(len(new))
            self.metrics.events_stored.labels("duplicate").inc(len(plan.events) - len(new))
            self._after_commit(after)  # e.g. hand a decided alarm's notifications over: first
            await self.publish_acks(stored_items(plan.events))
            self._observe_lag("event", [e for e in plan.events if e.id not in plan.clock_suspect])
            if new:
                decided = {i for d in after for i in d.event_ids}
                await self._notify([NewEvent(e, now, decided=e.id in decided) for e in new])
        if plan.results:  # a gateway's answer to a command (not acked: protocol 3)
            with writing_as(INGEST):
                n = await self._retry("results", record_results, self.factory, plan.results, now)
            self.metrics.command_results.labels("recorded").inc(n)
            if n < len(plan.results):
                self.metrics.command_results.labels("unmatched").inc(len(plan.results) - n)
                log.info("%d command result(s) matched no command of theirs awaiting an answer", len(plan.results) - n)
        if plan.telemetry:
            n = await self._retry("telemetry", store_telemetry, self.timeseries, plan)
            self.metrics.readings_stored.inc(n)
            await self.publish_acks(stored_items(plan.telemetry))
            self._observe_lag("telemetry", plan.telemetry)
            await self._notify_telemetry([(t, now) for t in plan.telemetry])

    def _deciders(self) -> list[Decider]:
        """The sinks that decide new events inside the storing transaction, each guarded by
        a SAVEPOINT: whatever it does or raises, the events are committed and acked."""
        return [self._guarded(sink) for sink in self.sinks if isinstance(sink, TransactionalSink)]

    def _guarded(self, sink: TransactionalSink) -> Decider:
        name = type(sink).__name__

        def decide(session: Session, events: Sequence[NewEvent]) -> Decided | None:
            try:
                with session.begin_nested():
                    return sink.decide_in_transaction(session, events)
            except Exception:
                # events_stored still hands them to the sink after the commit
                self.metrics.sink_errors.labels(name).inc()
                log.exception("sink %s failed to decide %d events in their transaction", name, len(events))
                return None

        return decide

    def _after_commit(self, decided: list[Decided]) -> None:
        for d in decided:
            try:
                d.after_commit()
            except Exception:
                self.metrics.sink_errors.labels("after_commit").inc()
                log.exception("an after-commit callback of a sink failed")

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ingest.state_flush_s)
            try:
                await self.flush_state()
            except StoreError as exc:
                log.error("gateway state not stored, kept for the next flush: %s", exc)
            except Exception:
                self.metrics.store_errors.labels("unexpected").inc()
                log.exception("gateway state flush failed; kept for the next flush")

    async def flush_state(self) -> int:
        """Write the buffered connectivity state now; returns how many rows. On failure the
        state goes back into the buffer (merged under anything newer) and is raised."""
        async with self._flush_lock:
            if not self.state:
                return 0
            batch = self._gate.admit(self.state.take())
            if not batch:
                return 0
            started = time.perf_counter()
            try:
                await self._threads.run(store_state, self.factory, batch)
            except BaseException as exc:
                self._gate.forget(batch)
                self.state.put_back(batch)
                if isinstance(exc, StoreError):
                    self.metrics.store_errors.labels("state").inc()
                raise
            self.metrics.store_batch.labels("state").observe(time.perf_counter() - started)
            return len(batch)

    async def _retry(self, kind: str, fn: Callable[..., Any], *args: Any) -> Any:
        while True:
            started = time.perf_counter()
            try:
                result = await self._threads.run(fn, *args)
            except StoreError as exc:
                self.metrics.store_errors.labels(kind).inc()
                log.error(
                    "store %s failed, retrying in %.1f s (nothing acked): %s",
                    kind,
                    self.settings.ingest.retry_delay_s,
                    exc,
                )
                await asyncio.sleep(self.settings.ingest.retry_delay_s)
                continue
            self.metrics.store_batch.labels(kind).observe(time.perf_counter() - started)
            return result

    async def publish_acks(self, items: dict[str, list[AckItem]]) -> None:
        """Publish ack items per gateway (QoS ``mqtt.ack_qos``). Also for other features: the
        alarm engine tells a home ``acknowledged`` / ``dispatched`` through this. Best effort:
        when not connected nothing is sent (uplink is resent by the gateway until acked)."""
        publisher = self._ack_publisher()
        if publisher is None:
            return  # not connected: the gateways resend and are acked then
        if self._downlink is not None and publisher is self._downlink and not await self._downlink.ready(ACK_CONNECT_WAIT_S):
            return  # (re)connecting in the background: never hold the batch loop on it
        now_ms = int(self.clock().timestamp() * 1000)
        messages = acks(items, now_ms)
        results = await asyncio.gather(
            *(publisher.publish(topic, encode(ack), self.settings.mqtt.ack_qos) for topic, ack in messages),
            return_exceptions=True,
        )
        for (_, ack), res in zip(messages, results, strict=True):
            if isinstance(res, BaseException):
                log.warning("ack to %s not sent (%s): it will be resent on the gateway's retry", ack.gw, res)
                continue
            for item in ack.items:
                self.metrics.acks_sent.labels(item.status.value).inc()

    def _ack_publisher(self) -> AckPublisher | None:
        if self._downlink is not None:
            # no lane up: no cluster either; the gateways resend and are acked then
            return self._downlink if self._lanes_up else None
        for lane in (PRIORITY_LANE, TELEMETRY_LANE):
            source = self._sources.get(lane)
            publisher = source.publisher() if source is not None else None
            if publisher is not None:
                return publisher
        return None

    def _observe_lag(self, kind: str, messages: Sequence[Event | Telemetry]) -> None:
        now_s = self.clock().timestamp()
        hist = self.metrics.ingest_lag.labels(kind)
        for m in messages:
            if m.synced and m.ts:
                hist.observe(max(0.0, now_s - m.ts / 1000))

    async def _notify_telemetry(self, batches: list[tuple[Telemetry, dt.datetime]]) -> None:
        """Sinks that evaluate readings (gas %LEL thresholds) get the stored telemetry."""
        for sink in self.sinks:
            if not isinstance(sink, TelemetrySink):
                continue
            try:
                await sink.telemetry_stored(batches)
            except Exception:
                self.metrics.sink_errors.labels(type(sink).__name__).inc()
                log.exception("telemetry sink %s failed on %d messages", type(sink).__name__, len(batches))

    async def _notify(self, new: list[NewEvent]) -> None:
        for sink in self.sinks:
            try:
                await sink.events_stored(new)
            except Exception:
                self.metrics.sink_errors.labels(type(sink).__name__).inc()
                log.exception("event sink %s failed on %d new events", type(sink).__name__, len(new))
