"""Tables of the SQL time-series backend.

``readings`` holds raw points keyed by (gateway, sensor, metric, ts): the key is the index
the queries need, and it makes a resent telemetry batch idempotent (ON CONFLICT DO NOTHING).
``ts`` is Unix epoch milliseconds (an integer is cheaper to write, compare and bucket than a
timestamp type, and the same on both databases). ``readings_rollup`` holds the downsampled
buckets that replace raw points older than the raw retention (see :mod:`.retention`).
On SQLite both are WITHOUT ROWID tables: the primary key *is* the table, no second b-tree.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Double, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base

ID = String(64)


class ReadingRow(Base):
    __tablename__ = "readings"
    __table_args__ = {"sqlite_with_rowid": False}

    gateway_id: Mapped[str] = mapped_column(ID, primary_key=True)
    sensor_id: Mapped[str] = mapped_column(ID, primary_key=True)
    metric: Mapped[str] = mapped_column(ID, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger(), primary_key=True, autoincrement=False)
    value: Mapped[float] = mapped_column(Double())


class RollupRow(Base):
    """One bucket of ``bucket_ms`` starting at ``ts``: mean, min, max and count of raw values."""

    __tablename__ = "readings_rollup"
    __table_args__ = {"sqlite_with_rowid": False}

    gateway_id: Mapped[str] = mapped_column(ID, primary_key=True)
    sensor_id: Mapped[str] = mapped_column(ID, primary_key=True)
    metric: Mapped[str] = mapped_column(ID, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger(), primary_key=True, autoincrement=False)
    bucket_ms: Mapped[int] = mapped_column(BigInteger())
    value: Mapped[float] = mapped_column(Double())
    min: Mapped[float] = mapped_column(Double())
    max: Mapped[float] = mapped_column(Double())
    n: Mapped[int] = mapped_column(Integer())
