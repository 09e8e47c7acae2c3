"""Open the configured time-series store (``sql``, the default, or ``influx``)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Engine

from hub.timeseries.base import TimeSeriesStore
from hub.timeseries.influx import InfluxSettings, InfluxTimeSeriesStore
from hub.timeseries.sql import SqlTimeSeriesStore

Backend = Literal["sql", "influx"]


def open_store(
    backend: Backend, *, engine: Engine | None = None, influx: InfluxSettings | None = None
) -> TimeSeriesStore:
    """``sql`` writes into the hub database behind ``engine``; ``influx`` needs ``influx``."""
    if backend == "sql":
        if engine is None:
            raise ValueError("the sql time-series backend needs the hub database engine")
        return SqlTimeSeriesStore(engine)
    if backend == "influx":
        if influx is None:
            raise ValueError("the influx time-series backend needs InfluxSettings (url, token, org, bucket)")
        return InfluxTimeSeriesStore(influx)
    raise ValueError(f"unknown time-series backend {backend!r} (sql or influx)")
