"""Reading series back from VictoriaMetrics (the InfluxDB backend's writer target when the
server is VictoriaMetrics, which accepts InfluxDB line protocol but not Flux).

:func:`export_query` asks ``/api/v1/export`` for the raw samples of one series
(``<measurement>_<metric>{gw=…, sensor=…}``, as VictoriaMetrics names a line-protocol
field) and :func:`downsample` buckets them exactly like the SQL backend: aligned to the Unix
epoch, mean per non-empty bucket, labelled with the bucket start. Pure functions apart from
the one HTTP request.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

import httpx
import orjson

from hub.timeseries.base import Sample, from_ms
from hub.timeseries.errors import QueryError


def _label(value: str) -> str:
    """A PromQL/MetricsQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def series_selector(measurement: str, gateway_id: str, sensor_id: str, metric: str) -> str:
    return (
        f"{{__name__={_label(f'{measurement}_{metric}')},gw={_label(gateway_id)},sensor={_label(sensor_id)}}}"
    )


def parse_export(body: bytes, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
    """(ms, value) of every sample in ``[start_ms, end_ms)`` of an export answer (one JSON
    object per line and series), oldest first, one value per timestamp."""
    seen: dict[int, float] = {}
    for raw in body.splitlines():
        if not raw.strip():
            continue
        try:
            row = orjson.loads(raw)
            pairs = zip(row["timestamps"], row["values"], strict=True)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise QueryError(f"VictoriaMetrics export answered an unreadable line: {raw[:200]!r}") from exc
        for ts, value in pairs:
            good = isinstance(value, int | float) and math.isfinite(value)
            if good and isinstance(ts, int) and start_ms <= ts < end_ms:
                seen[ts] = float(value)
    return sorted(seen.items())


def downsample(samples: Iterable[tuple[int, float]], every_ms: int) -> list[tuple[int, float]]:
    """Mean per epoch-aligned bucket of ``every_ms`` (bucket start, mean), oldest first."""
    if every_ms <= 0:
        raise QueryError(f"every must be positive, got {every_ms} ms")
    sums: dict[int, tuple[float, int]] = {}
    for ts, value in samples:
        bucket = ts - ts % every_ms
        total, n = sums.get(bucket, (0.0, 0))
        sums[bucket] = (total + value, n + 1)
    return [(b, total / n) for b, (total, n) in sorted(sums.items())]


def export_query(
    client: httpx.Client,
    base_url: str,
    measurement: str,
    gateway_id: str,
    sensor_id: str,
    metric: str,
    start: dt.datetime,
    end: dt.datetime,
    every: dt.timedelta | None = None,
) -> list[Sample]:
    if start.tzinfo is None or end.tzinfo is None:
        raise QueryError("start and end must be timezone-aware")
    if end < start:
        raise QueryError(f"end {end.isoformat()} is before start {start.isoformat()}")
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    params = {
        "match[]": series_selector(measurement, gateway_id, sensor_id, metric),
        "start": f"{start_ms / 1000:.3f}",
        "end": f"{end_ms / 1000:.3f}",
    }
    try:
        r = client.get(f"{base_url.rstrip('/')}/api/v1/export", params=params)
    except httpx.HTTPError as exc:
        raise QueryError(f"VictoriaMetrics export failed: {exc}") from exc
    if r.status_code != 200:
        raise QueryError(f"VictoriaMetrics export answered {r.status_code}: {r.text[:300]}")
    samples = parse_export(r.content, start_ms, end_ms)
    if every is not None:
        samples = downsample(samples, int(every.total_seconds() * 1000))
    return [(from_ms(ts), v) for ts, v in samples]
