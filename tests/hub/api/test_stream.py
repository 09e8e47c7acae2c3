"""The console stream over real HTTP (SSE), scoped by the token's region."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest
import uvicorn

from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.tokens import create_token, revoke_token
from hub.notify.console import ConsoleBus
from tests.hub.alarms.conftest import Hub
from tests.support.http import serve_app
from tests.support.hub_mqtt import until
from tests.support.mosquitto import free_port


async def test_stream_sends_only_the_callers_region_once(hub: Hub) -> None:
    with hub.sessions() as s, s.begin():
        token, _ = create_token(s, "viewer", "subdistrict:sd-01", "sd1 wall", hub.clock.now())
    bus = ConsoleBus()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            make_api_app(ApiContext(hub.sessions, hub.clock, bus=bus)),
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started, 10, "uvicorn started")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            assert (await c.get("/api/v1/alarms/stream")).status_code == 401
            headers = {"Authorization": f"Bearer {token}"}
            async with c.stream("GET", "/api/v1/alarms/stream", headers=headers) as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                lines = r.aiter_lines()
                assert await anext(lines) == ": connected"
                mine = {
                    "event": "alarm.raised",
                    "alarm_id": "a1",
                    "subdistrict_id": "sd-01",
                    "state": "raised",
                    "count": 1,
                }
                other = {
                    "event": "alarm.raised",
                    "alarm_id": "a2",
                    "subdistrict_id": "sd-02",
                    "state": "raised",
                    "count": 1,
                }
                bus.publish("workstation:ws-0003", other)
                bus.publish("workstation:ws-0001", mine)
                bus.publish("subdistrict:sd-01", mine)  # the same change on a second console
                bus.publish("workstation:ws-0001", mine | {"event": "alarm.updated", "state": "acknowledged"})
                got = []
                async for line in lines:
                    if line.startswith("data: "):
                        got.append(line)
                    if len(got) == 2:
                        break
    finally:
        server.should_exit = True
        await task
    assert '"alarm_id":"a1"' in got[0] and '"state":"raised"' in got[0]
    assert '"state":"acknowledged"' in got[1]
    assert not any('"a2"' in g for g in got)


@pytest.mark.parametrize("how", ["revoked", "expired"])
def test_an_open_stream_closes_when_its_token_is_revoked_or_expires(hub: Hub, how: str) -> None:
    with hub.sessions() as s, s.begin():
        token, p = create_token(
            s, "viewer", "subdistrict:sd-01", "wall", hub.clock.now(), hub.clock.now() + dt.timedelta(hours=8)
        )
    bus = ConsoleBus()
    app = make_api_app(ApiContext(hub.sessions, hub.clock, bus=bus, token_recheck_s=0.1))
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        headers = {"Authorization": f"Bearer {token}"}
        with c.stream("GET", "/api/v1/alarms/stream", headers=headers) as r:
            lines = (line for line in r.iter_lines() if line)
            assert next(lines) == ": connected"
            bus.publish(
                "workstation:ws-0001", {"event": "alarm.raised", "alarm_id": "a1", "subdistrict_id": "sd-01"}
            )
            assert next(lines) == "event: alarm.raised"  # still open and delivering
            if how == "revoked":
                with hub.sessions() as s, s.begin():
                    assert revoke_token(s, p.token_id, hub.clock.now())
            else:
                hub.clock.advance(hours=8)
            rest = list(lines)  # ends: the server closed the stream
        assert rest[-2:] == ["event: closed", f'data: {{"reason":"token_{how}"}}']
        assert c.get("/api/v1/me", headers=headers).status_code == 401
