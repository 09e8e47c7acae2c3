"""API bearer tokens and keys: ``shk_<id>_<secret>``, stored as SHA-256 of the whole token.

Two flavours share the table and the format:

- a role token (``safehome hub token create --role``): ``viewer`` reads, ``operator`` also
  takes lifecycle steps, ``supervisor`` also reviews and manages webhooks, ``installer`` runs
  walk tests and sign-offs; its scopes are its role's (hub/api/scopes.py ``TOKEN_ROLES``);
- an API key for a third party (``safehome hub key create``, ``POST /api/v1/keys``): explicit
  scopes, an expiry, a region that may be a single home.

A region (``workstation:ws-0001``, ``subdistrict:sd-01``, ``district:pudong``,
``home:home-1``) scopes everything the credential can see.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api.errors import BadRegion
from hub.api.models import ApiToken
from hub.api.scopes import KEY_ROLE, KEY_SCOPES, TOKEN_ROLES, parse_scopes, scope_text
from hub.registry.models import District, Home, Subdistrict, Workstation

ROLES = tuple(TOKEN_ROLES)
REGION_KINDS = {"workstation": Workstation, "subdistrict": Subdistrict, "district": District, "home": Home}
PREFIX = "shk"
#: What :func:`create_token` makes: anything else is refused before the database is asked.
TOKEN_FORMAT = re.compile(r"shk_[0-9a-f]{12}_[A-Za-z0-9_-]{20,100}")
#: ``last_used_at`` is written at most this often per key.
LAST_USED_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a token/key (``kind`` "key") or a console user's session ("user")."""

    token_id: str  #: the key's id, or the user's session id
    role: str
    region_kind: str  #: district, subdistrict, workstation or home
    region_id: str
    name: str = ""
    expires_at: dt.datetime | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    kind: str = "key"
    username: str = ""  #: a user's login name ("" for keys)
    source: str = ""  #: the client's address (audit "from where")

    @property
    def region(self) -> str:
        return f"{self.region_kind}:{self.region_id}"

    @property
    def actor(self) -> str:
        """How the history and the audit log name this caller."""
        if self.kind == "user":
            return f"{self.name} [user {self.username}]" if self.name else f"user {self.username}"
        return f"{self.name} [{self.token_id}]" if self.name else f"token {self.token_id}"

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_region(region: str) -> tuple[str, str]:
    kind, sep, rid = region.partition(":")
    if not sep or kind not in REGION_KINDS or not rid:
        raise BadRegion(f"region {region!r} is not <district|subdistrict|workstation|home>:<id>")
    return kind, rid


def check_region(session: Session, region: str) -> tuple[str, str]:
    kind, rid = parse_region(region)
    if session.get(REGION_KINDS[kind], rid) is None:
        raise BadRegion(f"no {kind} {rid!r} in the registry")
    return kind, rid


def principal_of_row(row: ApiToken) -> Principal:
    scopes = frozenset(row.scopes.split()) if row.scopes else TOKEN_ROLES.get(row.role, frozenset())
    return Principal(row.id, row.role, row.region_kind, row.region_id, row.name, row.expires_at, scopes)


def _store(
    session: Session,
    role: str,
    scopes: frozenset[str],
    kind: str,
    rid: str,
    name: str,
    now: dt.datetime,
    expires_at: dt.datetime | None,
    created_by: str,
) -> tuple[str, Principal]:
    tid = secrets.token_hex(6)
    token = f"{PREFIX}_{tid}_{secrets.token_urlsafe(32)}"
    row = ApiToken(
        id=tid,
        token_hash=hash_token(token),
        role=role,
        region_kind=kind,
        region_id=rid,
        name=name,
        created_at=now,
        expires_at=expires_at,
        scopes=scope_text(scopes),
        created_by=created_by,
    )
    session.add(row)
    return token, principal_of_row(row)


def create_token(
    session: Session,
    role: str,
    region: str,
    name: str,
    now: dt.datetime,
    expires_at: dt.datetime | None = None,
    created_by: str = "cli",
) -> tuple[str, Principal]:
    """Store a new role token; returns the token (shown once, never stored) and its principal."""
    if role not in TOKEN_ROLES:
        raise BadRegion(f"role {role!r} is not one of {', '.join(ROLES)}")
    kind, rid = check_region(session, region)
    if kind == "home":
        raise BadRegion("a role token's region is a district, subdistrict or workstation (a key may be one home)")
    return _store(session, role, TOKEN_ROLES[role], kind, rid, name, now, expires_at, created_by)


def create_key(
    session: Session,
    scopes: str | list[str] | frozenset[str],
    region: str,
    name: str,
    now: dt.datetime,
    expires_at: dt.datetime | None,
    created_by: str,
    allowed: frozenset[str] = KEY_SCOPES,
) -> tuple[str, Principal]:
    """Store a new API key with explicit scopes (each in ``allowed``); returns the key (shown
    once) and its principal. BadRegion names what is wrong."""
    try:
        granted = parse_scopes(scopes, allowed & KEY_SCOPES)
    except ValueError as exc:
        raise BadRegion(str(exc)) from exc
    if expires_at is not None and expires_at <= now:
        raise BadRegion("expires_at is in the past")
    kind, rid = check_region(session, region)
    return _store(session, KEY_ROLE, granted, kind, rid, name, now, expires_at, created_by)


def refusal(row: ApiToken | None, now: dt.datetime) -> str | None:
    """Why the token of ``row`` is no longer valid at ``now`` (None: it is)."""
    if row is None:
        return "token_unknown"
    if row.revoked_at is not None:
        return "token_revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "token_expired"
    return None


def lookup_token(session: Session, token: str, now: dt.datetime) -> ApiToken | None:
    """The row of a valid (well-formed, known, unrevoked, unexpired) token, else None."""
    if TOKEN_FORMAT.fullmatch(token) is None:
        return None
    row = session.get(ApiToken, token.split("_", 2)[1])
    if row is None or refusal(row, now) or not hmac.compare_digest(row.token_hash, hash_token(token)):
        return None
    return row


def resolve_token(session: Session, token: str, now: dt.datetime) -> Principal | None:
    """The principal of a valid token, else None."""
    row = lookup_token(session, token, now)
    return None if row is None else principal_of_row(row)


def due_last_used(row: ApiToken, now: dt.datetime) -> bool:
    return row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY


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
