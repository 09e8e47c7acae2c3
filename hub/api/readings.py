"""``/api/v1/…/readings``: a sensor's or a home's readings of one metric over a range,
raw or downsampled (``every``: mean per epoch-aligned bucket, labelled with its start),
from whichever time-series backend the hub writes (SQL, InfluxDB, VictoriaMetrics).

Bounds keep one request cheap: a range of at most :data:`MAX_RANGE`, raw samples only for
ranges up to :data:`MAX_RAW_RANGE`, at most :data:`MAX_POINTS` buckets per series.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select

from hub.api.answers import problems
from hub.api.auth import Context, home_scope, require
from hub.api.context import ApiContext
from hub.api.gateways import scoped_gateway
from hub.api.homes import scoped_home
from hub.api.problems import ApiProblem, invalid_field
from hub.api.scopes import READINGS_READ
from hub.api.tokens import Principal
from hub.db.engine import read_only
from hub.registry.models import Gateway, Home, Sensor
from hub.timeseries.base import TimeSeriesStore
from hub.timeseries.errors import TimeSeriesError

router = APIRouter(tags=["readings"])
Reader = Annotated[Principal, Depends(require(READINGS_READ))]
MAX_RANGE = dt.timedelta(days=400)
MAX_RAW_RANGE = dt.timedelta(days=2)
MAX_POINTS = 10_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: Raw samples per series at most (a sensor reporting every second for two days has 172,800).
MAX_RAW_POINTS = 2 * MAX_POINTS
METRIC = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Metric = Annotated[str, Query(pattern=METRIC, description="e.g. gas_lel, battery_v, temperature_c")]
Every = Annotated[
    int | None, Query(ge=1, le=31 * 86_400, description="bucket width in seconds; absent: raw samples")
]


class Series(BaseModel):
    gateway_id: str
    sensor_id: str
    metric: str
    points: list[tuple[dt.datetime, float]] = Field(description="[time, value], oldest first")
    truncated: bool = Field(
        default=False, description="more raw samples than 20,000: the oldest 20,000 are given"
    )


class Readings(BaseModel):
    since: dt.datetime
    until: dt.datetime
    every_s: int | None
    series: list[Series]


def _window(
    since: dt.datetime, until: dt.datetime | None, every_s: int | None, now: dt.datetime
) -> dt.datetime:
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and bound.tzinfo is None:
            raise invalid_field(("query", name), "needs a timezone (e.g. Z)")
    end = until if until is not None else now
    try:
        span, ancient = end - since, since < EPOCH
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
        ancient = True
    if ancient:
        raise invalid_field(("query", "since"), "before 1970-01-01T00:00Z: no readings are that old")
    if end <= since:
        raise invalid_field(("query", "until"), f"must be after since ({since.isoformat()})")
    if span > MAX_RANGE:
        raise invalid_field(("query", "since"), f"range of {span} is over the limit of {MAX_RANGE.days} days")
    if every_s is None and span > MAX_RAW_RANGE:
        raise invalid_field(
            ("query", "every"),
            f"raw samples only for ranges up to {MAX_RAW_RANGE.days} days: give every (seconds)",
        )
    if every_s is not None and span.total_seconds() / every_s > MAX_POINTS:
        least = int(span.total_seconds() // MAX_POINTS) + 1
        raise invalid_field(
            ("query", "every"), f"over {MAX_POINTS} buckets: at least {least} s for this range"
        )
    return end


def _store(ctx: ApiContext) -> TimeSeriesStore:
    if ctx.timeseries is None:
        raise ApiProblem(503, "timeseries_unavailable", "no time-series store on this hub worker")
    return ctx.timeseries


def _query(
    store: TimeSeriesStore,
    sensors: list[tuple[str, str]],
    metric: str,
    since: dt.datetime,
    until: dt.datetime,
    every_s: int | None,
) -> list[Series]:
    every = dt.timedelta(seconds=every_s) if every_s is not None else None
    out = []
    for gw, sensor in sensors:
        try:
            samples = store.query(gw, sensor, metric, since, until, every)
        except TimeSeriesError as exc:
            raise ApiProblem(503, "timeseries_unavailable", f"time-series store: {exc}") from exc
        cut = len(samples) > MAX_RAW_POINTS
        out.append(
            Series(
                gateway_id=gw, sensor_id=sensor, metric=metric, points=samples[:MAX_RAW_POINTS], truncated=cut
            )
        )
    return out


@router.get(
    "/gateways/{gateway_id}/sensors/{sensor_id}/readings",
    response_model=Readings,
    responses=problems({404: "no such gateway in the caller's region, or no such sensor of it"}),
)
async def sensor_readings(
    gateway_id: str,
    sensor_id: str,
    p: Reader,
    ctx: Context,
    metric: Metric,
    since: dt.datetime,
    until: dt.datetime | None = None,
    every: Every = None,
) -> Readings:
    """One sensor's readings of ``metric`` in ``[since, until)`` (until: now)."""
    end = _window(since, until, every, ctx.clock.now())
    store = _store(ctx)

    def work() -> list[Series]:
        with ctx.sessions() as s:
            scoped_gateway(read_only(s), p, gateway_id)
            if s.get(Sensor, (gateway_id, sensor_id)) is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no such sensor of this gateway")
        return _query(store, [(gateway_id, sensor_id)], metric, since, end, every)

    return Readings(since=since, until=end, every_s=every, series=await run_in_threadpool(work))


@router.get(
    "/homes/{home_id}/readings",
    response_model=Readings,
    responses=problems({404: "no such home in the caller's region"}),
)
async def home_readings(
    home_id: str,
    p: Reader,
    ctx: Context,
    metric: Metric,
    since: dt.datetime,
    until: dt.datetime | None = None,
    every: Every = None,
    kind: Annotated[
        str | None, Query(pattern=METRIC, description="only sensors of this kind (e.g. gas)")
    ] = None,
) -> Readings:
    """Every sensor of the home (optionally of one ``kind``): one series each, in sensor
    order; a sensor without readings of ``metric`` has an empty series."""
    end = _window(since, until, every, ctx.clock.now())
    store = _store(ctx)

    def work() -> list[Series]:
        with ctx.sessions() as s:
            scoped_home(read_only(s), p, home_id)
            q = (
                select(Sensor.gateway_id, Sensor.id)
                .join(Gateway, Gateway.id == Sensor.gateway_id)
                .join(Home, Home.id == Gateway.home_id)
                .where(Gateway.home_id == home_id, home_scope(p))
                .order_by(Sensor.gateway_id, Sensor.id)
            )
            if kind is not None:
                q = q.where(Sensor.kind == kind)
            sensors = [(g, x) for g, x in s.execute(q)]
        return _query(store, sensors, metric, since, end, every)

    return Readings(since=since, until=end, every_s=every, series=await run_in_threadpool(work))
