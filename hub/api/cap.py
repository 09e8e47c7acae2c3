"""``GET /api/v1/alarms/{id}/cap``: a life-safety alarm as an OASIS CAP 1.2 alert
(see :mod:`hub.alarms.cap`): its latest line, or the line ``?seq=N``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import Response
from sqlalchemy import select

from hub.alarms.cap import MEDIA_TYPE, NotLifeSafety, to_cap
from hub.alarms.engine.actions import event_payload
from hub.alarms.store.models import AlarmTransition
from hub.api.alarms import scoped_alarm
from hub.api.auth import SessionDep, require
from hub.api.scopes import ALARMS_READ
from hub.api.tokens import Principal
from hub.db.engine import read_only
from hub.registry.models import Home

router = APIRouter(tags=["alarms"])


@router.get(
    "/alarms/{alarm_id}/cap",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}, "description": "CAP 1.2 alert (XML)"}},
)
def get_cap(
    alarm_id: str,
    p: Annotated[Principal, Depends(require(ALARMS_READ))],
    s: SessionDep,
    seq: Annotated[int | None, Query(ge=1, description="the alarm's line; default: its latest")] = None,
) -> Response:
    alarm = scoped_alarm(read_only(s), p, alarm_id)
    pick = select(AlarmTransition).where(AlarmTransition.alarm_id == alarm.id)
    pick = pick.where(AlarmTransition.seq == seq) if seq is not None else pick.order_by(AlarmTransition.id.desc())
    line = s.scalars(pick.limit(1)).first()
    if line is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alarm {alarm_id} has no line {seq}")
    event = event_payload(alarm, line)
    home = s.get(Home, alarm.home_id) if alarm.home_id else None
    event["address"] = home.address if home is not None else ""
    try:
        body = to_cap(event)
    except NotLifeSafety as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return Response(body, media_type=MEDIA_TYPE)
