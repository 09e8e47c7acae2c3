"""Alarm tables: alarms, their history (transitions and system steps), escalation timers,
per-home overrides, processed signals (exactly-once processing of events/conditions).

An alarm keeps a snapshot of the region it was routed to (home, workstation, subdistrict,
district): API scoping filters on these columns, and the record shows where the alarm went
even if the registry changes later. ``open_key`` is set while the alarm is open and NULL
once closed; its unique index is what makes "one open alarm per (gateway, sensor, kind)"
hold across hub workers. ``version`` is the optimistic lock of lifecycle transitions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.db.base import Base

ID = String(64)


class Alarm(Base):
    __tablename__ = "alarms"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  #: UUIDv7: time-ordered
    gateway_id: Mapped[str] = mapped_column(ID)
    sensor_id: Mapped[str] = mapped_column(ID, default="")  #: "" for the gateway itself
    kind: Mapped[str] = mapped_column(String(32))
    alarm_class: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), index=True)
    outcome: Mapped[str | None] = mapped_column(String(32), default=None)
    open_key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    version: Mapped[int] = mapped_column(default=1)
    #: the ``seq`` of this alarm's latest history line: every line (raise, acknowledge,
    #: escalate…) takes the next one, under the version lock, so it is gap-free per alarm
    event_seq: Mapped[int] = mapped_column(default=0, server_default="0")

    home_id: Mapped[str | None] = mapped_column(ID, default=None, index=True)
    workstation_id: Mapped[str | None] = mapped_column(ID, default=None)
    subdistrict_id: Mapped[str | None] = mapped_column(ID, default=None)
    district_id: Mapped[str | None] = mapped_column(ID, default=None)
    device_model: Mapped[str | None] = mapped_column(ID, default=None)
    location: Mapped[str] = mapped_column(String(200), default="")
    shift: Mapped[str] = mapped_column(String(8), default="")

    raised_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    count: Mapped[int] = mapped_column(default=1)
    restored_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    notified_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    on_site_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    responder: Mapped[str | None] = mapped_column(String(200), default=None)

    event_id: Mapped[str | None] = mapped_column(String(36), default=None)  #: the event that raised it
    last_event_id: Mapped[str | None] = mapped_column(String(36), default=None)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    #: the mass-event incident this alarm is a member of (see hub/alarms/storm.py): stored and
    #: restored on its own, routed only through the incident
    incident_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)

    history: Mapped[list[AlarmTransition]] = relationship(
        back_populates="alarm", order_by="AlarmTransition.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_alarms_workstation_id_id", "workstation_id", "id"),
        Index("ix_alarms_subdistrict_id_id", "subdistrict_id", "id"),
        Index("ix_alarms_district_id_id", "district_id", "id"),
        Index("ix_alarms_gateway_id_sensor_id", "gateway_id", "sensor_id"),
        # the storm check counts an area's recent alarms (hub/alarms/engine/storms.py)
        Index("ix_alarms_subdistrict_id_raised_at", "subdistrict_id", "raised_at"),
        Index("ix_alarms_workstation_id_raised_at", "workstation_id", "raised_at"),
    )
    #: Every UPDATE says ``WHERE version = <read version>``: of two concurrent writers one wins,
    #: the other gets StaleDataError (turned into ConcurrentUpdate).
    __mapper_args__ = {"version_id_col": version}


class AlarmTransition(Base):
    """One line of an alarm's history: a lifecycle step (who, when, note) or a system step
    (raise, restore, reactivate, escalate) that leaves the state as it was.

    It is also the event feed: ``id`` is global and increasing (the live stream's event id,
    see :mod:`hub.alarms.feed`), ``seq`` counts the alarm's own lines from 1 (webhooks and
    the stream carry it, so a receiver orders and deduplicates per alarm)."""

    __tablename__ = "alarm_transitions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    alarm_id: Mapped[str] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(120))
    at: Mapped[dt.datetime]
    note: Mapped[str] = mapped_column(Text(), default="")
    outcome: Mapped[str | None] = mapped_column(String(32), default=None)
    responder: Mapped[str | None] = mapped_column(String(200), default=None)
    seq: Mapped[int | None] = mapped_column(default=None)

    alarm: Mapped[Alarm] = relationship(back_populates="history")


class AlarmTimer(Base):
    """A stored escalation step. ``status``: pending → fired | skipped | cancelled, exactly once."""

    __tablename__ = "alarm_timers"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    alarm_id: Mapped[str] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"), index=True)
    step_index: Mapped[int]
    step_name: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str] = mapped_column(String(16))
    awaits: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    fired_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    fired_by: Mapped[str | None] = mapped_column(String(120), default=None)

    __table_args__ = (
        UniqueConstraint("alarm_id", "step_index"),
        Index("ix_alarm_timers_status_due_at", "status", "due_at"),
    )


class HomeOverride(Base):
    """Per-home rule overrides. ``suppress`` never applies to life-safety kinds."""

    __tablename__ = "home_overrides"

    home_id: Mapped[str] = mapped_column(ID, primary_key=True)
    suppress: Mapped[list[Any]] = mapped_column(default=list)
    frequent_false: Mapped[list[Any]] = mapped_column(default=list)
    note: Mapped[str] = mapped_column(Text(), default="")


class ProcessedSignal(Base):
    """Signals (event ids, condition changes) already turned into alarm decisions.

    Written in the same transaction as the decision, so a signal handed over twice (a
    redelivered hook, a catch-up sweep, two workers) changes the alarms once."""

    __tablename__ = "alarm_signals"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    processed_at: Mapped[dt.datetime]
    alarm_id: Mapped[str | None] = mapped_column(String(36), default=None)
    decision: Mapped[str] = mapped_column(String(32))


class WebhookSubscription(Base):
    """A third-party endpoint that receives every alarm of one region, signed with its secret.

    The secret is stored sealed (encrypted with the hub's ``[hub.secrets]`` key, see
    :mod:`hub.sealing`): the hub needs it in clear to sign, so a hash would not do."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(500))
    secret_sealed: Mapped[str] = mapped_column(String(512))
    region_kind: Mapped[str] = mapped_column(String(16))
    region_id: Mapped[str] = mapped_column(ID)
    name: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)
    #: ``json`` (the alarm event) or ``cap`` (life-safety alarms as CAP 1.2 XML, the rest JSON)
    format: Mapped[str] = mapped_column(String(8), default="json", server_default="json")
