"""The time-series store the hub's settings ask for (SQL on the hub database by default, or
InfluxDB), opened with :func:`hub.timeseries.factory.open_store`."""

from __future__ import annotations

from sqlalchemy import Engine

from hub.db.engine import make_engine
from hub.settings import SettingsError, TimeseriesSettings
from hub.timeseries import TimeSeriesStore
from hub.timeseries.factory import open_store
from hub.timeseries.influx import InfluxSettings


def make_timeseries(s: TimeseriesSettings, engine: Engine) -> TimeSeriesStore:
    if s.backend == "sql":
        return open_store("sql", engine=make_engine(s.url) if s.url else engine)
    if not s.url:
        raise SettingsError("timeseries.backend = influx needs timeseries.url")
    token = s.token.get_secret_value() if s.token else ""
    # overflow="reject": past the writer's bound, telemetry is not acked and stays in the
    # gateways' buffers (resent later) instead of being dropped at the hub.
    influx = InfluxSettings(url=s.url, token=token, org=s.org, bucket=s.bucket, overflow="reject")
    return open_store("influx", influx=influx)
