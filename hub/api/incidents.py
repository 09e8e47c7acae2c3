"""``/api/v1/incidents``: mass-event incidents (storms of one area) with their members.

Region-scoped like the alarms: a district or subdistrict sees the incidents of its region,
a workstation those with at least one member of its own; members are listed only as far
as the caller may see them (``alarm_scope``), and an incident outside the region is 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, exists, false, func, select

from hub.alarms.store.incidents import Incident
from hub.alarms.store.models import Alarm
from hub.api.auth import SessionDep, alarm_scope, require
from hub.api.problems import MEDIA_TYPE, Problem
from hub.api.schemas import AlarmPublic
from hub.api.scopes import ALARMS_READ
from hub.api.tokens import Principal
from hub.db.engine import read_only

router = APIRouter(tags=["incidents"])
MAX_PAGE = 200
MAX_MEMBERS = 5000
Reader = Annotated[Principal, Depends(require(ALARMS_READ))]


class IncidentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    area: str = Field(description='"subdistrict:<id>" or "workstation:<id>"')
    state: str = Field(description="open | closed")
    workstation_id: str | None
    subdistrict_id: str | None
    district_id: str | None
    opened_at: dt.datetime
    last_member_at: dt.datetime
    closed_at: dt.datetime | None
    members: int = Field(description="member alarms (the running count)")


class IncidentDetail(IncidentPublic):
    members_visible: int = Field(description="members in the caller's region")
    still_active: int = Field(description="visible members not restored yet")
    member_alarms: list[AlarmPublic] = Field(description="visible members, oldest first, up to ?limit=")


class IncidentsPage(BaseModel):
    items: list[IncidentPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at the end")


def incident_scope(p: Principal) -> ColumnElement[bool]:
    if p.region_kind == "district":
        return Incident.district_id == p.region_id
    if p.region_kind == "subdistrict":
        return Incident.subdistrict_id == p.region_id
    if p.region_kind == "workstation":
        own = exists().where(Alarm.incident_id == Incident.id, Alarm.workstation_id == p.region_id)
        return (Incident.workstation_id == p.region_id) | own
    if p.region_kind == "home":
        return exists().where(Alarm.incident_id == Incident.id, Alarm.home_id == p.region_id)
    return false()


@router.get("/incidents", response_model=IncidentsPage)
def list_incidents(
    p: Reader,
    s: SessionDep,
    state: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=36)] = None,
) -> IncidentsPage:
    """Newest first; ``cursor`` is the last id of the previous page."""
    q = select(Incident).where(incident_scope(p))
    if state:
        q = q.where(Incident.state.in_(state))
    if cursor:
        q = q.where(Incident.id < cursor)
    rows = read_only(s).scalars(q.order_by(Incident.id.desc()).limit(limit + 1)).all()
    items = [IncidentPublic.model_validate(r) for r in rows[:limit]]
    return IncidentsPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentDetail,
    responses={404: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": "no such incident in the caller's region"}},
)
def get_incident(
    incident_id: str,
    p: Reader,
    s: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_MEMBERS)] = 500,
) -> IncidentDetail:
    read_only(s)
    inc = s.scalars(select(Incident).where(Incident.id == incident_id, incident_scope(p))).first()
    if inc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such incident")
    mine = (Alarm.incident_id == inc.id) & alarm_scope(p)
    visible = s.scalar(select(func.count()).select_from(Alarm).where(mine)) or 0
    active = s.scalar(select(func.count()).select_from(Alarm).where(mine, Alarm.restored_at.is_(None))) or 0
    members = s.scalars(select(Alarm).where(mine).order_by(Alarm.id).limit(limit)).all()
    return IncidentDetail(
        **IncidentPublic.model_validate(inc).model_dump(),
        members_visible=visible,
        still_active=active,
        member_alarms=[AlarmPublic.model_validate(a) for a in members],
    )
