"""Connectivity state and supervisory conditions (written by ingest/supervision, read by alarms).

These tables are keyed by the ids seen on the wire and deliberately carry no foreign key
to the registry: a gateway that talks before it is registered is still recorded.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Boolean, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base

ID = String(64)


class ConditionKind(enum.StrEnum):
    GATEWAY_SILENT = "gateway_silent"
    SENSOR_SILENT = "sensor_silent"
    GATEWAY_OFFLINE = "gateway_offline"
    BROKER_DROPPING = "broker_dropping"
    GATEWAY_FLOODING = "gateway_flooding"
    CLOCK_SUSPECT = "clock_suspect"


class ConditionState(enum.StrEnum):
    OPEN = "open"
    RESTORED = "restored"


class GatewayState(Base):
    """Last known connectivity of a gateway (from status messages, Last-Will and traffic).

    ``online`` and ``last_status`` are written by live status messages only, newest hub
    receipt (``status_at``) wins: with several lanes or workers, a flush of older state can
    come after a newer one, and traffic heard before a Last-Will must never mark the gateway
    online again (it would be reported silent after ~60 s instead of offline after ~10 s).
    ``clock_offset_s`` is device time minus hub receipt of the last live, synced status.
    """

    __tablename__ = "gateway_state"

    gateway_id: Mapped[str] = mapped_column(ID, primary_key=True)
    online: Mapped[bool] = mapped_column(Boolean(), default=False)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(default=None, index=True)
    last_status: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    last_seq: Mapped[int | None] = mapped_column(default=None)
    #: hub receipt of the live status that set ``online`` (for a Last-Will: when it came)
    status_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    clock_offset_s: Mapped[float | None] = mapped_column(default=None)


class SensorState(Base):
    """When a sensor was last heard from (any event or reading carrying its id)."""

    __tablename__ = "sensor_state"

    gateway_id: Mapped[str] = mapped_column(ID, primary_key=True)
    sensor_id: Mapped[str] = mapped_column(ID, primary_key=True)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(default=None, index=True)


class Condition(Base):
    """A supervisory condition (silence, broker dropping messages) and its restore.

    ``gateway_id`` is NULL for hub-wide conditions (``broker_dropping``), ``sensor_id`` NULL
    for gateway-level ones. At most one *open* condition exists per (gateway, sensor, kind):
    a partial unique index enforces it, so two supervisors cannot open it twice.
    """

    __tablename__ = "conditions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    gateway_id: Mapped[str | None] = mapped_column(ID, default=None, index=True)
    sensor_id: Mapped[str | None] = mapped_column(ID, default=None)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default=ConditionState.OPEN.value, index=True)
    opened_at: Mapped[dt.datetime]
    restored_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    detail: Mapped[str] = mapped_column(Text(), default="")

    __table_args__ = (
        Index(
            "uq_conditions_open",
            text("coalesce(gateway_id, '')"),
            text("coalesce(sensor_id, '')"),
            "kind",
            unique=True,
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
    )
