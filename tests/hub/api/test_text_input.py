"""No control characters in any API text: a walk over every route of the hub's real app
(from its OpenAPI description) puts a NUL into each text field in turn and expects 422
naming that field, on SQLite and PostgreSQL (where a NUL used to be a 500)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from hub.api.app import mount_api
from hub.api.context import ApiContext
from hub.api.text import first_forbidden
from hub.api.tokens import create_token
from hub.app import create_app
from hub.metrics import HubMetrics
from hub.notify.console import ConsoleBus
from hub.settings import HubSettings
from tests.hub.conftest import Hub, raise_alarm
from tests.support.http import serve_app

NUL = "a\x00b"


@dataclass(frozen=True)
class TextField:
    method: str
    path: str
    where: str  # path | query | header | body
    name: str
    op: dict[str, Any]

    @property
    def field(self) -> str:
        return f"{self.where}.{self.name.lower() if self.where == 'header' else self.name}"


def _is_text(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "string":
        return True
    if schema.get("type") == "array":
        return _is_text(schema.get("items", {}))
    return any(_is_text(s) for s in schema.get("anyOf", []))


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    out: dict[str, Any] = spec
    for part in ref.removeprefix("#/").split("/"):
        out = out[part]
    return out


def text_fields(spec: dict[str, Any]) -> list[TextField]:
    """Every text parameter and text body property of every operation of ``spec``."""
    found = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                if _is_text(p["schema"]):
                    found.append(TextField(method, path, p["in"], p["name"], op))
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                for name, prop in _resolve(spec, body["schema"]).get("properties", {}).items():
                    if _is_text(_resolve(spec, prop)):
                        found.append(TextField(method, path, "body", name, op))
    return found


#: A valid value for each parameter a request needs besides the one under test.
def _valid(where: str, name: str, alarm_id: str) -> str:
    return {"alarm_id": alarm_id, "action": "acknowledge", "since": "2026-01-01T00:00:00Z"}.get(
        name, "k-1" if where == "header" else "x"
    )


def build_request(
    c: httpx.Client | httpx.AsyncClient, f: TextField, alarm_id: str, token: str, value: str
) -> httpx.Request:
    path, query, headers = f.path, {}, {"Authorization": f"Bearer {token}"}
    for p in f.op.get("parameters", []):
        if p["name"] == f.name and p["in"] == f.where:
            v = value
        elif p["in"] == "path" or p.get("required"):
            v = _valid(p["in"], p["name"], alarm_id)
        else:
            continue
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", quote(v, safe=""))
        elif p["in"] == "query":
            query[p["name"]] = v
        else:
            headers[p["name"]] = v
    body = {f.name: value} if f.where == "body" else ({} if "requestBody" in f.op else None)
    return c.build_request(f.method.upper(), path, params=query, headers=headers, json=body)


@dataclass
class Walk:
    app: Any
    alarm_id: str
    token: str


@pytest.fixture
def walk(hub: Hub) -> Iterator[Walk]:
    with hub.sessions() as s, s.begin():
        token, _ = create_token(s, "supervisor", "district:pudong", "walker", hub.clock.now())
    app = create_app(HubSettings(env="dev"), HubMetrics(), {})
    mount_api(app, ApiContext(hub.sessions, hub.clock, bus=ConsoleBus()))
    yield Walk(app, raise_alarm(hub, "gw-1"), token)


def test_every_text_field_of_every_route_refuses_nul(walk: Walk) -> None:
    fields = text_fields(walk.app.openapi())
    # not vacuous: the alarm id, the list filters, the lifecycle body and its header are in
    names = {f.field for f in fields}
    assert {"path.alarm_id", "query.home_id", "query.state", "body.note", "body.responder"} <= names
    assert "header.idempotency-key" in names
    over_http = [f for f in fields if f.where != "header"]
    with serve_app(walk.app) as base, httpx.Client(base_url=base) as c:
        for f in over_http:
            r = c.send(build_request(c, f, walk.alarm_id, walk.token, NUL))
            assert r.status_code == 422, (f, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            body = r.json()
            assert f.field in {e["field"] for e in body["errors"]}, (f, body)
            assert body["error"] == "invalid_input" and "U+0000" in body["detail"]


async def test_header_text_is_checked_too(walk: Walk) -> None:
    """h11 (under uvicorn) refuses control characters in headers before the app sees them;
    the app's own check is proven in-process."""
    headers = [f for f in text_fields(walk.app.openapi()) if f.where == "header"]
    assert headers
    transport = httpx.ASGITransport(walk.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
        for f in headers:
            r = await c.send(build_request(c, f, walk.alarm_id, walk.token, "a\x01b"))
            assert r.status_code == 422 and f.field in r.text, (f, r.text)


def test_notes_keep_tabs_and_newlines_but_not_escapes_or_surrogates(walk: Walk) -> None:
    url = f"/api/v1/alarms/{walk.alarm_id}/acknowledge"
    auth = {"Authorization": f"Bearer {walk.token}"}
    with serve_app(walk.app) as base, httpx.Client(base_url=base, headers=auth) as c:
        for i, bad in enumerate(('"\\u001b[2J"', '"\\ud800"', '"\\u0085"')):
            r = c.post(
                url,
                content=b'{"note": ' + bad.encode() + b"}",
                headers={"Idempotency-Key": f"bad-{i}", "Content-Type": "application/json"},
            )
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.note", r.text
        ok = c.post(url, json={"note": "line 1\n\tline 2\r\n"}, headers={"Idempotency-Key": "good"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["history"][-1]["note"] == "line 1\n\tline 2\r\n"


def test_forbidden_characters() -> None:
    assert first_forbidden("ok\ttab\nnewline\r") is None
    assert first_forbidden("中文 ok") is None
    assert first_forbidden("x\x00") == (1, "\x00")
    assert first_forbidden("\x7f") == (0, "\x7f")
