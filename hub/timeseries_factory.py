"""The time-series store the hub's settings ask for (SQL on the hub database by default, or
InfluxDB), opened with :func:`hub.timeseries.factory.open_store`."""

from __future__ import annotations

from sqlalchemy import Engine

from hub.db.base import Base
from hub.db.engine import make_engine
from hub.settings import SettingsError, TimeseriesSettings
from hub.timeseries import TimeSeriesStore
from hub.timeseries.factory import open_store
from hub.timeseries.influx import InfluxSettings
from hub.timeseries.models import ReadingRow, RollupRow


def make_timeseries(s: TimeseriesSettings, engine: Engine) -> TimeSeriesStore:
    if s.backend == "sql":
        if not s.url:
            return open_store("sql", engine=engine)
        # A database of its own (e.g. a second SQLite file): bulk telemetry writes then never
        # hold the write lock that alarms, acks and the outbox need on the hub database.
        own = make_engine(s.url)
        Base.metadata.create_all(own, tables=[Base.metadata.tables[t] for t in (ReadingRow.__tablename__, RollupRow.__tablename__)])
        return open_store("sql", engine=own)
    if not s.url:
        raise SettingsError("timeseries.backend = influx needs timeseries.url")
    token = s.token.get_secret_value() if s.token else ""
    # overflow="reject": past the writer's bound, telemetry is not acked and stays in the
    # gateways' buffers (resent later) instead of being dropped at the hub.
    influx = InfluxSettings(url=s.url, token=token, org=s.org, bucket=s.bucket, overflow="reject")
    return open_store("influx", influx=influx)
