"""The time-series store interface and its plain data types."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable


class Point(NamedTuple):
    """One reading. ``ts`` is an aware datetime or Unix epoch milliseconds."""

    gateway_id: str
    sensor_id: str
    metric: str
    ts: dt.datetime | int
    value: float


#: (timestamp, value) as returned by queries; timestamps are aware UTC datetimes.
Sample = tuple[dt.datetime, float]


@runtime_checkable
class TimeSeriesStore(Protocol):
    def write(self, readings: Sequence[Point]) -> None:
        """Store ``readings``. Writing the same point twice stores it once (SQL) or
        overwrites it with the same value (InfluxDB)."""
        ...

    def query(
        self,
        gateway_id: str,
        sensor_id: str,
        metric: str,
        start: dt.datetime,
        end: dt.datetime,
        every: dt.timedelta | None = None,
    ) -> list[Sample]:
        """Samples with ``start <= ts < end``, oldest first. With ``every``, one sample per
        non-empty bucket of that width (aligned to the Unix epoch): the bucket start and
        the mean of its values."""
        ...

    def close(self) -> None: ...


def to_ms(ts: dt.datetime | int) -> int:
    """Epoch milliseconds of an aware datetime (or an int passed through)."""
    if isinstance(ts, int):
        return ts
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts.isoformat()} (use an aware UTC datetime)")
    return int(ts.timestamp() * 1000)


def from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
