"""The one dependency every route goes through: bearer credential → :class:`Principal` →
the route's scope (:func:`require`) → SQL conditions that limit every query to the
caller's region (:func:`alarm_scope`, :func:`home_scope`).

- no, unknown, expired or revoked credential: 401;
- a valid credential without the route's scope: 403;
- an object outside the caller's region: 404, exactly as if it did not exist, so the API
  cannot be used to probe which objects exist elsewhere.

Every ``/api/v1`` route declares ``Depends(require(scope))`` (or :data:`public` for login
and refresh); tests/hub/api/test_route_scopes.py enumerates the app's routes and fails on
one without it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, false, select, update
from sqlalchemy.orm import Session

from hub import audit as _audit
from hub.alarms.store.models import Alarm
from hub.api import users
from hub.api.context import ApiContext
from hub.api.models import ApiToken
from hub.api.tokens import Principal, due_last_used, lookup_token, principal_of_row, token_refusal
from hub.db.engine import read_only
from hub.registry.models import Home, Subdistrict, Workstation

_bearer = HTTPBearer(auto_error=False)


def api_context(request: Request) -> ApiContext:
    ctx = request.app.state.alarm_api
    assert isinstance(ctx, ApiContext)
    return ctx


Context = Annotated[ApiContext, Depends(api_context)]


def request_session(ctx: Context) -> Iterator[Session]:
    """The request's database session (see :data:`SessionDep`)."""
    with ctx.sessions() as s:
        yield s


#: ``s: SessionDep`` in a route: one session per request, closed (whatever it left open
#: rolled back) as soon as the route returns, before the answer is sent (``scope="function"``).
#: The route draws its transaction itself, in its own thread: ``with s.begin():`` around what
#: it changes, the :func:`audit` entry inside it (they commit together, before the answer),
#: or ``read_only(s)`` first when it only reads (no write lock on SQLite). Work that must be
#: retried from a fresh read keeps ``in_transaction(ctx.sessions, work)`` (hub/db/tx.py);
#: async routes that hand blocking work to a thread open their session in that thread.
SessionDep = Annotated[Session, Depends(request_session, scope="function")]


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def _unauthorized() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="missing, invalid, expired or revoked bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _resolve_key(ctx: ApiContext, token: str, source: str) -> Principal | None:
    now = ctx.clock.now()
    with ctx.sessions() as s:
        row = lookup_token(read_only(s), token, now)
        if row is None:
            return None
        p = principal_of_row(row)
        stale = due_last_used(row, now)
    if stale:
        with ctx.sessions() as s, s.begin():
            s.execute(update(ApiToken).where(ApiToken.id == p.token_id).values(last_used_at=now))
    return Principal(
        p.token_id, p.role, p.region_kind, p.region_id, p.name, p.expires_at, p.scopes, p.kind, p.username, source
    )


def principal(
    request: Request,
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized()
    token, source = credentials.credentials, client_address(request)
    p = users.resolve_access(ctx, token, source) if token.startswith(users.ACCESS_PREFIX) else None
    if p is None and not token.startswith(users.ACCESS_PREFIX):
        p = _resolve_key(ctx, token, source)
    if p is None:
        raise _unauthorized()
    return p


CurrentPrincipal = Annotated[Principal, Depends(principal)]


@dataclass(frozen=True)
class Require:
    """The route dependency: a valid credential holding ``scope`` (None: any valid one).
    Returns the :class:`Principal`."""

    scope: str | None

    def __call__(self, p: CurrentPrincipal) -> Principal:
        if self.scope is not None and not p.allows(self.scope):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this credential lacks the scope {self.scope!r}")
        return p


def require(scope: str | None = None) -> Require:
    """``p: Annotated[Principal, Depends(require("residents:read"))]``."""
    return Require(scope)


def ensure(p: Principal, scope: str) -> None:
    """The same 403 inside a handler whose scope depends on the request (one path for
    several lifecycle steps); prefer :func:`require`."""
    Require(scope)(p)


def public() -> None:
    """Marks a route that needs no credential (login, refresh): the route test accepts it."""


def alarm_scope(p: Principal) -> ColumnElement[bool]:
    """The region condition of every alarm query made for ``p``."""
    column = {
        "workstation": Alarm.workstation_id,
        "subdistrict": Alarm.subdistrict_id,
        "district": Alarm.district_id,
        "home": Alarm.home_id,
    }.get(p.region_kind)
    if column is None:  # an unknown kind sees nothing rather than everything
        return false()
    return column == p.region_id


def workstation_scope(p: Principal) -> ColumnElement[bool]:
    """The region condition on :class:`Workstation` (a home key: its home's workstation)."""
    if p.region_kind == "workstation":
        return Workstation.id == p.region_id
    if p.region_kind == "subdistrict":
        return Workstation.subdistrict_id == p.region_id
    if p.region_kind == "district":
        in_district = select(Subdistrict.id).where(Subdistrict.district_id == p.region_id)
        return Workstation.subdistrict_id.in_(in_district.scalar_subquery())
    if p.region_kind == "home":
        return Workstation.id.in_(select(Home.workstation_id).where(Home.id == p.region_id).scalar_subquery())
    return false()


def home_scope(p: Principal) -> ColumnElement[bool]:
    """The region condition of every query of homes (and what hangs off a home: gateways,
    sensors, residents, readings: join to :class:`Home`) made for ``p``."""
    if p.region_kind == "home":
        return Home.id == p.region_id
    if p.region_kind == "workstation":
        return Home.workstation_id == p.region_id
    if p.region_kind in ("subdistrict", "district"):
        ws = select(Workstation.id).where(workstation_scope(p))
        return Home.workstation_id.in_(ws.scalar_subquery())
    return false()


def audit(
    session: Session,
    p: Principal,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> None:
    """Record in the audit log, in ``session``'s transaction, that ``p`` did ``action`` to
    ``target`` (e.g. ``audit(s, p, "resident.read", f"home:{home_id}")``)."""
    _audit.record(session, actor=p.actor, action=action, target=target, source=p.source, detail=detail, at=at)


def credential_refusal(session: Session, p: Principal, now: dt.datetime) -> str | None:
    """Re-check an authenticated caller (an open event stream): why its credential is no
    longer valid (None: it is)."""
    if p.expires_at is not None and p.expires_at <= now:
        return "token_expired"
    if p.kind == "user":
        return users.session_refusal(session, p.token_id, now)
    return token_refusal(session, p.token_id, now)
