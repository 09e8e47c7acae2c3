"""Every ``/api/v1`` route of the full hub app (``build_hub``), called for real over HTTP:

(a) no, malformed, expired or revoked credentials (key and user session) → 401;
(b) a credential holding every scope but the route's → 403;
(c) a credential with every scope in another region (another subdistrict, a workstation or
    a home next door in the same subdistrict) → 404 on a route naming an object;
(d) a credential with every scope in the objects' region → none of 401/403/404/5xx (so the
    sample objects exist and (c) is not vacuous).

A route registered without ``Depends(require(scope))`` (or :func:`hub.api.auth.public`) fails
it: :func:`test_a_route_without_the_check_fails_the_enumeration` proves that with throwaway
routes. A new route whose path names a new kind of object needs a sample in ``SAMPLES`` (an
id of such an object in ws-0001) and, if it takes a body, a valid one in ``BODIES``: the test
says which is missing.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.orm import Session

from hub.alarms.store.incidents import Incident
from hub.api.auth import Require, principal, public
from hub.api.models import ApiToken
from hub.api.scopes import SCOPES
from hub.api.tokens import hash_token
from hub.api.users import create_user, disable_user
from hub.db.commands import GatewayCommand
from hub.provision import service as provision
from hub.runner import build_hub
from hub.sealing import generate_key
from hub.settings import HubSettings
from tests.hub.conftest import DAY, Hub, raise_alarm
from tests.support.http import serve_app

PREFIX = "/api/v1"
#: The only routes that take no credential.
PUBLIC = {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/refresh")}
ALL = frozenset(SCOPES)
NOW = dt.datetime.now(dt.UTC)


@dataclass
class World:
    """What the sample objects are (all in workstation ws-0001 / home-1)."""

    alarm_id: str = ""
    values: dict[str, str] = field(default_factory=dict)


#: path parameter → how to make (or name) a sample object of that kind in ws-0001.
SAMPLES: dict[str, Callable[[Session, World], str]] = {
    "alarm_id": lambda s, w: w.alarm_id,
    "gateway_id": lambda s, w: "gw-1",
    "incident_id": lambda s, w: w.values["incident_id"],
    "key_id": lambda s, w: w.values["key_id"],
    "username": lambda s, w: "sample-user",
    "home_id": lambda s, w: "home-1",
    "workstation_id": lambda s, w: "ws-0001",
    "webhook_id": lambda s, w: w.values["webhook_id"],
    "delivery_id": lambda s, w: w.values["delivery_id"],
    "command_id": lambda s, w: w.values["command_id"],
    "sensor_id": lambda s, w: "smoke-1",
}
#: (method, path) → a valid body (validation would otherwise answer 422 before the handler
#: gets to the region check).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/alarms/{alarm_id}/acknowledge"): {"note": "route test"},
    ("POST", "/api/v1/alarms/{alarm_id}/dispatch"): {"responder": "volunteer"},
    ("POST", "/api/v1/alarms/{alarm_id}/arrive"): {},
    ("POST", "/api/v1/alarms/{alarm_id}/resolve"): {"outcome": "cooking_smoke"},
    ("POST", "/api/v1/alarms/{alarm_id}/review"): {},
    ("POST", "/api/v1/provision/gateways/{gateway_id}/walktest"): {"timeout_s": 60},
    ("POST", "/api/v1/provision/gateways/{gateway_id}/signoff"): {},
    ("POST", "/api/v1/keys"): {
        "name": "route test",
        "scopes": ["alarms:read"],
        "region": "home:home-1",
        "expires_at": (NOW + dt.timedelta(days=30)).isoformat(),
    },
    ("POST", "/api/v1/users"): {
        "username": "made-by-route-test",
        "password": "a long enough password",
        "role": "workstation_operator",
        "region": "workstation:ws-0001",
    },
}
BODIES.update(
    {
        ("POST", "/api/v1/webhooks"): {"url": "https://city.example/made-by-route-test"},
        ("PATCH", "/api/v1/webhooks/{webhook_id}"): {"name": "route test"},
        ("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret"): {},
        ("POST", "/api/v1/gateways/{gateway_id}/commands"): {"name": "selftest"},
        ("PUT", "/api/v1/workstations/{workstation_id}/duty"): {"day_start": "08:00", "day_end": "20:00"},
    }
)
#: query parameters some routes require
QUERY: dict[str, str] = {"since": (NOW - dt.timedelta(hours=1)).isoformat(), "metric": "gas_lel"}


def guards(route: Any) -> tuple[list[Require], bool]:
    """The route's :class:`Require` dependencies, and whether it is marked public."""
    found: list[Require] = []
    is_public = False
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Require):
            found.append(dep.call)
        if dep.call is public:
            is_public = True
        stack.extend(dep.dependencies)
    return found, is_public


def api_routes(app: FastAPI) -> list[tuple[str, Any]]:
    """(method, route) of every ``/api/v1`` operation, with the dependencies of the routers
    it is included through (FastAPI's effective route)."""
    out = []
    for r in iter_route_contexts(app.routes):
        if isinstance(r.original_route, APIRoute) and (r.path or "").startswith(PREFIX):
            out += [(m, r) for m in sorted((r.methods or set()) - {"HEAD", "OPTIONS"})]
    return out


@dataclass
class Creds:
    full: str  #: every scope, ws-0001 (where the samples are)
    other: dict[str, str]  #: every scope, in regions that do not hold the samples
    lacking: dict[str, str]  #: scope → every scope but that one, ws-0001
    dead: dict[str, str]  #: why → a credential that must get 401


def _key(s: Session, scopes: frozenset[str], region: str, **extra: Any) -> str:
    tid = secrets.token_hex(6)
    token = f"shk_{tid}_{secrets.token_urlsafe(32)}"
    kind, rid = region.split(":")
    s.add(
        ApiToken(
            id=tid,
            token_hash=hash_token(token),
            role="key",
            region_kind=kind,
            region_id=rid,
            name=f"route test {region}",
            created_at=NOW,
            scopes=" ".join(sorted(scopes)),
            **extra,
        )
    )
    return token


def _dead_session(base: str, sessions: Any) -> tuple[str, str]:
    """An access token after logout, and one of a disabled user."""
    with httpx.Client(base_url=base) as c:
        r = c.post(f"{PREFIX}/auth/login", json={"username": "leaver", "password": "leaver password 1"})
        assert r.status_code == 200, r.text
        gone = r.json()["access_token"]
        assert c.post(f"{PREFIX}/auth/logout", headers={"Authorization": f"Bearer {gone}"}).status_code == 204
        r = c.post(f"{PREFIX}/auth/login", json={"username": "fired", "password": "fired password 12"})
        assert r.status_code == 200, r.text
        fired = r.json()["access_token"]
    with sessions() as s, s.begin():
        disable_user(s, "fired", NOW)
    return gone, fired


def _sample_webhook(base: str, token: str, world: World) -> None:
    """A subscription of ws-0001 and one (ping) delivery of it, made through the API."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.post(
            f"{PREFIX}/webhooks", json={"url": "https://ws1.example/hook", "region": "workstation:ws-0001"}
        )
        assert r.status_code == 201, r.text
        world.values["webhook_id"] = str(r.json()["id"])
        r = c.post(f"{PREFIX}/webhooks/{world.values['webhook_id']}/ping")
        assert r.status_code == 202, r.text
        world.values["delivery_id"] = r.json()["delivery_id"]


@dataclass
class Served:
    app: FastAPI
    base: str
    world: World
    creds: Creds
    sessions: Any


@pytest.fixture
def served(hub: Hub) -> Iterator[Served]:
    """The alarm tests' registry (ws-0001 … ws-0003, home-1 … home-3) and sample objects in
    ws-0001, served by a hub worker built like production (not started: no broker)."""
    sessions = hub.sessions
    world = World(alarm_id=raise_alarm(hub, "gw-1"))
    with sessions() as s, s.begin():
        provision.provision(s, "home-1", "gw-1", DAY)
        inc = Incident(
            id=str(uuid.uuid4()),
            area="workstation:ws-0001",
            open_key=None,
            workstation_id="ws-0001",
            subdistrict_id="sd-01",
            district_id="pudong",
            opened_at=DAY,
            last_member_at=DAY,
            pushed_at=DAY,
        )
        s.add(inc)
        world.values["incident_id"] = inc.id
        cmd = GatewayCommand(
            id=str(uuid.uuid4()),
            gateway_id="gw-1",
            name="selftest",
            issued_by="route test",
            issued_at=NOW,
            expires_at=NOW + dt.timedelta(minutes=5),
        )
        s.add(cmd)
        world.values["command_id"] = cmd.id
        sample_key = _key(s, frozenset({"alarms:read"}), "home:home-1")
        world.values["key_id"] = sample_key.split("_")[1]
        cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        for name, pw in (
            ("sample-user", "sample password 1"),
            ("leaver", "leaver password 1"),
            ("fired", "fired password 12"),
        ):
            create_user(s, name, pw, "workstation_operator", "workstation:ws-0001", NOW, hasher=cheap)
        creds = Creds(
            full=_key(s, ALL, "workstation:ws-0001"),
            other={
                region: _key(s, ALL, region)
                for region in (
                    "workstation:ws-0003",
                    "subdistrict:sd-02",
                    "workstation:ws-0002",
                    "home:home-2",
                )
            },
            lacking={scope: _key(s, ALL - {scope}, "workstation:ws-0001") for scope in SCOPES},
            dead={
                "expired key": _key(s, ALL, "workstation:ws-0001", expires_at=NOW - dt.timedelta(seconds=1)),
                "revoked key": _key(s, ALL, "workstation:ws-0001", revoked_at=NOW),
                "malformed": "not-a-token",
                "unknown key": f"shk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}",
            },
        )
    key = generate_key()
    settings = HubSettings(
        env="test",
        secrets={"key": key},
        worker_id=f"w-{uuid.uuid4().hex[:8]}",
        database={"url": hub.url, "migrate": False},
    )
    worker = build_hub(settings)
    with serve_app(worker.app) as base:
        _sample_webhook(base, creds.full, world)
        gone, fired = _dead_session(base, sessions)
        creds.dead["logged-out user"] = gone
        creds.dead["disabled user"] = fired
        yield Served(worker.app, base, world, creds, sessions)
    worker.engine.dispose()


def _url(route: Any, world: World, sessions: Any) -> str | None:
    path = route.path
    with sessions() as s:
        for name in route.param_convertors:
            if name not in SAMPLES:
                return None
            path = path.replace("{" + name + "}", SAMPLES[name](s, world))
    return str(path)


def _call(c: httpx.Client, method: str, route: Any, url: str, token: str | None) -> int:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = BODIES.get((method, route.path))
    needs_body = route.original_route.body_field is not None
    params = {q.alias: QUERY[q.alias] for q in route.dependant.query_params if q.alias in QUERY}
    with c.stream(method, url, headers=headers, params=params, json=body if needs_body else None) as r:
        return r.status_code  # never reads a stream's body


def violations(s: Served, routes: list[tuple[str, Any]] | None = None) -> list[str]:
    bad: list[str] = []
    with httpx.Client(base_url=s.base, timeout=30) as c:
        for method, route in routes if routes is not None else api_routes(s.app):
            where = f"{method} {route.path}"
            found, is_public = guards(route)
            if is_public:
                if (method, route.path) not in PUBLIC:
                    bad.append(f"{where}: marked public but not a login route")
                continue
            if not found:
                bad.append(f"{where}: no Depends(require(scope))")
            url = _url(route, s.world, s.sessions)
            if url is None:
                bad.append(f"{where}: add a sample id for its path parameters to SAMPLES")
                continue
            if route.original_route.body_field is not None and (method, route.path) not in BODIES:
                bad.append(f"{where}: add a valid body to BODIES")
            for why, token in [("none", None), *s.creds.dead.items()]:
                got = _call(c, method, route, url, token)
                if got != 401:
                    bad.append(f"{where}: {why} credential got {got}, not 401")
            for scope in {g.scope for g in found if g.scope is not None}:
                got = _call(c, method, route, url, s.creds.lacking[scope])
                if got != 403:
                    bad.append(f"{where}: a credential lacking {scope} got {got}, not 403")
            if not found:
                got = _call(c, method, route, url, s.creds.lacking["alarms:read"])
                bad.append(f"{where}: with no scope check, a credential lacking alarms:read got {got}")
            for region, token in s.creds.other.items():
                other = _call(c, method, route, url, token)
                if route.param_convertors and other != 404:
                    bad.append(f"{where}: a credential of another region ({region}) got {other}, not 404")
                if (not route.param_convertors and other in (401, 403)) or other >= 500:
                    bad.append(f"{where}: a credential of another region ({region}) got {other}")
            mine = _call(c, method, route, url, s.creds.full)
            # 503 where the route documents it (a command while the broker is away: the
            # hub is built here, not started)
            away = mine == 503 and "503" in {str(k) for k in route.original_route.responses}
            if mine in (401, 403, 404, 422) or (mine >= 500 and not away):
                bad.append(f"{where}: a credential with every scope in the samples' region got {mine}")
    return bad


def test_every_route_checks_credential_scope_and_region(served: Served) -> None:
    routes = api_routes(served.app)
    # not vacuous: the app's routes of every feature are in, object routes among them
    paths = {r.path for _, r in routes}
    assert {
        "/api/v1/alarms",
        "/api/v1/alarms/{alarm_id}",
        "/api/v1/keys/{key_id}",
        "/api/v1/audit",
        "/api/v1/provision/gateways/{gateway_id}",
        "/api/v1/users/{username}",
    } <= paths
    assert {(m, r.path) for m, r in routes if guards(r)[1]} == PUBLIC
    bad = violations(served)
    assert bad == [], "\n".join(bad)


def test_a_route_without_the_check_fails_the_enumeration(served: Served) -> None:
    """Throwaway routes: one with no check at all, one with a credential but no scope, one
    that forgets the region: each is reported."""
    router = APIRouter(prefix=PREFIX)

    @router.get("/throwaway/open/{alarm_id}")
    def wide_open(alarm_id: str) -> dict[str, str]:
        return {"alarm": alarm_id}

    @router.get("/throwaway/signed-in/{alarm_id}", dependencies=[Depends(principal)])
    def signed_in(alarm_id: str) -> dict[str, str]:
        return {"alarm": alarm_id}

    @router.get("/throwaway/no-region/{alarm_id}", dependencies=[Depends(Require("alarms:read"))])
    def no_region(alarm_id: str) -> dict[str, str]:
        return {"alarm": alarm_id}

    served.app.include_router(router)
    mine = [(m, r) for m, r in api_routes(served.app) if "/throwaway/" in r.path]
    assert len(mine) == 3
    found = violations(served, mine)
    assert "GET /api/v1/throwaway/open/{alarm_id}: no Depends(require(scope))" in found
    assert "GET /api/v1/throwaway/open/{alarm_id}: none credential got 200, not 401" in found
    assert "GET /api/v1/throwaway/signed-in/{alarm_id}: no Depends(require(scope))" in found
    assert not any("signed-in" in f and "not 401" in f for f in found)  # it does ask for a credential
    assert any("signed-in" in f and "lacking alarms:read got 200" in f for f in found)
    assert (
        found[-1]
        == "GET /api/v1/throwaway/no-region/{alarm_id}: a credential of another region (home:home-2) got 200, not 404"
    )
