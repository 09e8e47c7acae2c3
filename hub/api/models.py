"""API tables: bearer tokens and API keys (stored as SHA-256 of the secret), console users
and their login sessions, login throttling, idempotency keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base


class ApiToken(Base):
    """``token_hash`` is the SHA-256 hex of the whole token; the token itself is shown once.

    Tokens carry 256 random bits, so a fast hash is enough (no password stretching needed)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  #: public id, part of the token
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: a command-line role (viewer, operator, supervisor, installer) or ``key`` (an API key
    #: made with explicit scopes)
    role: Mapped[str] = mapped_column(String(16))
    #: workstation, subdistrict, district or home
    region_kind: Mapped[str] = mapped_column(String(16))
    region_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: None: valid until revoked. An open event stream closes when its token expires too.
    expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: what it may do, space-separated (hub/api/scopes.py); a role token's are its role's
    scopes: Mapped[str] = mapped_column(String(400), default="")
    #: who made it (an actor name, or "cli")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    #: updated at most once a minute (a write per request would cost more than it tells)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class IdempotencyKey(Base):
    """The stored answer of a POST with an ``Idempotency-Key`` (per token), replayed on repeat."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    token_id: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]

    __table_args__ = (UniqueConstraint("token_id", "key"),)


class User(Base):
    """A console user: a role (hub/api/scopes.py ``USER_ROLES``) bound to a region.
    ``password_hash`` is an argon2id hash (hub/api/passwords.py)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    region_kind: Mapped[str] = mapped_column(String(16))
    region_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(200), default="")
    #: set: the user can no longer log in and every session of theirs stops working
    disabled_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class UserSession(Base):
    """One login: a short-lived access token and a refresh token (both stored as SHA-256),
    rotated together on every refresh. Presenting the previous refresh token again (it was
    stolen, or replayed) revokes the session."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  #: public, part of both tokens
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    access_hash: Mapped[str] = mapped_column(String(64))
    access_expires_at: Mapped[dt.datetime]
    refresh_hash: Mapped[str] = mapped_column(String(64))
    previous_refresh_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    refresh_expires_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]
    refreshed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    source: Mapped[str] = mapped_column(String(100), default="")


class LoginThrottle(Base):
    """Failed logins of one account name or one source address (``key`` is
    ``account:<name>`` or ``address:<ip>``) in the current window, and the lockout."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[dt.datetime]
    locked_until: Mapped[dt.datetime | None] = mapped_column(default=None)
