"""The hub's HTTP listener over TLS (``[hub.http] tls_certfile / tls_keyfile``): uvicorn with
the runner's own settings, a self-signed certificate, a client that verifies it."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import httpx
import pytest
import uvicorn

from hub.app import create_app
from hub.metrics import HubMetrics
from hub.runner import http_config
from hub.settings import HttpSettings, HubSettings
from safehome.testing.mosquitto import free_port
from safehome.testing.pki import self_signed
from safehome.testing.poll import until


async def test_https_listener_serves_and_plain_http_does_not(tmp_path: Path) -> None:
    certfile, keyfile = self_signed(tmp_path, "hub", hosts=("127.0.0.1",))
    http = HttpSettings(port=free_port(), tls_certfile=certfile, tls_keyfile=keyfile)
    server = uvicorn.Server(
        http_config(create_app(HubSettings(env="dev", http=http), HubMetrics(), {}), http)
    )
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started, 10, "uvicorn started")
        verify = ssl.create_default_context(cafile=str(certfile))
        async with httpx.AsyncClient(verify=verify, timeout=10) as c:
            r = await c.get(f"https://127.0.0.1:{http.port}/healthz")
            assert r.status_code == 200 and r.json()["status"] == "ok"
        async with httpx.AsyncClient(timeout=10) as c:
            with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS port gets no answer
                await c.get(f"http://127.0.0.1:{http.port}/healthz")
            with pytest.raises(httpx.ConnectError):  # an unknown certificate is refused
                await c.get(f"https://127.0.0.1:{http.port}/healthz")
    finally:
        server.should_exit = True
        await task
