"""The one dependency every route goes through: bearer token → :class:`Principal` → a SQL
condition that limits every alarm query to the caller's region.

An alarm outside the region is indistinguishable from one that does not exist (404, never
403), so the API cannot be used to probe which alarms exist elsewhere.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, false

from hub.alarms.store.models import Alarm
from hub.api.context import ApiContext
from hub.api.tokens import Principal, resolve_token
from hub.db.engine import read_only

_bearer = HTTPBearer(auto_error=False)


def api_context(request: Request) -> ApiContext:
    ctx = request.app.state.alarm_api
    assert isinstance(ctx, ApiContext)
    return ctx


Context = Annotated[ApiContext, Depends(api_context)]


def principal(
    ctx: Context, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    unauthorized = HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="missing or invalid bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized
    with ctx.sessions() as s:
        p = resolve_token(read_only(s), credentials.credentials, ctx.clock.now())
    if p is None:
        raise unauthorized
    return p


CurrentPrincipal = Annotated[Principal, Depends(principal)]


def alarm_scope(p: Principal) -> ColumnElement[bool]:
    """The region condition of every alarm query made for ``p``."""
    column = {
        "workstation": Alarm.workstation_id,
        "subdistrict": Alarm.subdistrict_id,
        "district": Alarm.district_id,
    }.get(p.region_kind)
    if column is None:  # an unknown kind sees nothing rather than everything
        return false()
    return column == p.region_id


#: Roles allowed to take each lifecycle action.
MAY: dict[str, frozenset[str]] = {
    "acknowledge": frozenset({"operator", "supervisor"}),
    "dispatch": frozenset({"operator", "supervisor"}),
    "arrive": frozenset({"operator", "supervisor"}),
    "resolve": frozenset({"operator", "supervisor"}),
    "review": frozenset({"supervisor"}),
}
