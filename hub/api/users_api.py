"""``/api/v1/auth/…`` (login, refresh, logout) and ``/api/v1/users`` (console users).

Login answers the same ``401 invalid username or password`` whatever failed, and
``429`` with ``Retry-After`` while the account name or the source address is locked out
(hub/api/throttle.py), whether the account exists or not.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api import users
from hub.api.auth import Context, SessionDep, audit, client_address, public, require
from hub.api.models import User
from hub.api.problems import MEDIA_TYPE, Problem, invalid_field
from hub.api.regions import grantable, within
from hub.api.scopes import USER_ROLES, USERS_MANAGE
from hub.api.tokens import Principal
from hub.db.engine import read_only

router = APIRouter(tags=["auth"])
#: login and refresh: the only routes that take no bearer credential
public_router = APIRouter(tags=["auth"], dependencies=[Depends(public)])
Manager = Annotated[Principal, Depends(require(USERS_MANAGE))]
NOT_FOUND = "no such user"


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": description}


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1000)


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=200)


class TokensOut(BaseModel):
    access_token: str = Field(description="send as 'Authorization: Bearer …'")
    token_type: str = "bearer"
    expires_at: dt.datetime = Field(description="when the access token stops working")
    refresh_token: str = Field(description="POST it to /auth/refresh for a new pair (once)")
    refresh_expires_at: dt.datetime
    username: str
    role: str
    region: str
    scopes: list[str]


def _tokens(t: users.Tokens) -> TokensOut:
    p = t.principal
    return TokensOut(
        access_token=t.access_token,
        expires_at=t.access_expires_at,
        refresh_token=t.refresh_token,
        refresh_expires_at=t.refresh_expires_at,
        username=p.username,
        role=p.role,
        region=p.region,
        scopes=sorted(p.scopes),
    )


def _refused(exc: users.LoginRefused) -> HTTPException:
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.status == 429 else {"WWW-Authenticate": "Bearer"}
    return HTTPException(exc.status, exc.detail, headers=headers)


@public_router.post(
    "/auth/login",
    response_model=TokensOut,
    responses={
        401: _problem("invalid username or password"),
        429: _problem("locked out for a while: Retry-After"),
    },
)
def login(body: LoginIn, request: Request, ctx: Context) -> TokensOut:
    """A console user's login: a short-lived access token and a refresh token."""
    try:
        return _tokens(users.login(ctx, body.username, body.password, client_address(request)))
    except users.LoginRefused as exc:
        raise _refused(exc) from exc


@public_router.post(
    "/auth/refresh",
    response_model=TokensOut,
    responses={401: _problem("invalid, expired, revoked or already used refresh token")},
)
def refresh(body: RefreshIn, request: Request, ctx: Context) -> TokensOut:
    """A new access and refresh token; the old pair stops working. A refresh token presented
    a second time revokes the whole session (someone holds a copy)."""
    try:
        return _tokens(users.refresh(ctx, body.refresh_token, client_address(request)))
    except users.LoginRefused as exc:
        raise _refused(exc) from exc


@router.post("/auth/logout", status_code=204, responses={409: _problem("not a user session")})
def logout(p: Annotated[Principal, Depends(require())], ctx: Context, s: SessionDep) -> None:
    """End the caller's session: its access and refresh tokens stop working at once."""
    if p.kind != "user":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "only a user session logs out; revoke a key with DELETE /api/v1/keys/{id}",
        )
    with s.begin():
        users.logout(s, p, ctx.clock.now())


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=1, max_length=1000)
    role: str = Field(description=" | ".join(USER_ROLES))
    region: str = Field(max_length=100, description="the role's region kind:ID, within the caller's")
    display_name: str = Field(default="", max_length=200, description="how alarm histories name the user")


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    username: str
    display_name: str
    role: str
    region: str
    created_at: dt.datetime
    created_by: str
    disabled_at: dt.datetime | None


def user_public(u: User) -> UserPublic:
    return UserPublic(
        username=u.username,
        display_name=u.display_name,
        role=u.role,
        region=f"{u.region_kind}:{u.region_id}",
        created_at=u.created_at,
        created_by=u.created_by,
        disabled_at=u.disabled_at,
    )


def _visible(s: Session, p: Principal, u: User) -> bool:
    return within(s, u.region_kind, u.region_id, p.region_kind, p.region_id)


@router.post("/users", status_code=201, response_model=UserPublic)
def create_user(body: UserCreate, p: Manager, ctx: Context, s: SessionDep) -> UserPublic:
    """Add a console user bound to a region within the caller's, with no scope the caller
    lacks (an auditor is made on the hub machine: ``safehome hub user add``)."""
    now = ctx.clock.now()
    with s.begin():
        # an unknown role is refused by create_user, naming it
        grantable(s, p, USER_ROLES.get(body.role, frozenset()), body.region, f"a {body.role}")
        try:
            u = users.create_user(
                s,
                body.username,
                body.password,
                body.role,
                body.region,
                now,
                display_name=body.display_name,
                created_by=p.actor,
                hasher=ctx.password_hasher,
            )
        except users.BadUser as exc:
            raise invalid_field(("body", exc.field), str(exc)) from exc
        audit(s, p, "user.create", f"user:{u.username}", {"role": u.role, "region": body.region}, now)
        return user_public(u)


@router.get("/users", response_model=list[UserPublic])
def list_users(p: Manager, s: SessionDep) -> list[UserPublic]:
    """The console users within the caller's region."""
    rows = read_only(s).scalars(select(User).order_by(User.username)).all()
    return [user_public(u) for u in rows if _visible(s, p, u)]


def _scoped(s: Session, p: Principal, username: str) -> User:
    u = s.scalars(select(User).where(User.username == username)).first()
    if u is None or not _visible(s, p, u):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return u


@router.get(
    "/users/{username}",
    response_model=UserPublic,
    responses={404: _problem("no such user in the caller's region")},
)
def get_user(username: str, p: Manager, s: SessionDep) -> UserPublic:
    return user_public(_scoped(read_only(s), p, username))


@router.delete(
    "/users/{username}",
    response_model=UserPublic,
    responses={404: _problem("no such user in the caller's region")},
)
def disable_user(username: str, p: Manager, ctx: Context, s: SessionDep) -> UserPublic:
    """Disable a user: every session of theirs ends at once; the record stays (the audit log
    names them)."""
    now = ctx.clock.now()
    with s.begin():
        u = _scoped(s, p, username)
        if users.disable_user(s, username, now) is not None:
            audit(s, p, "user.disable", f"user:{username}", None, now)
        return user_public(u)
