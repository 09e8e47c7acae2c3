"""``/api/v1/keys``: API keys for third parties (a city platform, a family app): explicit
scopes, a region (down to one home), an expiry. The key is shown once, in the answer to its
creation; only its SHA-256 is stored. Needs ``keys:manage``; a key never reaches beyond its
maker's scopes or region, and keys outside the caller's region are 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from hub.api.auth import Context, SessionDep, audit, require
from hub.api.errors import BadRegion
from hub.api.models import ApiToken
from hub.api.problems import MEDIA_TYPE, Problem, invalid_field
from hub.api.regions import grantable, within
from hub.api.scopes import KEY_SCOPES, KEYS_MANAGE, SCOPES
from hub.api.tokens import Principal, create_key, list_tokens, principal_of_row, revoke_token
from hub.db.engine import read_only

router = APIRouter(prefix="/keys", tags=["keys"])
Manager = Annotated[Principal, Depends(require(KEYS_MANAGE))]
NOT_FOUND = "no such key"
#: The longest a key may be valid: a third party renews at least once every two years.
MAX_VALIDITY = dt.timedelta(days=731)
_404: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": "no such key in the caller's region"}
}


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="who uses it, e.g. 'family app, home-1'")
    scopes: list[str] = Field(
        min_length=1, max_length=len(SCOPES), description="what it may do (docs/api.md)"
    )
    region: str = Field(
        max_length=100,
        description="district:ID, subdistrict:ID, workstation:ID or home:ID, within the caller's",
    )
    expires_at: dt.datetime = Field(description="when it stops working (at most two years ahead)")


class KeyPublic(BaseModel):
    id: str
    name: str
    role: str = Field(description="'key', or the role of a command-line token")
    scopes: list[str]
    region: str
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None = Field(description="to the minute")


class KeyCreated(KeyPublic):
    key: str = Field(description="the secret: shown this once, never again")


def key_public(row: ApiToken, p: Principal | None = None) -> KeyPublic:
    scopes = sorted((p or principal_of_row(row)).scopes)
    return KeyPublic(
        id=row.id,
        name=row.name,
        role=row.role,
        scopes=scopes,
        region=f"{row.region_kind}:{row.region_id}",
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def _visible(s: Session, p: Principal, row: ApiToken) -> bool:
    return within(s, row.region_kind, row.region_id, p.region_kind, p.region_id)


def _scoped(s: Session, p: Principal, key_id: str) -> ApiToken:
    row = s.get(ApiToken, key_id)
    if row is None or not _visible(s, p, row):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return row


@router.post("", status_code=201, response_model=KeyCreated)
def create(body: KeyCreate, p: Manager, ctx: Context, s: SessionDep) -> KeyCreated:
    """Make a key; the answer's ``key`` is the only time the secret is shown."""
    now = ctx.clock.now()
    if body.expires_at.tzinfo is None:
        raise invalid_field(("body", "expires_at"), "needs a timezone (e.g. Z)")
    if not now < body.expires_at <= now + MAX_VALIDITY:
        raise invalid_field(
            ("body", "expires_at"), f"must be in the future and at most {MAX_VALIDITY.days} days ahead"
        )
    with s.begin():
        # an unknown scope is refused by create_key, naming it
        grantable(s, p, set(body.scopes) & set(SCOPES), body.region, "a key")
        try:
            token, made = create_key(
                s, body.scopes, body.region, body.name, now, body.expires_at, p.actor, KEY_SCOPES
            )
        except BadRegion as exc:
            raise invalid_field(("body", "scopes"), str(exc)) from exc
        s.flush()
        row = s.get(ApiToken, made.token_id)
        assert row is not None
        audit(
            s,
            p,
            "key.create",
            f"key:{made.token_id}",
            {
                "name": body.name,
                "scopes": sorted(made.scopes),
                "region": made.region,
                "expires_at": body.expires_at.isoformat(),
            },
            now,
        )
        return KeyCreated(**key_public(row, made).model_dump(), key=token)


@router.get("", response_model=list[KeyPublic])
def list_keys(p: Manager, s: SessionDep) -> list[KeyPublic]:
    """Every key and command-line token within the caller's region (never the secrets)."""
    return [key_public(r) for r in list_tokens(read_only(s)) if _visible(s, p, r)]


@router.get("/{key_id}", response_model=KeyPublic, responses=_404)
def get_key(key_id: str, p: Manager, s: SessionDep) -> KeyPublic:
    return key_public(_scoped(read_only(s), p, key_id))


@router.delete("/{key_id}", response_model=KeyPublic, responses=_404)
def revoke(key_id: str, p: Manager, ctx: Context, s: SessionDep) -> KeyPublic:
    """Revoke a key: it stops working at its next request (an open event stream closes
    within seconds). Revoking a revoked key changes nothing."""
    now = ctx.clock.now()
    with s.begin():
        row = _scoped(s, p, key_id)
        if revoke_token(s, key_id, now):
            audit(s, p, "key.revoke", f"key:{key_id}", {"name": row.name}, now)
        return key_public(row)
