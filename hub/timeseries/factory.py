"""Open the configured time-series store (``sql``, the default, or ``influx``).

:func:`make_timeseries` opens the store the hub's settings ask for; :func:`open_store` is
the step below it (a backend name and what that backend needs).
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Engine

from hub.db.base import Base
from hub.db.engine import make_engine
from hub.settings import SettingsError, TimeseriesSettings
from hub.timeseries.base import TimeSeriesStore
from hub.timeseries.influx import InfluxSettings, InfluxTimeSeriesStore
from hub.timeseries.models import ReadingRow, RollupRow
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


def make_timeseries(s: TimeseriesSettings, engine: Engine) -> TimeSeriesStore:
    """The store of the hub's ``[timeseries]`` settings; ``engine`` is the hub database."""
    if s.backend == "sql":
        if not s.url:
            return open_store("sql", engine=engine)
        # A database of its own (e.g. a second SQLite file): bulk telemetry writes then never
        # hold the write lock that alarms, acks and the outbox need on the hub database.
        own = make_engine(s.url)
        tables = [Base.metadata.tables[t] for t in (ReadingRow.__tablename__, RollupRow.__tablename__)]
        Base.metadata.create_all(own, tables=tables)
        return open_store("sql", engine=own)
    if not s.url:
        raise SettingsError("timeseries.backend = influx needs timeseries.url")
    token = s.token.get_secret_value() if s.token else ""
    # overflow="reject": past the writer's bound, telemetry is not acked and stays in the
    # gateways' buffers (resent later) instead of being dropped at the hub.
    influx = InfluxSettings(
        url=s.url, token=token, org=s.org, bucket=s.bucket, overflow="reject", query_api=s.query
    )
    return open_store("influx", influx=influx)
