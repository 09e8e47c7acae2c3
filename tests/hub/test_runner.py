"""The assembled hub: `safehome hub run` wiring, /healthz and /metrics, clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi import APIRouter

import protocols as p
from hub.runner import Hub, build_hub
from hub.sealing import generate_key
from hub.settings import load_hub_settings
from safehome.testing.mosquitto import Mosquitto, free_port
from safehome.testing.poll import until, wait_for
from tests.hub.ingest.conftest import RecordingSink
from tests.support.hub_gateway import ScriptedGateway
from tests.support.hub_mqtt import start_secured_broker


def configure_probe(hub: Hub) -> None:
    """A feature added to a built hub, as build_hub adds the alarm service: a sink and a router."""
    sink = RecordingSink()
    hub.sinks.append(sink)
    router = APIRouter(prefix="/api/v1")

    @router.get("/probe")
    def probe() -> dict[str, int]:
        return {"sinks": len(hub.sinks)}

    hub.app.include_router(router)
    hub.app.state.probe_sink = sink


async def test_hub_serves_health_and_metrics_and_ingests(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path
) -> None:
    secured = start_secured_broker(mosquitto_factory, tmp_path / "b", extra="sys_interval 1\n")
    settings = load_hub_settings(
        None, env="test", worker_id="run-1", secrets={"key": generate_key()},
        database={"url": f"sqlite:///{tmp_path / 'hub.db'}"},
        mqtt={"port": secured.broker.port, "password": secured.hub_password},
        http={"port": 0},
    )
    hub = build_hub(settings, alarms=False)
    configure_probe(hub)
    await hub.start()
    gw = ScriptedGateway(secured, "run-gw-1").connect()
    try:
        base = f"http://127.0.0.1:{hub.http_port}"
        async with httpx.AsyncClient(base_url=base) as http:
            await until(lambda: hub.ingest is not None and hub.ingest.subscribed.is_set(), what="subscribed")
            r = await http.get("/healthz")
            assert r.status_code == 200, r.text
            assert r.json()["checks"]["database"]["ok"] is True
            ev = gw.event(p.EventKind.GAS, sensor="gas-1")
            gw.send(ev)
            await gw.acked([ev.id])
            text = (await http.get("/metrics")).text
            assert 'safehome_messages_in_total{type="event"} 1.0' in text
            assert "safehome_store_batch_seconds_bucket" in text
            assert "safehome_gateways_online" in text
            # the added sink and router joined the running hub
            sink = hub.app.state.probe_sink
            await until(lambda: [n.event.id for n in sink.events] == [ev.id], what="extension sink told")
            assert (await http.get("/api/v1/probe")).json() == {"sinks": 1}
            # the broker goes away: /healthz says so (503) until the ingest is back
            gw.close()
            secured.broker.stop()
            await until(lambda: not hub.ingest.subscribed.is_set(), what="ingest notices")  # type: ignore[union-attr]
            r = await http.get("/healthz")
            assert r.status_code == 503 and r.json()["checks"]["broker"]["ok"] is False
            secured.broker.start()
            await until(lambda: hub.ingest.subscribed.is_set(), within=30, what="ingest reconnects")  # type: ignore[union-attr]
            assert (await http.get("/healthz")).status_code == 200
            text = (await http.get("/metrics")).text
            assert 'safehome_ingest_lane_lost_total{lane="priority"} 1.0' in text
            assert 'safehome_ingest_lane_up{lane="priority"} 1.0' in text
    finally:
        gw.close()
        await hub.stop()


def test_hub_run_command_starts_and_stops_cleanly(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> None:
    secured = start_secured_broker(mosquitto_factory, tmp_path / "b")
    secret = tmp_path / "hub.password"
    secret.write_text(secured.hub_password + "\n")
    port = free_port()
    cfg = tmp_path / "hub.toml"
    cfg.write_text(
        f'[hub]\nworker_id = "cli-1"\n[hub.database]\nurl = "sqlite:///{tmp_path / "hub.db"}"\n'
        f'[hub.mqtt]\nport = {secured.broker.port}\npassword_file = "{secret}"\n[hub.http]\nport = {port}\n'
    )
    env = {**os.environ, "PYTHONPATH": str(Path.cwd()), "SAFEHOME_HUB_SECRETS__KEY": generate_key()}
    proc = subprocess.Popen([sys.executable, "-m", "safehome", "hub", "run", "--config", str(cfg)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(lambda: healthy() or proc.poll() is not None, 90, "hub healthy")  # generous: a loaded CI host took 21 s
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "stopping" in out


def test_hub_run_refuses_default_secret(tmp_path: Path) -> None:
    cfg = tmp_path / "hub.toml"
    cfg.write_text('[hub.mqtt]\npassword = "changeme"\n')
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    r = subprocess.run([sys.executable, "-m", "safehome", "hub", "run", "--config", str(cfg)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "well-known default" in r.stderr


async def test_sql_time_series_retention_runs_in_the_hub(tmp_path: Path) -> None:
    """The retention job is one of the hub's services, with the configured policy, and runs."""
    import datetime as dt

    from hub.timeseries.retention import RetentionService

    settings = load_hub_settings(
        None, env="dev", worker_id="ret-1",
        database={"url": f"sqlite:///{tmp_path / 'hub.db'}"},
        timeseries={"retention_days": 7, "rollup_retention_days": 400, "retention_every_s": 3600},
        http={"enabled": False},
    )
    hub = build_hub(settings, alarms=False)
    (retention,) = [s for s in hub.services if isinstance(s, RetentionService)]
    assert retention.policy.raw_retention == dt.timedelta(days=7)
    assert retention.policy.rollup_retention == dt.timedelta(days=400)
    await retention.start()
    try:
        await until(lambda: retention.runs >= 1, what="first retention run")
        assert retention.failures == 0
    finally:
        await retention.stop()
        hub.engine.dispose()


async def test_sql_time_series_in_a_database_of_its_own(tmp_path: Path) -> None:
    """[timeseries] url = another SQLite file: its tables are created there and readings go
    there, not into the hub database (whose write lock the alarm path needs)."""
    import sqlalchemy as sa

    from hub.timeseries import Point

    ts_url = f"sqlite:///{tmp_path / 'timeseries.db'}"
    settings = load_hub_settings(
        None, env="dev", worker_id="ts-1",
        database={"url": f"sqlite:///{tmp_path / 'hub.db'}"},
        timeseries={"url": ts_url},
        http={"enabled": False},
    )
    hub = build_hub(settings, alarms=False)
    try:
        hub.timeseries.write([Point("gw-1", "gas-1", "gas_lel", 1_764_316_440_000, 2.5)])
        own = sa.create_engine(ts_url)
        with own.connect() as c:
            assert c.execute(sa.text("SELECT value FROM readings")).scalars().all() == [2.5]
        own.dispose()
        with hub.engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM readings")).scalar_one() == 0
    finally:
        hub.timeseries.close()
        hub.engine.dispose()
