"""API models (one family per entity): AlarmPublic, AlarmDetail, AlarmsPage, AcknowledgeIn…"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.alarms.lifecycle import MAX_NOTE
from hub.api.homes import HomeCard


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
    #: the home's card (GET /alarms/{id} only; null: no registered home in the caller's reach)
    home: HomeCard | None = None


class AlarmsPage(BaseModel):
    items: list[AlarmPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at the end")


Note = Annotated[str, StringConstraints(max_length=MAX_NOTE)]


class StepIn(BaseModel):
    """A lifecycle step's body: every step takes a ``note``; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    note: Note = Field(default="", description=f"free text for the history (at most {MAX_NOTE} characters)")


class AcknowledgeIn(StepIn):
    """``POST /alarms/{id}/acknowledge``: someone has taken the alarm."""


class DispatchIn(StepIn):
    """``POST /alarms/{id}/dispatch``: who goes to the home."""

    responder: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")] = Field(
        description="who goes (staff, volunteer, family), e.g. `volunteer Li`"
    )


class ArriveIn(StepIn):
    """``POST /alarms/{id}/arrive``: the responder is at the door."""


#: What a person may record: every :class:`Outcome` but ``restored``, the hub's own for a
#: condition that ended before anyone took it (it keeps an alarm out of the false-alarm
#: rate, so an operator must not be able to choose it).
ResolveOutcome = Literal[
    "real_fire", "real_gas_leak", "medical", "cooking_smoke", "false_press", "test", "device_fault",
    "resident_fine", "other",
]  # fmt: skip


class ResolveIn(StepIn):
    """``POST /alarms/{id}/resolve``: what it was."""

    outcome: ResolveOutcome = Field(description="what it was: a real emergency or which kind of false alarm")


class ReviewIn(StepIn):
    """``POST /alarms/{id}/review`` (supervisors): the case is checked and closed."""


#: Every step's body model, by action.
STEP_BODIES: dict[str, type[StepIn]] = {
    "acknowledge": AcknowledgeIn,
    "dispatch": DispatchIn,
    "arrive": ArriveIn,
    "resolve": ResolveIn,
    "review": ReviewIn,
}


class Me(BaseModel):
    token_id: str = Field(description="the key's id, or the user's session id")
    kind: str = Field(default="key", description="key (a token or API key) or user")
    role: str
    region: str
    name: str
    username: str = Field(default="", description="a user's login name")
    scopes: list[str] = Field(default=[], description="what this credential may do (docs/api.md)")
    expires_at: dt.datetime | None = None
