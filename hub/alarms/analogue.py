"""The analogue watch: gas %LEL and CO ppm readings that cross their threshold raise or
restore an alarm (with hysteresis, ``hub/alarms/rules.py``).

Told of every stored telemetry message, so it must be cheap: readings that cannot change
anything (below the raise level with no open analogue alarm for that sensor, or inside the
hysteresis band) are dropped without touching the database, from a set of the open
analogue alarms refreshed with every re-check; the rest are evaluated in the background.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms.engine.decide import AlarmEngine, open_key
from hub.alarms.errors import AlarmError
from hub.alarms.metrics import AlarmMetrics
from hub.alarms.rules import DEFAULT_THRESHOLDS, Reading, analogue_candidates
from hub.alarms.store.models import Alarm
from hub.db.engine import read_only
from hub.db.errors import RetriesExhausted
from protocols import Telemetry

log = logging.getLogger(__name__)


class AnalogueWatch:
    def __init__(self, engine: AlarmEngine, sessions: sessionmaker[Session], metrics: AlarmMetrics) -> None:
        self.engine = engine
        self.sessions = sessions
        self.metrics = metrics
        self.running = False  #: False (tests, tools): readings are evaluated before returning
        #: open_keys of open analogue-kind alarms, refreshed with every re-check
        self._open: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def telemetry_stored(self, batches: Sequence[tuple[Telemetry, dt.datetime]]) -> None:
        """Evaluate the readings that may cross a threshold; ingest never waits for them."""
        candidates = [
            reading
            for tm, received_at in batches
            for reading in analogue_candidates(tm, received_at, self._is_open)
        ]
        if not candidates:
            return
        if not self.running:
            await self._evaluate(candidates)
            return
        task = asyncio.create_task(self._evaluate(candidates), name="alarm-readings")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _evaluate(self, readings: Sequence[Reading]) -> None:
        for reading in readings:
            th = reading.thresholds[reading.metric]
            okey = open_key((reading.gateway_id, reading.sensor_id, th.kind))
            try:
                result = await asyncio.to_thread(self.engine.handle_reading, reading)
            except (AlarmError, RetriesExhausted):
                log.exception("reading %s/%s %s not evaluated", reading.gateway_id, reading.sensor_id,
                              reading.metric)
                continue
            if result.decision == "ignore":
                continue
            self.metrics.decisions.labels(result.decision).inc()
            if reading.value >= th.raise_at:
                self._open.add(okey)
            elif reading.value <= th.clear_at:
                self._open.discard(okey)

    def _is_open(self, gateway_id: str, sensor_id: str, kind: str) -> bool:
        return open_key((gateway_id, sensor_id, kind)) in self._open

    def refresh(self) -> None:
        """Which sensors have an open, unrestored alarm of an analogue kind (any worker's)."""
        kinds = {th.kind for th in DEFAULT_THRESHOLDS.values()}
        with self.sessions() as s:
            keys = read_only(s).scalars(
                select(Alarm.open_key).where(
                    Alarm.open_key.is_not(None), Alarm.restored_at.is_(None), Alarm.kind.in_(kinds)
                )
            ).all()
        self._open = {k for k in keys if k is not None}
