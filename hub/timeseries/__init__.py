"""Time-series storage of telemetry readings: one interface, SQL and InfluxDB backends."""

from hub.timeseries.base import Point, Sample, TimeSeriesStore

__all__ = ["Point", "Sample", "TimeSeriesStore"]
