"""Gateway commands end to end: the API publishes on the gateway's ``cmd`` topic through a
real Mosquitto (the hub's generated ACL and isolation plugin), a real edge agent runs the
command and answers on ``result``, the hub's ingest records the answer on the command."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from gpiozero.pins.mock import MockFactory

from hub.api.tokens import create_token
from hub.db.commands import GatewayCommand
from hub.runner import build_hub
from hub.sealing import generate_key
from hub.settings import load_hub_settings
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from safehome.testing.registry import seed_small_district
from tests.edge.conftest import make_agent, running, settings_for
from tests.support.hub_mqtt import start_secured_broker


async def test_commands_reach_a_real_agent_and_its_answers_are_recorded(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path
) -> None:
    secured = start_secured_broker(mosquitto_factory, tmp_path / "b")
    settings = load_hub_settings(
        None, env="test", worker_id="cmd-1", secrets={"key": generate_key()},
        database={"url": f"sqlite:///{tmp_path / 'hub.db'}"},
        mqtt={"port": secured.broker.port, "password": secured.hub_password},
        http={"port": 0},
    )
    hub = build_hub(settings)  # the default extensions: alarm engine, then resources
    seed_small_district(hub.session_factory)
    with hub.session_factory() as s, s.begin():
        op, _ = create_token(s, "operator", "workstation:ws-0001", "ws1 desk", dt.datetime.now(dt.UTC))
        viewer, _ = create_token(s, "viewer", "workstation:ws-0001", "ws1 viewer", dt.datetime.now(dt.UTC))
    agent_settings = settings_for(
        tmp_path / "edge", secured.broker, gateway_id="gw-1",
        mqtt={"host": secured.broker.host, "port": secured.broker.port, "password": secured.gateway("gw-1"),
              "reconnect_min_s": 0.1, "reconnect_max_s": 0.5, "connect_timeout_s": 5},
    )
    factory = MockFactory()
    await hub.start()
    try:
        async with running(make_agent(agent_settings, factory)), httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{hub.http_port}"
        ) as http:
            await until(lambda: hub.ingest is not None and hub.ingest.subscribed.is_set(), what="hub subscribed")

            async def send(token: str, gw: str, body: dict[str, Any]) -> httpx.Response:
                return await http.post(
                    f"/api/v1/gateways/{gw}/commands", json=body, headers={"Authorization": f"Bearer {token}"}
                )

            async def answered(cmd_id: str) -> dict[str, Any]:
                result: dict[str, Any] = {}

                async def poll() -> bool:
                    r = await http.get(
                        f"/api/v1/gateways/gw-1/commands/{cmd_id}", headers={"Authorization": f"Bearer {op}"}
                    )
                    assert r.status_code == 200, r.text
                    result.update(r.json())
                    return bool(result["state"] == "answered")

                await _until_async(poll, what=f"answer to {cmd_id}")
                return result

            r = await send(op, "gw-1", {"name": "selftest"})
            assert r.status_code == 202, r.text
            sent = r.json()
            assert sent["state"] in ("sent", "answered") and sent["issued_by"] == f"ws1 desk [{op.split('_')[1]}]"
            done = await answered(sent["id"])
            assert done["ok"] is True and done["name"] == "selftest"
            assert "store" in done["data"] and done["answered_at"] is not None

            r = await send(op, "gw-1", {"name": "report_status"})
            done = await answered(r.json()["id"])
            assert done["ok"] is True

            # the status it sent on request reached the gateway's detail
            async def reported() -> bool:
                g = (await http.get("/api/v1/gateways/gw-1", headers={"Authorization": f"Bearer {op}"})).json()
                return g["connectivity"] == "online" and (g["agent_version"] or "").startswith("safehome-edge")

            await _until_async(reported, what="status in the gateway detail")

            r = await send(op, "gw-1", {"name": "silence_siren"})
            assert (await answered(r.json()["id"]))["ok"] is True

            listed = await http.get("/api/v1/gateways/gw-1/commands", headers={"Authorization": f"Bearer {op}"})
            assert [c["name"] for c in listed.json()] == ["silence_siren", "report_status", "selftest"]

            # refused before anything is published: another region (404), no scope (403), bad input (422)
            assert (await send(op, "gw-2", {"name": "selftest"})).status_code == 404
            assert (await send(viewer, "gw-1", {"name": "selftest"})).status_code == 403
            bad = await send(op, "gw-1", {"name": "format_disk"})
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.name"
            with hub.session_factory() as s:
                assert s.query(GatewayCommand).count() == 3
            recorded = hub.metrics.registry.get_sample_value("safehome_command_results_total", {"outcome": "recorded"})
            assert recorded == 3

            # no broker: the command is recorded as unsent and the caller told so (503)
            secured.broker.stop()
            r = await send(op, "gw-1", {"name": "selftest"})
            assert r.status_code == 503 and "not sent" in r.json()["detail"]
            assert r.json()["error"] == "broker_unavailable"  # not the database's code
            with hub.session_factory() as s:
                [unsent] = s.query(GatewayCommand).filter(GatewayCommand.state == "unsent").all()
                assert unsent.name == "selftest" and unsent.sent_at is None
    finally:
        await hub.stop()
        factory.reset()


async def _until_async(cond: Callable[[], Awaitable[bool]], within: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not await cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)
