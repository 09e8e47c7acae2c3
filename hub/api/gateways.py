"""``/api/v1/gateways``: the gateways of the caller's region, their sensors, connectivity,
buffer, agent version, clock and open troubles, from what ingest and supervision store
(``gateway_state``, ``sensor_state``, ``conditions``) and the open trouble/supervisory alarms.

``connectivity`` is the hub's judgement, not the gateway's word: ``offline`` / ``silent``
while supervision holds that condition open, else ``online`` when the last live status said
so, else ``unknown`` (never heard from).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.alarms.store.models import Alarm
from hub.api.answers import problems
from hub.api.auth import Context, SessionDep, home_scope, require
from hub.api.scopes import REGISTRY_READ
from hub.api.tokens import Principal
from hub.db.engine import read_only
from hub.db.state import Condition, ConditionKind, ConditionState, GatewayState, SensorState
from hub.registry.models import Gateway, Home, Sensor
from hub.timeseries.base import TimeSeriesStore
from hub.timeseries.errors import TimeSeriesError

log = logging.getLogger(__name__)
router = APIRouter(tags=["gateways"])
BATTERY_METRIC = "battery_v"
BATTERY_WINDOW = dt.timedelta(hours=24)
NOT_FOUND = "no such gateway"
MAX_PAGE = 500
Registry = Annotated[Principal, Depends(require(REGISTRY_READ))]
#: Alarm classes that are a gateway's or sensor's trouble rather than an emergency.
TROUBLE_CLASSES = ("supervisory", "trouble")


class Trouble(BaseModel):
    source: str = Field(
        description="`condition` (the hub's supervision) or `alarm` (reported by the gateway)"
    )
    kind: str = Field(
        description="gateway_silent, sensor_silent, clock_suspect, battery_low, tamper, mains_lost …"
    )
    sensor_id: str | None
    since: dt.datetime
    alarm_id: str | None = None


class Clock(BaseModel):
    synced: bool | None = Field(description="the gateway's last status said its clock is NTP-synchronised")
    offset_s: float | None = Field(
        description="device time minus hub receipt of the last live, synced status"
    )
    suspect: bool = Field(description="a clock_suspect condition is open (offset beyond the hub's tolerance)")


class Buffer(BaseModel):
    depth: int | None = Field(description="messages waiting for an ack at the gateway")
    alarms_pending: int | None
    oldest_unacked_s: float | None


class SensorOut(BaseModel):
    id: str
    model: str
    kind: str
    location: str
    interval_s: int
    last_seen_at: dt.datetime | None
    ok: bool | None = Field(description="the gateway's last status about this sensor (null: not reported)")
    silent: bool = Field(description="a sensor_silent condition is open")
    battery_v: float | None = Field(
        default=None,
        description="the latest battery_v reading of the last 24 h (null: none, or no readings here)",
    )
    battery_at: dt.datetime | None = Field(default=None, description="when that reading was taken")


class GatewaySummary(BaseModel):
    id: str
    home_id: str
    connectivity: str = Field(description="online, silent, offline or unknown")
    last_seen_at: dt.datetime | None
    agent_version: str | None
    open_troubles: int


class GatewaysPage(BaseModel):
    items: list[GatewaySummary]
    next_cursor: str | None


class GatewayDetail(BaseModel):
    id: str
    home_id: str
    connectivity: str = Field(description="online, silent, offline or unknown")
    online: bool = Field(description="the last live status said online (false after a Last-Will)")
    last_seen_at: dt.datetime | None
    status_at: dt.datetime | None = Field(description="hub receipt of the last live status")
    agent_version: str | None = Field(description="`fw` of the last status")
    config_revision: int | None
    config_error: dict[str, Any] | None
    uptime_s: float | None
    buffer: Buffer
    clock: Clock
    sensors: list[SensorOut]
    troubles: list[Trouble]


def scoped_gateway(s: Session, p: Principal, gateway_id: str) -> Gateway:
    gw = s.scalars(
        select(Gateway).join(Home, Home.id == Gateway.home_id).where(Gateway.id == gateway_id, home_scope(p))
    ).first()
    if gw is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return gw


def _conditions(s: Session, gateway_ids: list[str]) -> list[Condition]:
    return list(
        s.scalars(
            select(Condition)
            .where(Condition.gateway_id.in_(gateway_ids), Condition.state == ConditionState.OPEN.value)
            .order_by(Condition.opened_at)
        )
    )


def _trouble_alarms(s: Session, gateway_ids: list[str]) -> list[Alarm]:
    return list(
        s.scalars(
            select(Alarm)
            .where(
                Alarm.gateway_id.in_(gateway_ids),
                Alarm.open_key.is_not(None),
                Alarm.alarm_class.in_(TROUBLE_CLASSES),
            )
            .order_by(Alarm.raised_at)
        )
    )


def connectivity(state: GatewayState | None, open_kinds: set[str]) -> str:
    if ConditionKind.GATEWAY_OFFLINE.value in open_kinds:
        return "offline"
    if ConditionKind.GATEWAY_SILENT.value in open_kinds:
        return "silent"
    if state is not None and state.online:
        return "online"
    return "unknown" if state is None or state.last_seen_at is None else "offline"


def troubles_of(conditions: list[Condition], alarms: list[Alarm]) -> list[Trouble]:
    out = [
        Trouble(source="condition", kind=c.kind, sensor_id=c.sensor_id, since=c.opened_at) for c in conditions
    ]
    out += [
        Trouble(source="alarm", kind=a.kind, sensor_id=a.sensor_id or None, since=a.raised_at, alarm_id=a.id)
        for a in alarms
    ]
    return sorted(out, key=lambda t: t.since)


def _status(state: GatewayState | None) -> dict[str, Any]:
    return dict(state.last_status or {}) if state is not None else {}


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def detail_of(s: Session, gw: Gateway) -> GatewayDetail:
    state = s.get(GatewayState, gw.id)
    st = _status(state)
    conditions = _conditions(s, [gw.id])
    open_gw = {c.kind for c in conditions if c.sensor_id is None}
    silent = {c.sensor_id for c in conditions if c.kind == ConditionKind.SENSOR_SILENT.value}
    seen = {
        ss.sensor_id: ss.last_seen_at
        for ss in s.scalars(select(SensorState).where(SensorState.gateway_id == gw.id))
    }
    reported = {
        str(x.get("id")): bool(x.get("ok"))
        for x in st.get("sensors") or []
        if isinstance(x, dict) and "ok" in x
    }
    sensors = [
        SensorOut(
            id=x.id,
            model=x.model,
            kind=x.kind,
            location=x.location,
            interval_s=x.interval_s,
            last_seen_at=seen.get(x.id),
            ok=reported.get(x.id),
            silent=x.id in silent,
        )
        for x in s.scalars(select(Sensor).where(Sensor.gateway_id == gw.id).order_by(Sensor.id))
    ]
    synced = st.get("synced")
    return GatewayDetail(
        id=gw.id,
        home_id=gw.home_id,
        connectivity=connectivity(state, open_gw),
        online=bool(state.online) if state is not None else False,
        last_seen_at=state.last_seen_at if state is not None else None,
        status_at=state.status_at if state is not None else None,
        agent_version=st.get("fw") if isinstance(st.get("fw"), str) else None,
        config_revision=_int(st.get("config_revision")),
        config_error=st.get("config_error") if isinstance(st.get("config_error"), dict) else None,
        uptime_s=_num(st.get("uptime_s")),
        buffer=Buffer(
            depth=_int(st.get("buffer_depth")),
            alarms_pending=_int(st.get("alarms_pending")),
            oldest_unacked_s=_num(st.get("oldest_unacked_s")),
        ),
        clock=Clock(
            synced=synced if isinstance(synced, bool) else None,
            offset_s=state.clock_offset_s if state is not None else None,
            suspect=ConditionKind.CLOCK_SUSPECT.value in open_gw,
        ),
        sensors=sensors,
        troubles=troubles_of(conditions, _trouble_alarms(s, [gw.id])),
    )


@router.get("/gateways", response_model=GatewaysPage, responses=problems({}))
def list_gateways(
    p: Registry,
    s: SessionDep,
    home_id: str | None = None,
    connectivity_is: Annotated[
        str | None, Query(alias="connectivity", pattern="^(online|silent|offline|unknown)$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> GatewaysPage:
    """Gateways of the caller's region by id; ``connectivity`` filters the page (so a page
    may hold fewer than ``limit`` items while ``next_cursor`` is set)."""
    q = select(Gateway).join(Home, Home.id == Gateway.home_id).where(home_scope(p))
    if home_id is not None:
        q = q.where(Gateway.home_id == home_id)
    if cursor:
        q = q.where(Gateway.id > cursor)
    rows = read_only(s).scalars(q.order_by(Gateway.id).limit(limit + 1)).all()
    page = list(rows[:limit])
    ids = [g.id for g in page]
    states = {
        st.gateway_id: st
        for st in s.scalars(select(GatewayState).where(GatewayState.gateway_id.in_(ids)))
    }
    conds: dict[str, list[Condition]] = {}
    for c in _conditions(s, ids):
        conds.setdefault(c.gateway_id or "", []).append(c)
    alarms: dict[str, int] = {}
    for a in _trouble_alarms(s, ids):
        alarms[a.gateway_id] = alarms.get(a.gateway_id, 0) + 1
    items = []
    for g in page:
        state, cs = states.get(g.id), conds.get(g.id, [])
        fw = _status(state).get("fw")
        item = GatewaySummary(
            id=g.id,
            home_id=g.home_id,
            connectivity=connectivity(state, {c.kind for c in cs if c.sensor_id is None}),
            last_seen_at=state.last_seen_at if state is not None else None,
            agent_version=fw if isinstance(fw, str) else None,
            open_troubles=len(cs) + alarms.get(g.id, 0),
        )
        if connectivity_is is None or item.connectivity == connectivity_is:
            items.append(item)
    return GatewaysPage(items=items, next_cursor=page[-1].id if len(rows) > limit else None)


@router.get(
    "/gateways/{gateway_id}",
    response_model=GatewayDetail,
    responses=problems({404: "no such gateway in the caller's region"}),
)
def get_gateway(gateway_id: str, p: Registry, ctx: Context, s: SessionDep) -> GatewayDetail:
    d = detail_of(read_only(s), scoped_gateway(s, p, gateway_id))
    s.close()  # the read ends here: the time-series store below may take a while
    if ctx.timeseries is not None:
        add_batteries(ctx.timeseries, d, ctx.clock.now())
    return d


def add_batteries(store: TimeSeriesStore, d: GatewayDetail, now: dt.datetime) -> None:
    """Each sensor's latest ``battery_v`` reading of the last :data:`BATTERY_WINDOW`. The
    time-series store failing leaves them null (the rest of the detail still answers)."""
    for sensor in d.sensors:
        try:
            samples = store.query(
                d.id, sensor.id, BATTERY_METRIC, now - BATTERY_WINDOW, now + dt.timedelta(seconds=1)
            )
        except TimeSeriesError as exc:
            log.warning("battery of %s/%s not read: %s", d.id, sensor.id, exc)
            return
        if samples:
            sensor.battery_at, sensor.battery_v = samples[-1]
