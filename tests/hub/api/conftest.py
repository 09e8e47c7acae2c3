"""The API tests' ``api`` fixture: the alarm tests' hub behind real HTTP, desks with tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.tokens import create_token
from tests.hub.conftest import Hub, raise_alarm
from tests.support.http import serve_app


@dataclass
class Api:
    """The API served over HTTP with a token per desk (ws1, ws1-viewer, ws2, sd1, sd2, district)
    and one open alarm per gateway (gw-1..3)."""

    hub: Hub
    client: httpx.Client
    tokens: dict[str, str]
    alarms: dict[str, str]  # gateway → alarm id

    def get(self, who: str, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, **kw)

    def post(self, who: str, path: str, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}", "Idempotency-Key": key}
        return self.client.post(path, headers=headers, json=body or {})


@pytest.fixture
def api(hub: Hub) -> Iterator[Api]:
    tokens = {}
    with hub.sessions() as s, s.begin():
        for who, role, region in [
            ("ws1", "operator", "workstation:ws-0001"),
            ("ws1-viewer", "viewer", "workstation:ws-0001"),
            ("ws2", "operator", "workstation:ws-0002"),
            ("sd1", "supervisor", "subdistrict:sd-01"),
            ("sd2", "operator", "subdistrict:sd-02"),
            ("district", "supervisor", "district:pudong"),
        ]:
            tokens[who], _ = create_token(s, role, region, f"{who} desk", hub.clock.now())
    alarms = {gw: raise_alarm(hub, gw) for gw in ("gw-1", "gw-2", "gw-3")}
    app = make_api_app(ApiContext(hub.sessions, hub.clock))
    with serve_app(app) as base, httpx.Client(base_url=base) as client:
        yield Api(hub, client, tokens, alarms)
