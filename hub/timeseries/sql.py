"""SQL time-series backend (the embedded default): raw readings plus downsampled rollups.

Writes are one ``executemany`` of plain tuples per call, straight to the DBAPI (no ORM
objects, no per-row SQLAlchemy processing): telemetry arrives at tens of thousands of
readings per second and the hub must keep up on SQLite. A point already stored (same
gateway, sensor, metric and ts: a resent telemetry batch) is ignored.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, and_, func, literal, select, union_all
from sqlalchemy.exc import SQLAlchemyError

from hub.timeseries.base import Point, Sample, from_ms, to_ms
from hub.timeseries.errors import QueryError, WriteError
from hub.timeseries.models import ReadingRow, RollupRow

_COLUMNS = "gateway_id, sensor_id, metric, ts, value"


def _placeholders(paramstyle: str, n: int) -> str:
    if paramstyle == "qmark":
        return ", ".join("?" * n)
    if paramstyle in ("format", "pyformat"):
        return ", ".join(["%s"] * n)
    if paramstyle == "numeric":
        return ", ".join(f":{i + 1}" for i in range(n))
    raise WriteError(f"unsupported DBAPI paramstyle {paramstyle!r}")


class SqlTimeSeriesStore:
    """:class:`~hub.timeseries.TimeSeriesStore` on the hub database (tables ``readings`` and
    ``readings_rollup`` of migration 0001). ``close`` does not dispose the engine it was given."""

    def __init__(self, engine: Engine, *, batch_size: int = 10_000) -> None:
        self.engine = engine
        self.batch_size = batch_size
        #: Points skipped because their value was NaN or infinite.
        self.invalid = 0
        self._postgres = engine.dialect.name == "postgresql"
        if self._postgres:
            # One statement per batch with five arrays: several times faster than executemany.
            self._insert_sql = (
                f"INSERT INTO readings ({_COLUMNS}) SELECT * FROM unnest("
                "%s::varchar[], %s::varchar[], %s::varchar[], %s::bigint[], %s::float8[]) ON CONFLICT DO NOTHING"
            )
        else:
            ph = _placeholders(engine.dialect.paramstyle, 5)
            self._insert_sql = f"INSERT INTO readings ({_COLUMNS}) VALUES ({ph}) ON CONFLICT DO NOTHING"

    def write(self, readings: Sequence[Point]) -> None:
        """Store ``readings`` in one transaction (all or none)."""
        if not readings:
            return
        rows: list[tuple[Any, ...]] = [
            (
                p.gateway_id,
                p.sensor_id,
                p.metric,
                p.ts if isinstance(p.ts, int) else to_ms(p.ts),
                float(p.value),
            )
            for p in readings
        ]
        finite = [r for r in rows if math.isfinite(r[4])]
        if len(finite) != len(rows):
            # NaN/inf cannot be stored; skip them (counted) rather than fail the good ones.
            self.invalid += len(rows) - len(finite)
            rows = finite
            if not rows:
                return
        try:
            with self.engine.begin() as conn:
                for start in range(0, len(rows), self.batch_size):
                    chunk = rows[start : start + self.batch_size]
                    if self._postgres:
                        columns = tuple(list(c) for c in zip(*chunk, strict=True))
                        conn.exec_driver_sql(self._insert_sql, columns)
                    else:
                        conn.exec_driver_sql(self._insert_sql, chunk)
        except SQLAlchemyError as exc:
            raise WriteError(f"storing {len(rows)} readings failed: {exc}") from exc

    def query(
        self,
        gateway_id: str,
        sensor_id: str,
        metric: str,
        start: dt.datetime,
        end: dt.datetime,
        every: dt.timedelta | None = None,
    ) -> list[Sample]:
        start_ms, end_ms = to_ms(start), to_ms(end)
        if end_ms < start_ms:
            raise QueryError(f"end {end.isoformat()} is before start {start.isoformat()}")
        raw = select(ReadingRow.ts, ReadingRow.value, literal(1).label("n")).where(
            and_(
                ReadingRow.gateway_id == gateway_id,
                ReadingRow.sensor_id == sensor_id,
                ReadingRow.metric == metric,
                ReadingRow.ts >= start_ms,
                ReadingRow.ts < end_ms,
            )
        )
        rolled = select(RollupRow.ts, RollupRow.value, RollupRow.n).where(
            and_(
                RollupRow.gateway_id == gateway_id,
                RollupRow.sensor_id == sensor_id,
                RollupRow.metric == metric,
                RollupRow.ts >= start_ms,
                RollupRow.ts < end_ms,
            )
        )
        both = union_all(raw, rolled).subquery()
        if every is None:
            stmt = select(both.c.ts, both.c.value).order_by(both.c.ts)
        else:
            every_ms = int(every.total_seconds() * 1000)
            if every_ms <= 0:
                raise QueryError(f"every must be positive, got {every}")
            bucket = (both.c.ts - both.c.ts % every_ms).label("bucket")
            # Weighted by n: a rollup row stands for n raw values.
            mean = func.sum(both.c.value * both.c.n) / func.sum(both.c.n)
            stmt = select(bucket, mean).group_by(bucket).order_by(bucket)
        try:
            with self.engine.connect() as conn:
                return [(from_ms(int(ts)), float(value)) for ts, value in conn.execute(stmt)]
        except SQLAlchemyError as exc:
            raise QueryError(f"time-series query failed: {exc}") from exc

    def close(self) -> None:
        """Nothing buffered: writes are synchronous."""
