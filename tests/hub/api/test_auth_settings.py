"""``[hub.auth]`` reaches the API a hub worker serves: the access and refresh tokens' lifetimes
and the argon2id cost (a user made with other parameters is re-hashed at login)."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import select

from hub.api.models import User
from hub.api.users import create_user
from hub.runner import build_hub
from hub.settings import AuthSettings, HubSettings, MqttSettings, SecretsSettings
from tests.hub.conftest import SECRETS_KEY, Hub
from tests.support.http import serve_app

PASSWORD = "correct horse battery"


def _stamp(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))


def test_token_lifetimes_and_argon2_cost_come_from_the_settings(hub: Hub) -> None:
    with hub.sessions() as s, s.begin():  # as `safehome hub user add` does: argon2-cffi's defaults
        create_user(s, "lina", PASSWORD, "workstation_operator", "workstation:ws-0001", dt.datetime.now(dt.UTC))
    settings = HubSettings(
        env="test",
        secrets=SecretsSettings(key=SECRETS_KEY),
        database={"url": hub.url, "migrate": False},
        mqtt=MqttSettings(port=1),  # never connected: the hub is built, not started
        auth=AuthSettings(
            access_ttl_s=120, refresh_ttl_s=1800, argon2_time_cost=2, argon2_memory_kib=19456, argon2_parallelism=1
        ),
    )
    worker = build_hub(settings)
    try:
        with serve_app(worker.app) as base:
            before = dt.datetime.now(dt.UTC)
            r = httpx.post(f"{base}/api/v1/auth/login", json={"username": "lina", "password": PASSWORD})
            after = dt.datetime.now(dt.UTC)
        assert r.status_code == 200, r.text
        body = r.json()
        assert before + dt.timedelta(seconds=120) <= _stamp(body["expires_at"]) <= after + dt.timedelta(seconds=120)
        refresh = _stamp(body["refresh_expires_at"])
        assert before + dt.timedelta(seconds=1800) <= refresh <= after + dt.timedelta(seconds=1800)
        with hub.sessions() as s:
            stored = s.scalars(select(User.password_hash).where(User.username == "lina")).one()
        assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")  # re-hashed at login
    finally:
        worker.engine.dispose()
