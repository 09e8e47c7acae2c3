"""Watch the broker's ``$SYS`` counters: dropped messages become a metric and a condition.

Mosquitto silently drops QoS 1 messages for a client whose queue is full
(``max_queued_messages``) and counts them in ``$SYS/broker/publish/messages/dropped``
(cumulative since the broker started). A rise opens a ``broker_dropping`` condition;
it is restored once the counter has not moved for ``quiet_s``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt
from sqlalchemy.orm import Session, sessionmaker

from hub.db.state import ConditionKind
from hub.metrics import HubMetrics
from hub.mqtt import hub_client_id, make_client
from hub.settings import MqttSettings
from hub.sinks import ConditionChange, EventSink
from hub.supervision.conditions import open_condition, restore_condition
from hub.threads import ThreadWork

log = logging.getLogger(__name__)

DROPPED = "$SYS/broker/publish/messages/dropped"
CONNECTED = "$SYS/broker/clients/connected"


class DropChange(enum.StrEnum):
    OPEN = "open"
    RESTORE = "restore"


@dataclass
class DropWatch:
    """Pure: feed it counter values and the time; it says when to open or restore."""

    quiet_s: float = 300.0
    last: int | None = None
    last_rise: float | None = None
    is_open: bool = False

    def observe(self, value: int, now: float) -> DropChange | None:
        if self.last is None or value < self.last:
            # first reading, or the broker restarted (counters start again at 0)
            rose = value > 0 and self.last is None
        else:
            rose = value > self.last
        self.last = value
        if rose:
            self.last_rise = now
            if not self.is_open:
                self.is_open = True
                return DropChange.OPEN
            return None
        return self.tick(now)

    def tick(self, now: float) -> DropChange | None:
        if self.is_open and self.last_rise is not None and now - self.last_rise >= self.quiet_s:
            self.is_open = False
            return DropChange.RESTORE
        return None


def parse_counter(payload: object) -> int | None:
    try:
        text = payload.decode() if isinstance(payload, bytes | bytearray) else str(payload)
        return int(text.strip())
    except (UnicodeDecodeError, ValueError):
        return None


class BrokerMonitor:
    """Subscribes to ``$SYS`` as the hub account; records ``broker_dropping`` conditions."""

    def __init__(
        self,
        mqtt: MqttSettings,
        worker_id: str,
        session_factory: sessionmaker[Session],
        metrics: HubMetrics,
        sinks: list[EventSink] | None = None,
        quiet_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mqtt = mqtt
        self.worker_id = worker_id
        self.factory = session_factory
        self.metrics = metrics
        self.sinks = sinks if sinks is not None else []  # shared: sinks added later are seen
        self.watch = DropWatch(quiet_s)
        self.clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._threads = ThreadWork()

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._receive(), name="broker-sys"),
                       asyncio.create_task(self._quiet_ticks(), name="broker-sys-tick")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
        self._tasks = []
        await self._threads.drain()

    async def _receive(self) -> None:
        while True:
            try:
                async with make_client(self.mqtt, hub_client_id("sys", self.worker_id), clean_session=True) as client:
                    await client.subscribe(DROPPED, qos=0)
                    await client.subscribe(CONNECTED, qos=0)
                    async for msg in client.messages:
                        await self.on_counter(msg.topic.value, msg.payload)
            except aiomqtt.MqttError as exc:
                log.warning("$SYS monitor lost the broker (%s); reconnecting", exc)
            await asyncio.sleep(2.0)

    async def _quiet_ticks(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            change = self.watch.tick(self.clock())
            if change is not None:
                await self._record(change)

    async def on_counter(self, topic: str, payload: object) -> None:
        value = parse_counter(payload)
        if value is None:
            log.warning("unreadable $SYS value on %s: %r", topic, payload)
            return
        if topic == CONNECTED:
            self.metrics.broker_connected.set(value)
            return
        self.metrics.broker_dropped.set(value)
        change = self.watch.observe(value, self.clock())
        if change is not None:
            await self._record(change)

    async def _record(self, change: DropChange) -> None:
        now = dt.datetime.now(dt.UTC)
        detail = f"broker dropped {self.watch.last} messages since it started (queue full: max_queued_messages)"
        fn = open_condition if change is DropChange.OPEN else restore_condition

        def write() -> ConditionChange | None:
            with self.factory() as session, session.begin():
                return fn(session, ConditionKind.BROKER_DROPPING, None, None, now, detail)

        recorded = await self._threads.run(write)
        if recorded is None:
            return
        self.metrics.conditions.labels(recorded.kind, recorded.state).inc()
        log.warning("condition broker_dropping %s: %s", recorded.state, detail)
        for sink in self.sinks:
            try:
                await sink.conditions_changed([recorded])
            except Exception:
                self.metrics.sink_errors.labels(type(sink).__name__).inc()
                log.exception("sink %s failed on broker_dropping", type(sink).__name__)
