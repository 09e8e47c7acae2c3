"""Build the configured time-series store (SQL on the hub database by default, or InfluxDB)."""

from __future__ import annotations

import importlib

from sqlalchemy import Engine

from hub.db.engine import make_engine
from hub.settings import SettingsError, TimeseriesSettings
from hub.timeseries import TimeSeriesStore


def make_timeseries(s: TimeseriesSettings, engine: Engine) -> TimeSeriesStore:
    if s.backend == "sql":
        sql = importlib.import_module("hub.timeseries.sql")
        store: TimeSeriesStore = sql.SqlTimeSeriesStore(make_engine(s.url) if s.url else engine)
        return store
    if not s.url:
        raise SettingsError("timeseries.backend = influx needs timeseries.url")
    influx = importlib.import_module("hub.timeseries.influx")
    token = s.token.get_secret_value() if s.token else ""
    store = influx.InfluxTimeSeriesStore(url=s.url, token=token, org=s.org, bucket=s.bucket)
    return store
