"""The supervision service: on every tick, read connectivity from the database, run the
pure core (:mod:`hub.supervision.core`), record the conditions it asks for and tell the sinks.

It reads the database, not this worker's memory, because with several workers on a shared
subscription each one sees only part of the traffic. Opening and restoring are idempotent
in the database, so every worker may tick; only the one whose write won notifies.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from hub.db.engine import read_only
from hub.db.state import ConditionKind, GatewayState, SensorState
from hub.metrics import HubMetrics
from hub.registry.models import Gateway, Sensor
from hub.settings import SupervisionSettings
from hub.sinks import ConditionChange, EventSink
from hub.supervision.conditions import open_condition, open_keys, restore_condition
from hub.supervision.core import Action, GatewayView, Key, Policy, SensorView, Transition, evaluate
from hub.threads import ThreadWork

log = logging.getLogger(__name__)
GATEWAY_KINDS = {ConditionKind.GATEWAY_SILENT, ConditionKind.GATEWAY_OFFLINE, ConditionKind.CLOCK_SUSPECT}
#: Conditions opened or restored per write transaction at most.
WRITE_CHUNK = 200


def policy_of(s: SupervisionSettings) -> Policy:
    return Policy(
        gateway_max_silence_s=s.gateway_max_silence_s,
        gateway_min_silence_s=s.gateway_min_silence_s,
        heartbeat_misses=s.heartbeat_misses,
        grace_s=s.grace_s,
        offline_grace_s=s.offline_grace_s,
        sensor_grace_s=s.sensor_grace_s,
        default_heartbeat_s=s.default_heartbeat_s,
        clock_tolerance_s=s.clock_tolerance_s,
    )


class SupervisionService:
    def __init__(
        self,
        settings: SupervisionSettings,
        session_factory: sessionmaker[Session],
        metrics: HubMetrics,
        sinks: list[EventSink] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.settings = settings
        self.policy = policy_of(settings)
        self.factory = session_factory
        self.metrics = metrics
        self.sinks = sinks if sinks is not None else []  # shared: sinks added later are seen
        self.clock = clock
        self._since: dict[tuple[str, str | None], dt.datetime] = {}
        self._last_sensor_tick: dt.datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._threads = ThreadWork()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="supervision")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._threads.drain()

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("supervision tick failed; next tick in %.1f s", self.settings.tick_s)
            await asyncio.sleep(self.settings.tick_s)

    async def tick(self) -> list[ConditionChange]:
        """One round: record transitions, notify sinks, return what this worker changed."""
        now = self.clock()
        elapsed = None if self._last_sensor_tick is None else (now - self._last_sensor_tick).total_seconds()
        # sensors are checked less often (there are many); a clock stepped back counts as due
        with_sensors = elapsed is None or elapsed < 0 or elapsed >= self.settings.sensor_tick_s
        changes = await self._threads.run(self._tick_db, now, with_sensors)
        if with_sensors:
            self._last_sensor_tick = now
        if changes:
            for sink in self.sinks:
                try:
                    await sink.conditions_changed(changes)
                except Exception:
                    self.metrics.sink_errors.labels(type(sink).__name__).inc()
                    log.exception("sink %s failed on %d condition changes", type(sink).__name__, len(changes))
        return changes

    def _first_watched(self, key: tuple[str, str | None], now: dt.datetime) -> dt.datetime:
        return self._since.setdefault(key, now)

    def _gateways(self, session: Session, now: dt.datetime, keys: set[Key]) -> list[GatewayView]:
        cutoff = now - dt.timedelta(seconds=self.policy.gateway_min_silence_s)
        flagged = {
            g for k, g, s in keys if g is not None and s is None and k in {c.value for c in GATEWAY_KINDS}
        }
        conds = [
            GatewayState.online.is_(False),
            GatewayState.last_seen_at.is_(None),
            GatewayState.last_seen_at < cutoff,
            # a bad clock: few gateways (the rest restore through ``flagged``)
            GatewayState.clock_offset_s > self.policy.clock_tolerance_s,
            GatewayState.clock_offset_s < -self.policy.clock_tolerance_s,
        ]
        if flagged:
            conds.append(GatewayState.gateway_id.in_(sorted(flagged)))
        views = []
        for row in session.scalars(select(GatewayState).where(or_(*conds))):
            status = row.last_status or {}
            hb = status.get("heartbeat_s")
            views.append(
                GatewayView(
                    row.gateway_id,
                    row.online,
                    row.last_seen_at,
                    hb if isinstance(hb, int) else None,
                    self._first_watched((row.gateway_id, None), now),
                    str(status.get("reason", "")) if not row.online else "",
                    row.status_at,
                    row.clock_offset_s,
                )
            )
        never_seen = (
            select(Gateway.id)
            .outerjoin(GatewayState, GatewayState.gateway_id == Gateway.id)
            .where(GatewayState.gateway_id.is_(None))
        )
        for gw in session.scalars(never_seen):
            views.append(GatewayView(gw, True, None, None, self._first_watched((gw, None), now)))
        return views

    def _sensors(self, session: Session, now: dt.datetime, keys: set[Key]) -> list[SensorView]:
        """The sensors that may change state now: never heard, not heard within the shortest
        deadline of any sensor (a superset of the silent ones), or with an open condition
        (to restore). Filtered in SQL: loading every sensor each round cost ~200 ms of CPU
        at 10,000 homes (31,000 sensors), on the process that also routes alarms
        (``safehome bench supervision``)."""
        shortest = session.scalar(select(func.min(Sensor.interval_s)))
        if shortest is None:
            return []
        cutoff = now - dt.timedelta(seconds=self.policy.sensor_deadline_s(shortest))
        cols = select(Sensor.gateway_id, Sensor.id, Sensor.interval_s, SensorState.last_seen_at).outerjoin(
            SensorState, (SensorState.gateway_id == Sensor.gateway_id) & (SensorState.sensor_id == Sensor.id)
        )
        late = or_(SensorState.last_seen_at.is_(None), SensorState.last_seen_at < cutoff)
        rows: list[tuple[str, str, int, dt.datetime | None]] = [
            (g, s, interval, last) for g, s, interval, last in session.execute(cols.where(late))
        ]
        flagged = {(g, s) for k, g, s in keys if k == ConditionKind.SENSOR_SILENT.value and g and s}
        loaded = {(g, s) for g, s, _i, _l in rows}
        wanted = sorted({g for g, s in flagged - loaded})
        for start in range(0, len(wanted), 500):
            for g, s, interval, last in session.execute(
                cols.where(Sensor.gateway_id.in_(wanted[start : start + 500]))
            ):
                if (g, s) in flagged and (g, s) not in loaded:
                    rows.append((g, s, interval, last))
        return [
            SensorView(g, s, interval, last, self._first_watched((g, s), now))
            for g, s, interval, last in rows
        ]

    def _tick_db(self, now: dt.datetime, with_sensors: bool) -> list[ConditionChange]:
        # Read without the write lock (SQLite: BEGIN DEFERRED), then write in a transaction
        # of its own, so the ingest never waits for this scan. The writes are guarded
        # (ON CONFLICT / state = 'open'), so the gap between the two is harmless.
        with self.factory() as session:
            read_only(session)  # begins the (read) transaction; closing the session ends it
            keys = open_keys(session, GATEWAY_KINDS | {ConditionKind.SENSOR_SILENT})
            gateways = self._gateways(session, now, keys)
            sensors = self._sensors(session, now, keys) if with_sensors else []
            # a full count: with the sensor round (every sensor_tick_s), not every second
            online = (
                session.scalar(select(func.count()).select_from(GatewayState).where(GatewayState.online))
                if with_sensors
                else None
            )
        if online is not None:
            self.metrics.gateways_online.set(online)
        transitions = evaluate(now, gateways, sensors, keys, self.policy)
        changes: list[ConditionChange] = []
        # in chunks: a power cut opening 2,000 conditions in one transaction held SQLite's
        # write lock (and a smoke alarm's transaction behind it) for the whole round
        for start in range(0, len(transitions), WRITE_CHUNK):
            with self.factory() as session, session.begin():
                for t in transitions[start : start + WRITE_CHUNK]:
                    change = self._apply(session, t, now)
                    if change is not None:
                        changes.append(change)
        for c in changes:
            self.metrics.conditions.labels(c.kind, c.state).inc()
            log.warning(
                "condition %s %s gateway=%s sensor=%s %s",
                c.kind,
                c.state,
                c.gateway_id,
                c.sensor_id,
                c.detail,
            )
        return changes

    @staticmethod
    def _apply(session: Session, t: Transition, now: dt.datetime) -> ConditionChange | None:
        if t.action is Action.OPEN:
            return open_condition(session, t.kind, t.gateway_id, t.sensor_id, now, t.detail)
        return restore_condition(session, t.kind, t.gateway_id, t.sensor_id, now, t.detail)
