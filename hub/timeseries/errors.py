"""Errors of the time-series stores.

``TimeSeriesError``
  ├── ``WriteError``   readings could not be stored (the caller must not ack them)
  └── ``QueryError``   a query failed or was malformed
"""

from __future__ import annotations


class TimeSeriesError(Exception):
    """Base of the time-series errors."""


class WriteError(TimeSeriesError):
    pass


class QueryError(TimeSeriesError):
    pass
