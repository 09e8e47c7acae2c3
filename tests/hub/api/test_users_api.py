"""Console users over real HTTP: login, access-token expiry, refresh rotation (a reused
refresh token revokes the session), logout, disabling, brute-force lockout per account and
per source address with one generic answer, and the user named in the alarm history."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import select

from hub.api.app import make_api_app
from hub.api.auth import credential_refusal
from hub.api.context import ApiContext
from hub.api.models import LoginThrottle, User
from hub.api.throttle import ACCOUNT, ADDRESS
from hub.api.users import LOGIN_FAILED, LOGIN_LOCKED, LoginRefused, create_user, login, resolve_access
from hub.audit import AuditEntry
from hub.cli import hub as hub_cli
from tests.hub.conftest import Hub, raise_alarm
from tests.support.http import serve_app

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
#: cheap argon2id parameters for the tests' own users (the hub's default costs ~0.1-0.5 s)
CHEAP = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
PASSWORD = "correct horse battery"


@dataclass
class Api:
    hub: Hub
    c: httpx.Client

    def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        return self.c.post(LOGIN, json={"username": username, "password": password})

    def tokens(self, username: str) -> dict[str, str]:
        r = self.login(username)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(hub: Hub) -> Iterator[Api]:
    with hub.sessions() as s, s.begin():
        create_user(
            s,
            "lina",
            PASSWORD,
            "workstation_operator",
            "workstation:ws-0001",
            hub.clock.now(),
            display_name="Li Na",
            hasher=CHEAP,
        )
        create_user(
            s,
            "wang",
            PASSWORD,
            "subdistrict_supervisor",
            "subdistrict:sd-01",
            hub.clock.now(),
            display_name="Wang Fang",
            hasher=CHEAP,
        )
    app = make_api_app(ApiContext(hub.sessions, hub.clock, password_hasher=CHEAP))
    with serve_app(app) as base, httpx.Client(base_url=base) as c:
        yield Api(hub, c)


def audit_actions(hub: Hub) -> list[tuple[str, str]]:
    with hub.sessions() as s:
        return [(e.action, e.target) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_login_gives_tokens_that_work_and_expire(api: Api) -> None:
    t = api.tokens("lina")
    assert t["token_type"] == "bearer" and t["role"] == "workstation_operator"
    assert (
        t["region"] == "workstation:ws-0001"
        and "alarms:write" in t["scopes"]
        and "audit:read" not in t["scopes"]
    )
    me = api.c.get("/api/v1/me", headers=bearer(t["access_token"])).json()
    assert (me["kind"], me["username"], me["name"]) == ("user", "lina", "Li Na")
    api.hub.clock.advance(minutes=15)  # the access token's life
    r = api.c.get("/api/v1/me", headers=bearer(t["access_token"]))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    # the refresh token outlives it: a new pair, and the new access token works
    fresh = api.c.post(REFRESH, json={"refresh_token": t["refresh_token"]})
    assert fresh.status_code == 200, fresh.text
    assert api.c.get("/api/v1/me", headers=bearer(fresh.json()["access_token"])).status_code == 200
    api.hub.clock.advance(hours=12)
    gone = api.c.post(REFRESH, json={"refresh_token": fresh.json()["refresh_token"]})
    assert gone.status_code == 401


def test_passwords_are_argon2id_hashes(api: Api) -> None:
    with api.hub.sessions() as s:
        stored = s.scalars(select(User.password_hash).where(User.username == "lina")).one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_session(api: Api) -> None:
    t = api.tokens("lina")
    first = api.c.post(REFRESH, json={"refresh_token": t["refresh_token"]}).json()
    assert first["refresh_token"] != t["refresh_token"] and first["access_token"] != t["access_token"]
    # the old access token stopped working with the rotation
    assert api.c.get("/api/v1/me", headers=bearer(t["access_token"])).status_code == 401
    # the old refresh token again: someone holds a copy; the whole session ends
    assert api.c.post(REFRESH, json={"refresh_token": t["refresh_token"]}).status_code == 401
    assert api.c.get("/api/v1/me", headers=bearer(first["access_token"])).status_code == 401
    assert api.c.post(REFRESH, json={"refresh_token": first["refresh_token"]}).status_code == 401
    assert ("session.reuse_revoked", f"session:{first['refresh_token'].split('_')[1]}") in audit_actions(
        api.hub
    )
    # garbage is a plain 401 too
    assert api.c.post(REFRESH, json={"refresh_token": "shr_0123456789ab_" + "x" * 40}).status_code == 401


def test_logout_and_disable_end_sessions_at_once(api: Api) -> None:
    t = api.tokens("lina")
    assert api.c.post("/api/v1/auth/logout", headers=bearer(t["access_token"])).status_code == 204
    assert api.c.get("/api/v1/me", headers=bearer(t["access_token"])).status_code == 401
    assert api.c.post(REFRESH, json={"refresh_token": t["refresh_token"]}).status_code == 401
    t = api.tokens("lina")
    cli = CliRunner().invoke(hub_cli, ["user", "disable", "lina", "--db-url", api.hub.url])
    assert cli.exit_code == 0, cli.output
    assert api.c.get("/api/v1/me", headers=bearer(t["access_token"])).status_code == 401
    r = api.login("lina")
    assert r.status_code == 401 and r.json()["detail"] == LOGIN_FAILED


def test_brute_force_locks_the_account_with_one_generic_answer(api: Api) -> None:
    answers = [api.login("lina", f"guess {i}") for i in range(ACCOUNT.max_failures)]
    assert {(r.status_code, r.json()["detail"]) for r in answers} == {(401, LOGIN_FAILED)}
    # locked: even the right password is refused, and the answer is the same as for a
    # name that does not exist and is locked too
    locked = api.login("lina")
    assert locked.status_code == 429 and locked.json()["detail"] == LOGIN_LOCKED
    assert 0 < int(locked.headers["retry-after"]) <= ACCOUNT.lockout.total_seconds()
    for i in range(ACCOUNT.max_failures):
        assert api.login("nobody", f"guess {i}").json()["detail"] == LOGIN_FAILED
    assert api.login("nobody").status_code == 429
    # another account is not locked by it (this address has 10 failures, limit 20)
    assert api.login("wang").status_code == 200
    # the lockout ends by itself; a right password then clears the account's count
    api.hub.clock.advance(seconds=ACCOUNT.lockout.total_seconds())
    assert api.login("lina").status_code == 200
    assert api.login("lina", "one more typo").status_code == 401
    assert api.login("lina").status_code == 200
    actions = [a for a, _ in audit_actions(api.hub)]
    assert actions.count("login.failed") == 2 * ACCOUNT.max_failures + 1
    assert actions.count("login.locked") == 2 and actions.count("login.ok") == 3


def test_one_address_spraying_many_accounts_is_locked_out(api: Api) -> None:
    per_name = ACCOUNT.max_failures - 1  # never enough to lock a single account
    tried = 0
    n = 0
    while tried < ADDRESS.max_failures:
        for _ in range(min(per_name, ADDRESS.max_failures - tried)):
            assert api.login(f"user{n}", "Winter2026!").status_code == 401
            tried += 1
        n += 1
    r = api.login("wang")  # a real account, the right password: this address is locked out
    assert r.status_code == 429 and r.json()["detail"] == LOGIN_LOCKED


def test_the_alarm_history_names_the_user(api: Api) -> None:
    alarm_id = raise_alarm(api.hub, "gw-1")
    t = api.tokens("lina")
    r = api.c.post(
        f"/api/v1/alarms/{alarm_id}/acknowledge",
        json={},
        headers={**bearer(t["access_token"]), "Idempotency-Key": "k1"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["history"][-1]["actor"] == "Li Na [user lina]"
    # an operator may not review (alarms:review): 403 from the one check
    r = api.c.post(
        f"/api/v1/alarms/{alarm_id}/review",
        json={},
        headers={**bearer(t["access_token"]), "Idempotency-Key": "k2"},
    )
    assert r.status_code == 403 and "alarms:review" in r.json()["detail"]


def test_users_through_the_api_stay_within_the_makers_region(api: Api) -> None:
    with api.hub.sessions() as s, s.begin():
        create_user(
            s, "admin", PASSWORD, "district_admin", "district:pudong", api.hub.clock.now(), hasher=CHEAP
        )
    admin = bearer(api.tokens("admin")["access_token"])
    body = {
        "username": "zhao",
        "password": "a long password",
        "role": "workstation_operator",
        "region": "workstation:ws-0003",
        "display_name": "Zhao Lei",
    }
    r = api.c.post("/api/v1/users", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["region"] == "workstation:ws-0003" and "password" not in r.text
    # the role's region kind is checked, and short passwords are refused, naming the rule
    r = api.c.post(
        "/api/v1/users", json={**body, "username": "zhao2", "role": "district_admin"}, headers=admin
    )
    assert r.status_code == 422 and "bound to a district" in r.text
    r = api.c.post("/api/v1/users", json={**body, "username": "zhao3", "password": "short"}, headers=admin)
    assert r.status_code == 422 and "at least 10 characters" in r.text
    # no user gets a scope its maker lacks: the admin cannot make an auditor
    r = api.c.post("/api/v1/users", json={**body, "username": "audit2", "role": "auditor",
                                          "region": "district:pudong"}, headers=admin)
    assert r.status_code == 403 and "audit:read" in r.json()["detail"]
    # a supervisor has no users:manage
    sup = bearer(api.tokens("wang")["access_token"])
    assert api.c.get("/api/v1/users", headers=sup).status_code == 403
    assert [u["username"] for u in api.c.get("/api/v1/users", headers=admin).json()] == [
        "admin",
        "lina",
        "wang",
        "zhao",
    ]
    assert ("user.create", "user:zhao") in audit_actions(api.hub)


def test_user_add_cli_asks_for_the_password_and_audits(hub: Hub) -> None:
    r = CliRunner().invoke(
        hub_cli,
        [
            "user",
            "add",
            "chen",
            "--role",
            "installer",
            "--region",
            "workstation:ws-0002",
            "--name",
            "Chen Jie",
            "--db-url",
            hub.url,
        ],
        input="installer password\ninstaller password\n",
    )
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        hub_cli,
        [
            "user",
            "add",
            "chen2",
            "--role",
            "auditor",
            "--region",
            "workstation:ws-0002",
            "--password-stdin",
            "--db-url",
            hub.url,
        ],
        input="auditor password\n",
    )
    assert r.exit_code != 0 and "auditor is bound to a district or subdistrict" in r.output
    with hub.sessions() as s:
        u = s.scalars(select(User).where(User.username == "chen")).one()
        assert (u.role, u.region_id, u.display_name) == ("installer", "ws-0002", "Chen Jie")
        entries = s.scalars(select(AuditEntry)).all()
    assert [(e.actor, e.action, e.target, e.source) for e in entries] == [
        ("cli", "user.create", "user:chen", "cli")
    ]


def test_an_open_stream_rechecks_a_user_session(api: Api) -> None:
    """The event stream re-reads its credential every few seconds (hub/api/stream.py): for a
    user that is the session, which a logout or an expiry ends."""
    ctx = ApiContext(api.hub.sessions, api.hub.clock, password_hasher=CHEAP)
    t = api.tokens("lina")
    p = resolve_access(ctx, t["access_token"], "127.0.0.1")
    assert p is not None and p.kind == "user"
    with api.hub.sessions() as s:
        assert credential_refusal(s, p, api.hub.clock.now()) is None
    assert api.c.post("/api/v1/auth/logout", headers=bearer(t["access_token"])).status_code == 204
    with api.hub.sessions() as s:
        assert credential_refusal(s, p, api.hub.clock.now()) == "token_revoked"
    p2 = resolve_access(ctx, api.tokens("lina")["access_token"], "127.0.0.1")
    assert p2 is not None
    with api.hub.sessions() as s:
        assert credential_refusal(s, p2, api.hub.clock.now() + ctx.access_ttl) == "token_expired"


def _throttle_rows(hub: Hub) -> int:
    with hub.sessions() as s:
        return len(s.scalars(select(LoginThrottle.key)).all())


def _refused(ctx: ApiContext, name: str, password: str, source: str) -> int:
    with pytest.raises(LoginRefused) as err:
        login(ctx, name, password, source)
    return err.value.status


def test_the_throttle_forgets_expired_counts_and_stays_bounded(hub: Hub) -> None:
    """An attacker trying new names from new addresses for two hours: without pruning every
    one stays a row (480 here); with it the table holds the counts of the last window."""
    ctx = ApiContext(hub.sessions, hub.clock, password_hasher=CHEAP)
    per_round, step = 10, dt.timedelta(minutes=5)
    sizes = []
    for r in range(24):
        for i in range(per_round):
            assert _refused(ctx, f"guess-{r}-{i}", "Winter2026!", f"10.9.{r}.{i}") == 401
        sizes.append(_throttle_rows(hub))
        hub.clock.advance(seconds=step.total_seconds())
    # an account and an address row per failure, for the rounds within one window (15 min:
    # this round and the two before; the one 15 min back has just expired)
    live = 2 * per_round * math.ceil(ACCOUNT.window / step)
    assert max(sizes) == live and sizes[-1] == live, sizes
    # and nothing expired lingers: every row left was started within the last window
    last_round_at = hub.clock.now() - step
    with hub.sessions() as s:
        starts = [t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in s.scalars(select(LoginThrottle.window_start))]
    assert min(starts) > last_round_at - ACCOUNT.window


def test_a_lockout_outlives_its_window_through_pruning(api: Api) -> None:
    """Five failures spread over 12 minutes lock lina until 15 minutes after the last one; a
    prune after her window ended (16 min) keeps the count while the lockout holds."""
    ctx = ApiContext(api.hub.sessions, api.hub.clock, password_hasher=CHEAP)
    for i in range(ACCOUNT.max_failures):
        assert _refused(ctx, "lina", f"guess {i}", "10.8.0.21") == 401
        if i < ACCOUNT.max_failures - 1:
            api.hub.clock.advance(seconds=180)
    locked_at = api.hub.clock.now()
    api.hub.clock.advance(seconds=4 * 60)  # 16 min after the first failure: her window is over
    assert _refused(ctx, "someone", "Winter2026!", "10.8.0.99") == 401  # prunes (a minute since the last)
    assert _throttle_rows(api.hub) >= 3  # lina's, her address's, and the new ones
    assert _refused(ctx, "lina", PASSWORD, "10.8.0.22") == 429  # the right password, still locked
    assert api.login("lina").status_code == 429  # over HTTP too (another address: the account's lock)
    api.hub.clock.advance(seconds=(locked_at + ACCOUNT.lockout - api.hub.clock.now()).total_seconds())
    assert login(ctx, "lina", PASSWORD, "10.8.0.22").principal.actor.startswith("Li Na")
