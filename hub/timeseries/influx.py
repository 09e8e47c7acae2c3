"""InfluxDB backend (InfluxDB 2.x/3.x write API, through ``influxdb-client``).

Writes go to the client's batching ``WriteApi`` (background thread: batches by size or
interval, retries with exponential back-off). The client's own queue is unbounded, so this
store bounds it: at most ``max_pending`` points may be accepted and not yet written or
failed; beyond that, new points are *dropped and counted* instead of growing memory or
blocking the ingest loop. Telemetry is the only thing written here; alarms never are.

Each reading becomes ``<measurement>,gw=<gateway>,sensor=<sensor> <metric>=<value> <ms>``
(VictoriaMetrics, which accepts this API, names the series ``<measurement>_<metric>``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import WriteOptions
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from reactivex.scheduler import ThreadPoolScheduler
from urllib3.exceptions import HTTPError

from hub.timeseries.base import Point, Sample, to_ms
from hub.timeseries.errors import BackpressureError, QueryError
from hub.timeseries.victoria import export_query

log = logging.getLogger(__name__)

#: Shortest interval between two log lines about failing writes.
LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class InfluxSettings:
    url: str
    token: str
    org: str
    bucket: str
    measurement: str = "reading"
    batch_size: int = 5_000
    flush_interval_ms: int = 1_000
    retry_interval_ms: int = 1_000
    max_retries: int = 8
    max_retry_delay_ms: int = 30_000
    max_retry_time_ms: int = 120_000
    #: Points accepted but not yet written (or finally failed) before new ones are dropped.
    max_pending: int = 200_000
    #: What to do with points beyond ``max_pending``: ``drop`` them (counted), or ``reject``
    #: the whole ``write`` with :class:`BackpressureError` so that the caller does not ack
    #: the telemetry and the gateway resends it later from its durable buffer.
    overflow: Literal["drop", "reject"] = "drop"
    #: How long ``close`` waits for buffered points to be written.
    max_close_wait_ms: int = 10_000
    timeout_ms: int = 10_000
    #: How readings are read back: ``flux`` (InfluxDB 2/3) or ``victoria`` (VictoriaMetrics'
    #: ``/api/v1/export``, hub/timeseries/victoria.py: it takes the writes, not Flux).
    query_api: Literal["flux", "victoria"] = "flux"


@dataclass(frozen=True)
class WriterStats:
    accepted: int
    written: int
    dropped: int  #: refused because ``max_pending`` points were in flight (overflow="drop")
    rejected: int  #: refused with BackpressureError (overflow="reject"); the caller kept them
    failed: int  #: given up on after retries, or refused by the server
    invalid: int  #: not representable (NaN/inf)
    retries: int
    pending: int


def _escape(value: str) -> str:
    """Line-protocol escaping of tag keys/values and field keys."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def line(point: Point, measurement: str = "reading") -> str | None:
    """One point in line protocol (millisecond precision); None for NaN/inf values."""
    value = float(point.value)
    if not math.isfinite(value):
        return None
    return (
        f"{_escape(measurement)},gw={_escape(point.gateway_id)},sensor={_escape(point.sensor_id)} "
        f"{_escape(point.metric)}={value!r} {to_ms(point.ts)}"
    )


def _flux_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def flux_query(
    bucket: str,
    measurement: str,
    gateway_id: str,
    sensor_id: str,
    metric: str,
    start: dt.datetime,
    end: dt.datetime,
    every: dt.timedelta | None = None,
) -> str:
    """The Flux query behind :meth:`InfluxTimeSeriesStore.query` (plain function, testable)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise QueryError("start and end must be timezone-aware")
    if end < start:
        raise QueryError(f"end {end.isoformat()} is before start {start.isoformat()}")
    parts = [
        f"from(bucket: {_flux_string(bucket)})",
        f"range(start: {start.astimezone(dt.UTC).isoformat().replace('+00:00', 'Z')}, "
        f"stop: {end.astimezone(dt.UTC).isoformat().replace('+00:00', 'Z')})",
        f"filter(fn: (r) => r._measurement == {_flux_string(measurement)} and r.gw == {_flux_string(gateway_id)}"
        f" and r.sensor == {_flux_string(sensor_id)} and r._field == {_flux_string(metric)})",
    ]
    if every is not None:
        every_ms = int(every.total_seconds() * 1000)
        if every_ms <= 0:
            raise QueryError(f"every must be positive, got {every}")
        parts.append(f'aggregateWindow(every: {every_ms}ms, fn: mean, createEmpty: false, timeSrc: "_start")')
    parts += ['keep(columns: ["_time", "_value"])', 'sort(columns: ["_time"])']
    return "\n  |> ".join(parts)


def _lines_in(data: Any) -> int:
    if isinstance(data, bytes):
        return data.count(b"\n") + 1 if data else 0
    if isinstance(data, str):
        return data.count("\n") + 1 if data else 0
    return 1


class InfluxTimeSeriesStore:
    """:class:`~hub.timeseries.TimeSeriesStore` writing to InfluxDB (or anything speaking
    its ``/api/v2/write``). ``write`` never blocks on the network."""

    def __init__(self, settings: InfluxSettings | None = None, **kwargs: Any) -> None:
        """Pass :class:`InfluxSettings`, or its fields as keywords (url, token, org, bucket, …)."""
        if settings is None:
            settings = InfluxSettings(**kwargs)
        elif kwargs:
            raise TypeError("pass either settings or keyword fields, not both")
        self.settings = settings
        self._lock = threading.Lock()
        self._accepted = self._done = self._written = self._dropped = self._failed = self._invalid = 0
        self._retries = self._rejected = self._suppressed = 0
        self._last_log = -LOG_EVERY_S
        self._client = InfluxDBClient(
            url=settings.url, token=settings.token, org=settings.org, timeout=settings.timeout_ms
        )
        self._scheduler = ThreadPoolScheduler(max_workers=1)  # own thread, not the library's shared default
        self._write_api = self._client.write_api(
            write_options=WriteOptions(
                batch_size=settings.batch_size,
                flush_interval=settings.flush_interval_ms,
                jitter_interval=0,
                retry_interval=settings.retry_interval_ms,
                max_retries=settings.max_retries,
                max_retry_delay=settings.max_retry_delay_ms,
                max_retry_time=settings.max_retry_time_ms,
                exponential_base=2,
                max_close_wait=settings.max_close_wait_ms,
                write_scheduler=self._scheduler,
            ),
            success_callback=self._on_success,
            error_callback=self._on_error,
            retry_callback=self._on_retry,
        )
        self._closed = False

    # --- callbacks (run on the client's writer thread) ---------------------------------

    def _on_success(self, _conf: Any, data: Any) -> None:
        n = _lines_in(data)
        with self._lock:
            self._written += n
            self._done += n

    def _on_error(self, _conf: Any, data: Any, exc: BaseException) -> None:
        n = _lines_in(data)
        self._log_limited(logging.ERROR, "time-series batch of %d points failed for good: %s", n, exc)
        with self._lock:
            self._failed += n
            self._done += n

    def _on_retry(self, _conf: Any, data: Any, exc: BaseException) -> None:
        self._log_limited(
            logging.WARNING, "time-series batch of %d points: retrying after %s", _lines_in(data), exc
        )
        with self._lock:
            self._retries += 1

    def _log_limited(self, level: int, msg: str, *args: object) -> None:
        """At most one log line per ``LOG_EVERY_S`` (a dead server fails every batch)."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_log < LOG_EVERY_S:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last_log = self._suppressed, 0, now
        if suppressed:
            msg += f" ({suppressed} similar messages suppressed)"
        log.log(level, msg, *args)

    # --- TimeSeriesStore ------------------------------------------------------------------

    @property
    def pending(self) -> int:
        with self._lock:
            return self._accepted - self._done

    def write(self, readings: Sequence[Point]) -> None:
        if self._closed:
            raise RuntimeError("write on a closed InfluxTimeSeriesStore")
        lines: list[str] = []
        invalid = 0
        for p in readings:
            text = line(p, self.settings.measurement)
            if text is None:
                invalid += 1
            else:
                lines.append(text)
        with self._lock:
            self._invalid += invalid
            room = max(self.settings.max_pending - (self._accepted - self._done), 0)
            if len(lines) > room and self.settings.overflow == "reject":
                self._rejected += len(lines)
                raise BackpressureError(
                    f"{self._accepted - self._done} points waiting for the time-series server"
                    f" (limit {self.settings.max_pending}); {len(lines)} refused, not stored"
                )
            if len(lines) > room:
                self._dropped += len(lines) - room
                lines = lines[:room]
            self._accepted += len(lines)
        if lines:
            precision: Any = WritePrecision.MS  # a str constant, annotated as the class
            self._write_api.write(
                bucket=self.settings.bucket, org=self.settings.org, record=lines, write_precision=precision
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every accepted point is written or failed; False on timeout.

        (The client's own ``flush`` does nothing; batches leave at ``flush_interval_ms``.)
        """
        deadline = time.monotonic() + timeout
        while self.pending > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stats(self) -> WriterStats:
        with self._lock:
            return WriterStats(
                accepted=self._accepted,
                written=self._written,
                dropped=self._dropped,
                rejected=self._rejected,
                failed=self._failed,
                invalid=self._invalid,
                retries=self._retries,
                pending=self._accepted - self._done,
            )

    def query(
        self,
        gateway_id: str,
        sensor_id: str,
        metric: str,
        start: dt.datetime,
        end: dt.datetime,
        every: dt.timedelta | None = None,
    ) -> list[Sample]:
        if self.settings.query_api == "victoria":
            with httpx.Client(timeout=self.settings.timeout_ms / 1000) as http:
                return export_query(
                    http, self.settings.url, self.settings.measurement, gateway_id, sensor_id, metric, start, end, every
                )
        flux = flux_query(
            self.settings.bucket, self.settings.measurement, gateway_id, sensor_id, metric, start, end, every
        )
        try:
            tables = self._client.query_api().query(flux, org=self.settings.org)
        except (ApiException, HTTPError, OSError) as exc:
            raise QueryError(f"InfluxDB query failed: {exc}") from exc
        out: list[Sample] = []
        for table in tables:
            record: Any  # FluxRecord's accessors are untyped
            for record in table.records:
                ts = record.get_time()
                if ts is not None and end > ts >= start:
                    out.append((ts.astimezone(dt.UTC), float(record.get_value())))
        out.sort(key=lambda s: s[0])
        return out

    def close(self) -> None:
        """Write what is buffered (waiting at most ``max_close_wait_ms``), then close."""
        if self._closed:
            return
        self._closed = True
        write_api: Any = self._write_api  # untyped close()
        client: Any = self._client
        write_api.close()
        client.close()
        self._scheduler.executor.shutdown(wait=False)
