"""``/api/v1/workstations`` and ``/api/v1/centers``: who answers alarms in the caller's
region, their phones and duty hours, and whether they are staffed right now
(hub/registry/duty.py: the same rule the alarm engine routes by).

A district admin may change a workstation's duty hours (``PUT …/duty``); the change is
audited with the hours before and after, and routing uses it from the next alarm on.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api.answers import BAD_BODY, problems
from hub.api.auth import Context, SessionDep, audit, require, workstation_scope
from hub.api.scopes import REGISTRY_READ, REGISTRY_WRITE
from hub.api.tokens import Principal
from hub.db.engine import read_only
from hub.registry.duty import workstation_staffed
from hub.registry.models import District, Subdistrict, Workstation

router = APIRouter(tags=["centers"])
NOT_FOUND = "no such workstation"
Registry = Annotated[Principal, Depends(require(REGISTRY_READ))]
#: Who may change duty hours: ``registry:write`` (district admins; no API key carries it).
Editor = Annotated[Principal, Depends(require(REGISTRY_WRITE))]


#: A time of day as the register writes it (district local time, no zone).
HhMm = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


def _time(value: str | None) -> dt.time | None:
    return dt.time.fromisoformat(value) if value is not None else None


class WorkstationOut(BaseModel):
    id: str
    subdistrict_id: str
    name: str
    phone: str
    oncall_phone: str
    day_start: HhMm | None = Field(description="HH:MM, district local time; null with day_end: no day staff")
    day_end: HhMm | None
    hours: str = Field(
        description="day, overnight (the day shift crosses midnight), around_the_clock or none"
    )
    staffed_now: bool = Field(
        description="inside the day shift now: alarms go to `phone`, else to `oncall_phone`"
    )


class CenterOut(BaseModel):
    id: str
    kind: str = Field(description="district or subdistrict (both staffed 24 h)")
    name: str
    phone: str
    parent_id: str | None


class DutyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day_start: HhMm | None = Field(
        description="HH:MM, district local time; null (with day_end): no day staff"
    )
    day_end: HhMm | None

    @model_validator(mode="after")
    def _both_or_neither(self) -> DutyIn:
        if (self.day_start is None) != (self.day_end is None):
            raise ValueError("give both day_start and day_end, or null for both (no day staff)")
        return self


def hours_of(start: dt.time | None, end: dt.time | None) -> str:
    if start is None or end is None:
        return "none"
    if start == end:
        return "around_the_clock"
    return "day" if start < end else "overnight"


def _timezone(s: Session, ws: Workstation) -> str:
    sd = s.get(Subdistrict, ws.subdistrict_id)
    d = s.get(District, sd.district_id) if sd is not None else None
    return d.timezone if d is not None else "UTC"


def ws_out(s: Session, ws: Workstation, now: dt.datetime) -> WorkstationOut:
    return WorkstationOut(
        id=ws.id,
        subdistrict_id=ws.subdistrict_id,
        name=ws.name,
        phone=ws.phone,
        oncall_phone=ws.oncall_phone,
        day_start=_hhmm(ws.day_start),
        day_end=_hhmm(ws.day_end),
        hours=hours_of(ws.day_start, ws.day_end),
        staffed_now=workstation_staffed(ws.day_start, ws.day_end, _timezone(s, ws), now),
    )


def scoped_workstation(s: Session, p: Principal, workstation_id: str) -> Workstation:
    ws = s.scalars(select(Workstation).where(Workstation.id == workstation_id, workstation_scope(p))).first()
    if ws is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return ws


@router.get("/workstations", response_model=list[WorkstationOut], responses=problems({}))
def list_workstations(p: Registry, ctx: Context, s: SessionDep, subdistrict_id: str | None = None) -> list[WorkstationOut]:
    q = select(Workstation).where(workstation_scope(p))
    if subdistrict_id is not None:
        q = q.where(Workstation.subdistrict_id == subdistrict_id)
    now = ctx.clock.now()
    return [ws_out(s, w, now) for w in read_only(s).scalars(q.order_by(Workstation.id))]


@router.get(
    "/workstations/{workstation_id}",
    response_model=WorkstationOut,
    responses=problems({404: "no such workstation in the caller's region"}),
)
def get_workstation(workstation_id: str, p: Registry, ctx: Context, s: SessionDep) -> WorkstationOut:
    return ws_out(s, scoped_workstation(read_only(s), p, workstation_id), ctx.clock.now())


@router.put(
    "/workstations/{workstation_id}/duty",
    response_model=WorkstationOut,
    responses=problems(
        {
            400: BAD_BODY,
            403: "the credential lacks registry:write (district admins)",
            404: "no such workstation in the caller's region",
        }
    ),
)
def put_duty(workstation_id: str, body: DutyIn, p: Editor, ctx: Context, s: SessionDep) -> WorkstationOut:
    """Change a workstation's duty hours (the next alarm is routed by them). The next import
    of the register file sets them back to the file's, so change the file too."""
    now = ctx.clock.now()
    with s.begin():
        ws = scoped_workstation(s, p, workstation_id)
        before = {"day_start": _hhmm(ws.day_start), "day_end": _hhmm(ws.day_end)}
        ws.day_start, ws.day_end = _time(body.day_start), _time(body.day_end)
        after = {"day_start": _hhmm(ws.day_start), "day_end": _hhmm(ws.day_end)}
        audit(
            s,
            p,
            "workstation.duty_changed",
            f"workstation:{ws.id}",
            {"before": before, "after": after},
            at=now,
        )
        return ws_out(s, ws, now)


def _hhmm(t: dt.time | None) -> str | None:
    return t.strftime("%H:%M") if t is not None else None


@router.get("/centers", response_model=list[CenterOut], responses=problems({}))
def list_centers(p: Registry, s: SessionDep) -> list[CenterOut]:
    """The 24 h centers above the caller's workstations: their subdistrict centers and the
    district center (the last escalation step)."""
    sd_ids = set(read_only(s).scalars(select(Workstation.subdistrict_id).where(workstation_scope(p))))
    if p.region_kind == "subdistrict":
        sd_ids.add(p.region_id)
    subs = list(s.scalars(select(Subdistrict).where(Subdistrict.id.in_(sd_ids)).order_by(Subdistrict.id)))
    d_ids = {x.district_id for x in subs} | ({p.region_id} if p.region_kind == "district" else set())
    if p.region_kind == "district":
        subs = list(
            s.scalars(
                select(Subdistrict).where(Subdistrict.district_id == p.region_id).order_by(Subdistrict.id)
            )
        )
    dists = list(s.scalars(select(District).where(District.id.in_(d_ids)).order_by(District.id)))
    return [
        CenterOut(id=d.id, kind="district", name=d.name, phone=d.phone, parent_id=None) for d in dists
    ] + [
        CenterOut(id=x.id, kind="subdistrict", name=x.name, phone=x.phone, parent_id=x.district_id)
        for x in subs
    ]
