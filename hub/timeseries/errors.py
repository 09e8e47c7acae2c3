"""Errors of the time-series stores.

``TimeSeriesError``
  ├── ``WriteError``   readings could not be stored (the caller must not ack them)
  │     └── ``BackpressureError``  too many points waiting for the server (overflow="reject")
  └── ``QueryError``   a query failed or was malformed
"""

from __future__ import annotations


class TimeSeriesError(Exception):
    """Base of the time-series errors."""


class WriteError(TimeSeriesError):
    pass


class BackpressureError(WriteError):
    pass


class QueryError(TimeSeriesError):
    pass
