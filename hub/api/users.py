"""Console users: creation, login (access + refresh token), refresh with rotation, logout,
and resolving an access token to a :class:`Principal`.

Tokens: ``shu_<session>_<secret>`` (access, ``ApiContext.access_ttl``, 15 minutes by
default) and ``shr_<session>_<secret>`` (refresh, ``ApiContext.refresh_ttl``, 12 hours: a
shift). Both are stored as SHA-256; a refresh replaces both. A refresh token used a second
time means a copy exists: the whole session is revoked.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from hub import audit
from hub.api import passwords, throttle
from hub.api.context import ApiContext
from hub.api.errors import BadRegion
from hub.api.models import LoginThrottle, User, UserSession
from hub.api.scopes import USER_REGION_KINDS, USER_ROLES
from hub.api.tokens import Principal, check_region, hash_token
from hub.db.engine import read_only

ACCESS_PREFIX = "shu_"
REFRESH_PREFIX = "shr_"
_FORMAT = re.compile(r"sh[ur]_([0-9a-f]{12})_[A-Za-z0-9_-]{20,100}")
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
#: What every failed login answers, whatever failed (no such user, wrong password, disabled).
LOGIN_FAILED = "invalid username or password"
#: What a locked account or address answers (the same whether the account exists or not).
LOGIN_LOCKED = "too many failed logins; try again later"


class BadUser(BadRegion):
    """A new user's field is wrong: ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    region: str,
    now: dt.datetime,
    *,
    display_name: str = "",
    created_by: str = "cli",
    hasher: PasswordHasher | None = None,
) -> User:
    """Add a user (BadRegion names what is wrong: name, role, region, password rule)."""
    if USERNAME.fullmatch(username) is None:
        raise BadUser("username", f"user name {username!r}: 2-64 of a-z 0-9 . _ -, starting with a letter or digit")
    if role not in USER_ROLES:
        raise BadUser("role", f"role {role!r} is not one of {', '.join(USER_ROLES)}")
    try:
        kind, rid = check_region(session, region)
    except BadRegion as exc:
        raise BadUser("region", str(exc)) from exc
    if kind not in USER_REGION_KINDS[role]:
        raise BadUser("region", f"a {role} is bound to a {' or '.join(USER_REGION_KINDS[role])}, not a {kind}")
    try:
        passwords.check_new(password, username)
    except ValueError as exc:
        raise BadUser("password", str(exc)) from exc
    if session.scalars(select(User.id).where(User.username == username)).first() is not None:
        raise BadUser("username", f"user {username!r} exists already")
    user = User(
        id=secrets.token_hex(6),
        username=username,
        display_name=display_name,
        password_hash=(hasher or PasswordHasher()).hash(password),
        role=role,
        region_kind=kind,
        region_id=rid,
        created_at=now,
        created_by=created_by,
    )
    session.add(user)
    return user


def disable_user(session: Session, username: str, now: dt.datetime) -> User | None:
    """Disable a user and end every session of theirs; None: no such active user."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None or user.disabled_at is not None:
        return None
    user.disabled_at = now
    for row in session.scalars(
        select(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    ):
        row.revoked_at = now
    return user


def principal_of(user: User, row: UserSession, source: str = "") -> Principal:
    return Principal(
        row.id,
        user.role,
        user.region_kind,
        user.region_id,
        user.display_name,
        row.access_expires_at,
        USER_ROLES.get(user.role, frozenset()),
        "user",
        user.username,
        source,
    )


def _session_id(token: str, prefix: str) -> str | None:
    m = _FORMAT.fullmatch(token)
    return m.group(1) if m is not None and token.startswith(prefix) else None


def _load(s: Session, sid: str) -> tuple[User, UserSession] | None:
    row = s.get(UserSession, sid)
    if row is None:
        return None
    user = s.get(User, row.user_id)
    return None if user is None else (user, row)


def session_refusal(s: Session, sid: str, now: dt.datetime) -> str | None:
    """Why the session ``sid`` no longer admits its access token (None: it does)."""
    found = _load(s, sid)
    if found is None:
        return "token_unknown"
    user, row = found
    if row.revoked_at is not None or user.disabled_at is not None:
        return "token_revoked"
    if row.access_expires_at <= now:
        return "token_expired"
    return None


def resolve_access(ctx: ApiContext, token: str, source: str) -> Principal | None:
    sid = _session_id(token, ACCESS_PREFIX)
    if sid is None:
        return None
    with ctx.sessions() as s:
        read_only(s)
        if session_refusal(s, sid, ctx.clock.now()) is not None:
            return None
        found = _load(s, sid)
        assert found is not None
        user, row = found
        if not hmac.compare_digest(row.access_hash, hash_token(token)):
            return None
        return principal_of(user, row, source)


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    access_expires_at: dt.datetime
    refresh_expires_at: dt.datetime
    principal: Principal


def _issue(ctx: ApiContext, row: UserSession, now: dt.datetime) -> tuple[str, str]:
    access = f"{ACCESS_PREFIX}{row.id}_{secrets.token_urlsafe(32)}"
    refresh = f"{REFRESH_PREFIX}{row.id}_{secrets.token_urlsafe(32)}"
    row.access_hash, row.access_expires_at = hash_token(access), now + ctx.access_ttl
    row.refresh_hash = hash_token(refresh)
    return access, refresh


@dataclass(frozen=True, slots=True)
class LoginRefused(Exception):
    status: int  #: 401 (credentials) or 429 (locked)
    detail: str
    retry_after_s: int = 0


def _counts(s: Session, keys: list[str]) -> dict[str, throttle.Count]:
    rows = s.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))
    return {r.key: throttle.Count(r.failures, r.window_start, r.locked_until) for r in rows}


def login(ctx: ApiContext, username: str, password: str, source: str) -> Tokens:
    """Tokens for a right password; LoginRefused (generic text) otherwise. Every attempt is
    audited; the password is verified outside any transaction (it takes a while)."""
    now = ctx.clock.now()
    name = username.strip().lower()[:64]
    keys = {"account": f"account:{name}", "address": f"address:{source}"}
    with ctx.sessions() as s:
        read_only(s)
        counts = _counts(s, list(keys.values()))
        user = s.scalars(select(User).where(User.username == name)).first()
        stored = user.password_hash if user is not None else None
        user_id = user.id if user is not None else None
    locks = [u for u in (throttle.locked_until(counts.get(k), now) for k in keys.values()) if u is not None]
    if locks:
        with ctx.sessions() as s, s.begin():
            audit.record(
                s, actor=f"user {name}", action="login.locked", target=f"user:{name}", source=source, at=now
            )
        raise LoginRefused(429, LOGIN_LOCKED, max(1, math.ceil((max(locks) - now).total_seconds())))
    ok = passwords.verify(ctx.password_hasher, stored, password)
    tokens = _succeed(ctx, user_id, keys["account"], password, source, now) if ok and user_id else None
    if tokens is None:
        _fail(ctx, keys, name, source, now)
        raise LoginRefused(401, LOGIN_FAILED)
    return tokens


_POLICIES = {"account": throttle.ACCOUNT, "address": throttle.ADDRESS}


def prune_throttle(s: Session, now: dt.datetime) -> int:
    """Delete the counts that expired (window over, no lockout in force): without it every
    name and address ever tried stays a row. Returns how many went."""
    gone = s.execute(
        delete(LoginThrottle)
        .where(
            LoginThrottle.window_start <= throttle.forgotten_before(now),
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(gone, "rowcount", 0) or 0)


def _fail(ctx: ApiContext, keys: dict[str, str], name: str, source: str, now: dt.datetime) -> None:
    """Count a failed login against the account name and the address, and audit it; first,
    at most every PRUNE_EVERY, delete the expired counts. Two workers counting the first
    failure of a name at once: one insert loses, and is retried as an update; a count
    another worker pruned meanwhile: retried as an insert."""
    prune = ctx.throttle_pruned_at is None or now - ctx.throttle_pruned_at >= throttle.PRUNE_EVERY
    for attempt in (1, 2):
        try:
            with ctx.sessions() as s, s.begin():
                if prune:
                    prune_throttle(s, now)
                for what, key in keys.items():
                    row = s.get(LoginThrottle, key)
                    old = throttle.Count(row.failures, row.window_start, row.locked_until) if row else None
                    new = throttle.after_failure(old, _POLICIES[what], now)
                    if row is None:
                        row = LoginThrottle(key=key)
                        s.add(row)
                    row.failures, row.window_start, row.locked_until = new.failures, new.window_start, new.locked_until
                audit.record(s, actor=f"user {name}", action="login.failed", target=f"user:{name}",
                             source=source, at=now)
            if prune:
                ctx.throttle_pruned_at = now
            return
        except (IntegrityError, StaleDataError):
            if attempt == 2:
                raise


def _succeed(
    ctx: ApiContext, user_id: str, account_key: str, password: str, source: str, now: dt.datetime
) -> Tokens | None:
    """A new session for an active user (None: disabled meanwhile)."""
    with ctx.sessions() as s, s.begin():
        user = s.get(User, user_id)
        if user is None or user.disabled_at is not None:
            return None
        row = s.get(LoginThrottle, account_key)
        if row is not None:
            s.delete(row)  # a right password ends the account's count (not the address's)
        if ctx.password_hasher.check_needs_rehash(user.password_hash):
            user.password_hash = ctx.password_hasher.hash(password)
        sess = UserSession(
            id=secrets.token_hex(6),
            user_id=user.id,
            refresh_expires_at=now + ctx.refresh_ttl,
            created_at=now,
            source=source[:100],
        )
        access, refresh_token = _issue(ctx, sess, now)
        s.add(sess)
        p = principal_of(user, sess, source)
        audit.record(s, actor=p.actor, action="login.ok", target=f"session:{sess.id}", source=source, at=now)
        return Tokens(access, refresh_token, sess.access_expires_at, sess.refresh_expires_at, p)


def refresh(ctx: ApiContext, token: str, source: str) -> Tokens:
    """New access and refresh tokens for a current refresh token (the old pair stops working)."""
    now = ctx.clock.now()
    refused = LoginRefused(401, "invalid, expired or revoked refresh token")
    sid = _session_id(token, REFRESH_PREFIX)
    if sid is None:
        raise refused
    reused = False
    with ctx.sessions() as s, s.begin():
        found = _load(s, sid)
        if found is None:
            raise refused
        user, row = found
        h = hash_token(token)
        if row.revoked_at is not None or user.disabled_at is not None or row.refresh_expires_at <= now:
            raise refused
        if row.previous_refresh_hash is not None and hmac.compare_digest(row.previous_refresh_hash, h):
            row.revoked_at = now  # a used refresh token came back: someone holds a copy
            audit.record(
                s,
                actor=principal_of(user, row).actor,
                action="session.reuse_revoked",
                target=f"session:{sid}",
                source=source,
                at=now,
            )
            reused = True
        elif not hmac.compare_digest(row.refresh_hash, h):
            raise refused
        else:
            row.previous_refresh_hash = row.refresh_hash
            access, new_refresh = _issue(ctx, row, now)
            row.refreshed_at = now
            p = principal_of(user, row, source)
            audit.record(
                s, actor=p.actor, action="session.refresh", target=f"session:{sid}", source=source, at=now
            )
            tokens = Tokens(access, new_refresh, row.access_expires_at, row.refresh_expires_at, p)
    if reused:
        raise refused
    return tokens


def logout(s: Session, p: Principal, now: dt.datetime) -> bool:
    """End the session of ``p`` (its access and refresh tokens stop working at once)."""
    row = s.get(UserSession, p.token_id) if p.kind == "user" else None
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    audit.record(s, actor=p.actor, action="logout", target=f"session:{row.id}", source=p.source, at=now)
    return True
