"""API bearer tokens: ``shk_<id>_<secret>``, stored as SHA-256 of the whole token.

A token names a role (``viewer`` reads, ``operator`` also acknowledges … resolves,
``supervisor`` also reviews; ``installer`` runs walk tests and
sign-offs, hub/api/provisioning.py) and a region (``workstation:ws-0001``, ``subdistrict:sd-01``,
``district:pudong``) that scopes everything it can see.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api.errors import BadRegion
from hub.api.models import ApiToken
from hub.registry.models import District, Subdistrict, Workstation

ROLES = ("viewer", "operator", "supervisor", "installer")
REGION_KINDS = {"workstation": Workstation, "subdistrict": Subdistrict, "district": District}
PREFIX = "shk"
#: What :func:`create_token` makes: anything else is refused before the database is asked.
TOKEN_FORMAT = re.compile(r"shk_[0-9a-f]{12}_[A-Za-z0-9_-]{20,100}")


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    role: str
    region_kind: str
    region_id: str
    name: str = ""
    expires_at: dt.datetime | None = None

    @property
    def region(self) -> str:
        return f"{self.region_kind}:{self.region_id}"

    @property
    def actor(self) -> str:
        """How the history names this caller (until users exist: the token's name and id)."""
        return f"{self.name} [{self.token_id}]" if self.name else f"token {self.token_id}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_region(region: str) -> tuple[str, str]:
    kind, sep, rid = region.partition(":")
    if not sep or kind not in REGION_KINDS or not rid:
        raise BadRegion(f"region {region!r} is not <workstation|subdistrict|district>:<id>")
    return kind, rid


def create_token(
    session: Session, role: str, region: str, name: str, now: dt.datetime, expires_at: dt.datetime | None = None
) -> tuple[str, Principal]:
    """Store a new token; returns the token (shown once, never stored) and its principal."""
    if role not in ROLES:
        raise BadRegion(f"role {role!r} is not one of {', '.join(ROLES)}")
    kind, rid = parse_region(region)
    if session.get(REGION_KINDS[kind], rid) is None:
        raise BadRegion(f"no {kind} {rid!r} in the registry")
    tid = secrets.token_hex(6)
    token = f"{PREFIX}_{tid}_{secrets.token_urlsafe(32)}"
    session.add(
        ApiToken(
            id=tid,
            token_hash=hash_token(token),
            role=role,
            region_kind=kind,
            region_id=rid,
            name=name,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return token, Principal(tid, role, kind, rid, name, expires_at)


def refusal(row: ApiToken | None, now: dt.datetime) -> str | None:
    """Why the token of ``row`` is no longer valid at ``now`` (None: it is)."""
    if row is None:
        return "token_unknown"
    if row.revoked_at is not None:
        return "token_revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "token_expired"
    return None


def resolve_token(session: Session, token: str, now: dt.datetime) -> Principal | None:
    """The principal of a valid (well-formed, known, unrevoked, unexpired) token, else None."""
    if TOKEN_FORMAT.fullmatch(token) is None:
        return None
    row = session.get(ApiToken, token.split("_", 2)[1])
    if row is None or refusal(row, now) or not hmac.compare_digest(row.token_hash, hash_token(token)):
        return None
    return Principal(row.id, row.role, row.region_kind, row.region_id, row.name, row.expires_at)


def token_refusal(session: Session, token_id: str, now: dt.datetime) -> str | None:
    """Re-check an authenticated token (an open event stream): why it is no longer valid."""
    return refusal(session.get(ApiToken, token_id), now)


def revoke_token(session: Session, token_id: str, now: dt.datetime) -> bool:
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    return True


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at)))
