"""Retention and downsampling of the SQL time series (a job the hub runs periodically).

Raw readings older than ``raw_retention`` are folded into ``readings_rollup`` buckets of
``bucket`` width (mean, min, max, count) and deleted; rollups older than
``rollup_retention`` are deleted. Only complete buckets are folded, and a bucket folded
twice (late readings) merges with the existing rollup, so the job can run at any time,
any number of times. Work is done one time slice per transaction to keep them short.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import BigInteger, Engine, delete, func, literal, select, text
from sqlalchemy.exc import SQLAlchemyError

from hub.db.dialect import dialect_insert
from hub.timeseries.base import to_ms
from hub.timeseries.models import ReadingRow, RollupRow

log = logging.getLogger(__name__)

#: PostgreSQL advisory lock taken by each slice transaction ("safehome-retention").
ADVISORY_LOCK_KEY = 0x5AFE_4E7E
#: Raw time covered by one transaction of the job.
SLICE = dt.timedelta(hours=6)


@dataclass(frozen=True)
class RetentionPolicy:
    raw_retention: dt.timedelta = dt.timedelta(days=30)
    bucket: dt.timedelta = dt.timedelta(hours=1)
    rollup_retention: dt.timedelta | None = dt.timedelta(days=5 * 365)


@dataclass
class RetentionReport:
    raw_deleted: int = 0
    rollups_written: int = 0
    rollups_deleted: int = 0


def _upsert_rollups(engine: Engine, lo: int, hi: int, bucket_ms: int) -> int:
    r = ReadingRow.__table__.c
    bucket = r.ts - r.ts % bucket_ms
    source = (
        select(
            r.gateway_id,
            r.sensor_id,
            r.metric,
            bucket,
            literal(bucket_ms, BigInteger()),
            func.avg(r.value),
            func.min(r.value),
            func.max(r.value),
            func.count(),
        )
        .where(r.ts >= lo, r.ts < hi)
        .group_by(r.gateway_id, r.sensor_id, r.metric, bucket)
    )
    stmt = dialect_insert(engine, RollupRow).from_select(
        ["gateway_id", "sensor_id", "metric", "ts", "bucket_ms", "value", "min", "max", "n"], source
    )
    ex = stmt.excluded
    t = RollupRow.__table__.c
    stmt = stmt.on_conflict_do_update(
        index_elements=["gateway_id", "sensor_id", "metric", "ts"],
        set_={
            "value": (t.value * t.n + ex.value * ex.n) / (t.n + ex.n),
            "min": func.min(t.min, ex.min) if engine.dialect.name == "sqlite" else func.least(t.min, ex.min),
            "max": func.max(t.max, ex.max)
            if engine.dialect.name == "sqlite"
            else func.greatest(t.max, ex.max),
            "n": t.n + ex.n,
        },
    )
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Several hub workers may run the job at once. Serialise the slices: the second
            # one then reads the raw rows after the first deleted them and folds nothing,
            # instead of folding the same readings twice. (SQLite serialises writers anyway.)
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        written = conn.execute(stmt).rowcount
        conn.execute(delete(ReadingRow).where(ReadingRow.ts >= lo, ReadingRow.ts < hi))
    return max(written, 0)


def apply_retention(
    engine: Engine, now: dt.datetime, policy: RetentionPolicy = RetentionPolicy()
) -> RetentionReport:
    """Fold old raw readings into rollups, delete expired rollups; return what was done."""
    report = RetentionReport()
    bucket_ms = int(policy.bucket.total_seconds() * 1000)
    if bucket_ms <= 0:
        raise ValueError("bucket must be positive")
    cutoff = to_ms(now - policy.raw_retention)
    cutoff -= cutoff % bucket_ms  # complete buckets only
    with engine.connect() as conn:
        oldest = conn.execute(select(func.min(ReadingRow.ts)).where(ReadingRow.ts < cutoff)).scalar()
        if oldest is not None:
            report.raw_deleted = int(
                conn.execute(
                    select(func.count()).select_from(ReadingRow).where(ReadingRow.ts < cutoff)
                ).scalar()
                or 0
            )
    if oldest is not None:
        slice_ms = max(int(SLICE.total_seconds() * 1000) // bucket_ms, 1) * bucket_ms
        lo = int(oldest) - int(oldest) % bucket_ms
        while lo < cutoff:
            hi = min(lo + slice_ms, cutoff)
            report.rollups_written += _upsert_rollups(engine, lo, hi, bucket_ms)
            lo = hi
    if policy.rollup_retention is not None:
        expire = to_ms(now - policy.rollup_retention)
        with engine.begin() as conn:
            report.rollups_deleted = max(
                conn.execute(delete(RollupRow).where(RollupRow.ts + RollupRow.bucket_ms <= expire)).rowcount,
                0,
            )
    return report


class RetentionService:
    """Runs :func:`apply_retention` every ``interval_s`` in a worker thread (start/stop like
    the hub's other services). Errors are logged and counted; the next run tries again."""

    def __init__(
        self,
        engine: Engine,
        policy: RetentionPolicy = RetentionPolicy(),
        interval_s: float = 3600.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.interval_s = interval_s
        self.clock = clock
        self.runs = 0
        self.failures = 0
        self.last_report: RetentionReport | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="timeseries-retention")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.last_report = await asyncio.to_thread(
                    apply_retention, self.engine, self.clock(), self.policy
                )
                self.runs += 1
                log.info("time-series retention: %s", self.last_report)
            except SQLAlchemyError:
                self.failures += 1
                log.exception("time-series retention failed; next attempt in %.0f s", self.interval_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval_s)
