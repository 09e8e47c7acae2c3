"""API keys for third parties, over real HTTP and the CLI: a key for a family app limited to
one home, shown once and stored hashed, never beyond its maker's scopes or region, last use
recorded, revocable, expiring."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import select

from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.models import ApiToken
from hub.api.tokens import create_key, hash_token
from hub.api.users import create_user
from hub.audit import AuditEntry
from hub.cli import hub as hub_cli
from tests.hub.conftest import Hub, raise_alarm
from tests.support.http import serve_app

CHEAP = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


@dataclass
class Api:
    hub: Hub
    c: httpx.Client
    supervisor: dict[str, str]  #: headers of a subdistrict supervisor of sd-01 (keys:manage)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(hub: Hub) -> Iterator[Api]:
    with hub.sessions() as s, s.begin():
        create_user(
            s,
            "wang",
            "supervisor password",
            "subdistrict_supervisor",
            "subdistrict:sd-01",
            hub.clock.now(),
            display_name="Wang Fang",
            hasher=CHEAP,
        )
    app = make_api_app(ApiContext(hub.sessions, hub.clock, password_hasher=CHEAP))
    with serve_app(app) as base, httpx.Client(base_url=base) as c:
        r = c.post("/api/v1/auth/login", json={"username": "wang", "password": "supervisor password"})
        assert r.status_code == 200, r.text
        yield Api(hub, c, bearer(r.json()["access_token"]))


def family_key(api: Api, **over: object) -> httpx.Response:
    body = {
        "name": "family app, home-1",
        "scopes": ["alarms:read", "residents:read"],
        "region": "home:home-1",
        "expires_at": (api.hub.clock.now() + dt.timedelta(days=90)).isoformat(),
        **over,
    }
    return api.c.post("/api/v1/keys", json=body, headers=api.supervisor)


def test_a_key_for_a_family_app_sees_one_home(api: Api) -> None:
    mine, neighbour = raise_alarm(api.hub, "gw-1"), raise_alarm(api.hub, "gw-2")  # both in sd-01
    r = family_key(api)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["region"] == "home:home-1" and made["scopes"] == ["alarms:read", "residents:read"]
    assert made["created_by"] == "Wang Fang [user wang]" and made["last_used_at"] is None
    key = made["key"]
    # shown once: never in a later answer; stored as its hash only
    again = api.c.get(f"/api/v1/keys/{made['id']}", headers=api.supervisor)
    assert again.status_code == 200 and "key" not in again.json() and key not in again.text
    with api.hub.sessions() as s:
        row = s.get(ApiToken, made["id"])
        assert row is not None and row.token_hash == hash_token(key)
    # what it sees: home-1's alarm only; the neighbour's is 404; no step may be taken
    page = api.c.get("/api/v1/alarms", headers=bearer(key)).json()
    assert [a["id"] for a in page["items"]] == [mine]
    assert api.c.get(f"/api/v1/alarms/{neighbour}", headers=bearer(key)).status_code == 404
    r = api.c.post(
        f"/api/v1/alarms/{mine}/acknowledge", json={}, headers={**bearer(key), "Idempotency-Key": "k"}
    )
    assert r.status_code == 403 and "alarms:write" in r.json()["detail"]
    me = api.c.get("/api/v1/me", headers=bearer(key)).json()
    assert (me["kind"], me["region"], me["scopes"]) == (
        "key",
        "home:home-1",
        ["alarms:read", "residents:read"],
    )
    with api.hub.sessions() as s:
        row = s.get(ApiToken, made["id"])
        assert row is not None and row.last_used_at == api.hub.clock.now()


def test_a_key_never_exceeds_its_maker(api: Api) -> None:
    r = family_key(api, scopes=["alarms:read", "audit:read"])  # the supervisor has no audit:read
    assert r.status_code == 403 and "audit:read" in r.json()["detail"]
    r = family_key(api, scopes=["keys:manage"])  # no key makes keys
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.scopes", r.text
    r = family_key(api, scopes=["alarms:raed"])
    assert r.status_code == 422 and "unknown scope(s) alarms:raed" in r.text
    r = family_key(api, region="home:home-3")  # sd-02: not the supervisor's
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.region"
    r = family_key(api, expires_at=(api.hub.clock.now() + dt.timedelta(days=800)).isoformat())
    assert r.status_code == 422 and "at most 731 days" in r.text


def test_revoked_and_expired_keys_stop_working(api: Api) -> None:
    made = family_key(api).json()
    short = family_key(api, expires_at=(api.hub.clock.now() + dt.timedelta(hours=1)).isoformat()).json()
    assert api.c.get("/api/v1/me", headers=bearer(made["key"])).status_code == 200
    r = api.c.delete(f"/api/v1/keys/{made['id']}", headers=api.supervisor)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert api.c.get("/api/v1/me", headers=bearer(made["key"])).status_code == 401
    # keys of other regions are neither listed nor readable (404)
    with api.hub.sessions() as s, s.begin():
        _, elsewhere = create_key(
            s, ["alarms:read"], "home:home-3", "sd-02 app", api.hub.clock.now(), None, "cli"
        )
    r = api.c.get("/api/v1/keys", headers=api.supervisor)
    assert r.status_code == 200, r.text
    assert {made["id"], short["id"]} <= {k["id"] for k in r.json()} and elsewhere.token_id not in r.text
    assert api.c.get(f"/api/v1/keys/{elsewhere.token_id}", headers=api.supervisor).status_code == 404
    assert api.c.delete(f"/api/v1/keys/{elsewhere.token_id}", headers=api.supervisor).status_code == 404
    api.hub.clock.advance(hours=1)
    assert api.c.get("/api/v1/me", headers=bearer(short["key"])).status_code == 401
    with api.hub.sessions() as s:
        log = [
            (e.action, e.target, e.actor)
            for e in s.scalars(select(AuditEntry).where(AuditEntry.action.like("key.%")))
        ]
    assert log == [
        ("key.create", f"key:{made['id']}", "Wang Fang [user wang]"),
        ("key.create", f"key:{short['id']}", "Wang Fang [user wang]"),
        ("key.revoke", f"key:{made['id']}", "Wang Fang [user wang]"),
    ]


def test_key_cli_create_list_revoke(api: Api) -> None:
    run = CliRunner()
    r = run.invoke(
        hub_cli,
        [
            "key",
            "create",
            "--scope",
            "alarms:read",
            "--scope",
            "readings:read",
            "--region",
            "home:home-1",
            "--name",
            "family app",
            "--expires-in-days",
            "30",
            "--db-url",
            api.hub.url,
        ],
    )
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    assert key.startswith("shk_")
    assert api.c.get("/api/v1/me", headers=bearer(key)).json()["scopes"] == ["alarms:read", "readings:read"]
    r = run.invoke(
        hub_cli,
        [
            "key",
            "create",
            "--scope",
            "users:manage",
            "--region",
            "home:home-1",
            "--name",
            "x",
            "--db-url",
            api.hub.url,
        ],
    )
    assert r.exit_code != 0 and "users:manage cannot be given here" in r.output
    key_id = key.split("_")[1]
    listing = run.invoke(hub_cli, ["key", "list", "--db-url", api.hub.url]).output
    assert key_id in listing and "alarms:read readings:read" in listing and key not in listing
    assert run.invoke(hub_cli, ["key", "revoke", key_id, "--db-url", api.hub.url]).exit_code == 0
    assert api.c.get("/api/v1/me", headers=bearer(key)).status_code == 401
    with api.hub.sessions() as s:
        log = [
            (e.actor, e.action, e.source)
            for e in s.scalars(select(AuditEntry).where(AuditEntry.target == f"key:{key_id}"))
        ]
    assert log == [("cli", "key.create", "cli"), ("cli", "key.revoke", "cli")]
