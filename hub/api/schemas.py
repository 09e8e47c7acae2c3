"""API models (one family per entity): AlarmPublic, AlarmDetail, AlarmsPage, TransitionIn…"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.alarms.lifecycle import MAX_NOTE, Outcome


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AlarmPublic(_Out):
    id: str
    kind: str
    alarm_class: str
    priority: int
    state: str
    outcome: str | None
    gateway_id: str
    sensor_id: str
    home_id: str | None
    workstation_id: str | None
    subdistrict_id: str | None
    district_id: str | None
    device_model: str | None
    location: str
    shift: str
    raised_at: dt.datetime
    last_seen_at: dt.datetime
    count: int
    restored_at: dt.datetime | None
    notified_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    dispatched_at: dt.datetime | None
    on_site_at: dt.datetime | None
    resolved_at: dt.datetime | None
    reviewed_at: dt.datetime | None
    responder: str | None
    flags: list[str]
    version: int
    incident_id: str | None = None  #: the mass-event incident it is a member of


class TransitionPublic(_Out):
    action: str
    from_state: str | None
    to_state: str
    actor: str
    at: dt.datetime
    note: str
    outcome: str | None
    responder: str | None


class DeliverySummary(BaseModel):
    channel: str
    role: str
    tier: str
    status: str
    attempts: int


class AlarmDetail(AlarmPublic):
    history: list[TransitionPublic]
    notifications: list[DeliverySummary] = []


class AlarmsPage(BaseModel):
    items: list[AlarmPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at the end")


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, StringConstraints(max_length=MAX_NOTE)] = ""
    responder: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="dispatch: who goes (staff, volunteer, family)"
    )
    outcome: Outcome | None = Field(default=None, description="resolve: what it was")


class Me(BaseModel):
    token_id: str
    role: str
    region: str
    name: str
