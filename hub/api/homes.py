"""``/api/v1/homes``: the homes of the caller's region and each home's card.

A card without ``residents:read`` carries where the home is (address, floor, door), its
workstation and gateways, and no personal data: ``residents``, ``emergency_contacts``,
``key_holder`` and ``care_notes`` are null and ``personal_data`` is false. With it, every
card handed out (here or inside an alarm's detail) is one ``resident.read`` audit row.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api.answers import problems
from hub.api.auth import Context, SessionDep, audit, home_scope, require
from hub.api.scopes import REGISTRY_READ, RESIDENTS_READ
from hub.api.tokens import Principal
from hub.db.engine import read_only
from hub.db.state import GatewayState
from hub.registry.models import Gateway, Home, Workstation

router = APIRouter(tags=["homes"])
NOT_FOUND = "no such home"
MAX_PAGE = 500
Registry = Annotated[Principal, Depends(require(REGISTRY_READ))]


class ResidentOut(BaseModel):
    name: str
    age: int | None = Field(description="years, from birth_year and today's date (null: not known)")
    birth_year: int | None = None
    phone: str | None = None
    conditions: list[str] = []
    language: str | None = Field(
        default=None, description="preferred language, BCP 47 (zh, zh-Hans, yue, en)"
    )
    notes: str = ""


class ContactOut(BaseModel):
    name: str
    relation: str = ""
    phone: str


class KeyHolderOut(BaseModel):
    name: str
    phone: str


class WorkstationRef(BaseModel):
    id: str
    name: str
    phone: str
    subdistrict_id: str


class GatewayRef(BaseModel):
    id: str
    online: bool
    last_seen_at: dt.datetime | None


class HomeSummary(BaseModel):
    id: str
    workstation_id: str
    address: str
    floor: str
    door: str
    gateways: list[str]


class HomesPage(BaseModel):
    items: list[HomeSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last page")


class HomeCard(BaseModel):
    id: str
    address: str
    floor: str
    door: str
    workstation: WorkstationRef
    gateways: list[GatewayRef]
    personal_data: bool = Field(
        description="false: the caller lacks residents:read; the fields below are null"
    )
    residents: list[ResidentOut] | None
    emergency_contacts: list[ContactOut] | None
    key_holder: KeyHolderOut | None
    care_notes: str | None


def _age(birth_year: object, today: dt.date) -> int | None:
    return today.year - birth_year if isinstance(birth_year, int) else None


def resident_out(r: dict[str, Any], today: dt.date) -> ResidentOut:
    return ResidentOut(
        name=str(r.get("name", "")),
        age=_age(r.get("birth_year"), today),
        birth_year=r.get("birth_year"),
        phone=r.get("phone"),
        conditions=list(r.get("conditions", [])),
        language=r.get("language"),
        notes=str(r.get("notes", "")),
    )


def scoped_home(s: Session, p: Principal, home_id: str) -> Home:
    home = s.scalars(select(Home).where(Home.id == home_id, home_scope(p))).first()
    if home is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return home


def card_of(s: Session, home: Home, p: Principal, now: dt.datetime) -> HomeCard:
    """The card of ``home`` as ``p`` may see it; records the personal-data read in ``s``
    (the caller commits)."""
    ws = s.get(Workstation, home.workstation_id)
    assert ws is not None  # a foreign key
    gw_ids = [g for g in s.scalars(select(Gateway.id).where(Gateway.home_id == home.id).order_by(Gateway.id))]
    states = {
        st.gateway_id: st for st in s.scalars(select(GatewayState).where(GatewayState.gateway_id.in_(gw_ids)))
    }
    gateways = [
        GatewayRef(
            id=g,
            online=bool(states[g].online) if g in states else False,
            last_seen_at=states[g].last_seen_at if g in states else None,
        )
        for g in gw_ids
    ]
    personal = p.allows(RESIDENTS_READ)
    today = now.date()
    card = HomeCard(
        id=home.id,
        address=home.address,
        floor=home.floor,
        door=home.door,
        workstation=WorkstationRef(id=ws.id, name=ws.name, phone=ws.phone, subdistrict_id=ws.subdistrict_id),
        gateways=gateways,
        personal_data=personal,
        residents=[resident_out(r, today) for r in home.residents] if personal else None,
        emergency_contacts=[ContactOut.model_validate(c) for c in home.emergency_contacts]
        if personal
        else None,
        key_holder=KeyHolderOut.model_validate(home.key_holder) if personal and home.key_holder else None,
        care_notes=home.care_notes if personal else None,
    )
    if personal:
        audit(s, p, "resident.read", f"home:{home.id}", at=now)
    return card


def home_card(s: Session, p: Principal, home_id: str | None, now: dt.datetime) -> HomeCard | None:
    """The card of an alarm's home for its detail (None: no registered home in reach);
    commit ``s`` afterwards so that the audit row is kept."""
    if home_id is None:
        return None
    home = s.scalars(select(Home).where(Home.id == home_id, home_scope(p))).first()
    return card_of(s, home, p, now) if home is not None else None


@router.get("/homes", response_model=HomesPage, responses=problems({}))
def list_homes(
    p: Registry,
    s: SessionDep,
    workstation_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HomesPage:
    """Homes of the caller's region by id (no personal data; read one home for its card)."""
    q = select(Home).where(home_scope(p))
    if workstation_id is not None:
        q = q.where(Home.workstation_id == workstation_id)
    if cursor:
        q = q.where(Home.id > cursor)
    rows = read_only(s).scalars(q.order_by(Home.id).limit(limit + 1)).all()
    ids = [h.id for h in rows[:limit]]
    gws: dict[str, list[str]] = {}
    for gid, hid in s.execute(
        select(Gateway.id, Gateway.home_id).where(Gateway.home_id.in_(ids)).order_by(Gateway.id)
    ):
        gws.setdefault(hid, []).append(gid)
    items = [
        HomeSummary(
            id=h.id,
            workstation_id=h.workstation_id,
            address=h.address,
            floor=h.floor,
            door=h.door,
            gateways=gws.get(h.id, []),
        )
        for h in rows[:limit]
    ]
    return HomesPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


@router.get(
    "/homes/{home_id}",
    response_model=HomeCard,
    responses=problems({404: "no such home in the caller's region"}),
)
def get_home(home_id: str, p: Registry, ctx: Context, s: SessionDep) -> HomeCard:
    """The home's card; residents, contacts, key holder and care notes only with
    ``residents:read`` (and then the read is audited)."""
    now = ctx.clock.now()
    if not p.allows(RESIDENTS_READ):
        read_only(s)  # nothing to record: no write lock on SQLite
    card = card_of(s, scoped_home(s, p, home_id), p, now)
    s.commit()
    return card
