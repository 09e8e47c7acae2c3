"""Time from `safehome provision gateway` to a signed-off home, in a simulated install.

Real parts on loopback: Mosquitto with the hub's ACL and password file, the full hub on
SQLite, the edge agent started from the bundle (mock pins), the walk test and sign-off
commands. The installer's hands are simulated: each sensor is triggered as soon as the
walk test is waiting for it, so the figure is the system's share of an install (an
installer walking to each detector adds minutes; that is not measured here).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import click
from click.testing import CliRunner
from gpiozero.pins.mock import MockFactory

from bench import report
from edge.agent import Agent
from edge.clock import Clock, FixedProbe
from edge.settings import load_settings
from hub.alarms.settings import AlarmSettings
from hub.broker import plugin
from hub.broker.config import BrokerSettings, render_acl, render_security
from hub.broker.credentials import Credentials, PasswordFile
from hub.db.engine import make_engine, make_session_factory
from hub.db.migrate import upgrade
from hub.provision.models import ProvisionedGateway
from hub.runner import build_hub
from hub.settings import HubSettings, MqttSettings
from safehome.cli import cli
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.registry import seed_small_district


async def _until(cond: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise click.ClickException(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.01)


def _run(args: list[str]) -> str:
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    if r.exit_code != 0:
        raise click.ClickException(f"safehome {' '.join(args[:2])} failed: {r.output}")
    return r.output


async def one_install(wd: Path, port: int, db_url: str, broker_toml: Path, n: int) -> dict[str, float]:
    """One provisioning of gw-1 to its sign-off; seconds per step."""
    factory = MockFactory()
    bundle = wd / f"bundle-{n}"
    t0 = time.monotonic()
    out = _run(["provision", "gateway", "--home", "home-1", "--hub-host", "127.0.0.1", "--hub-port",
          str(port), "--no-tls", "--pin-factory", "mock", "-o", str(bundle), "--db-url", db_url,
          "--broker-config", str(broker_toml)])
    t1 = time.monotonic()
    if "delivered" not in out:
        raise click.ClickException(out)
    settings = load_settings(bundle / "edge.toml", data_dir=wd / f"data-{n}", state_dir=wd / f"run-{n}",
                             poll_ms=10, time_sync="assume_synced", watchdog=False)
    agent = Agent(settings, factory=factory, clock=Clock(FixedProbe(True)))
    task = asyncio.create_task(agent.run())
    try:
        revision = n + 1
        await _until(lambda: agent.config_revision == revision, 30, "the agent linked with the new config")
        t2 = time.monotonic()
        walk = asyncio.create_task(asyncio.to_thread(
            _run, ["provision", "walktest", "gw-1", "--timeout", "60", "--poll", "0.05", "--db-url", db_url]))
        engine = make_engine(db_url)
        sessions = make_session_factory(engine)

        def started() -> bool:
            with sessions() as s:
                rec = s.get(ProvisionedGateway, "gw-1")
                return rec is not None and rec.walktest_started_at is not None and rec.walktest_ended_at is None
        await _until(started, 30, "walk test started")
        engine.dispose()
        smoke = factory.pin(agent.sensor("smoke-1").pins["contact"])
        button = factory.pin(agent.sensor("panic-1").pins["button"])
        smoke.drive_low()
        button.drive_low()
        out = await asyncio.wait_for(walk, 90)
        t3 = time.monotonic()
        smoke.drive_high()
        button.drive_high()
        if "PASSED" not in out:
            raise click.ClickException(out)
        await asyncio.to_thread(_run, ["provision", "signoff", "gw-1", "--db-url", db_url])
        t4 = time.monotonic()
    finally:
        agent.stop()
        await asyncio.wait_for(task, 15)
        factory.reset()
    return {"provision": t1 - t0, "link": t2 - t1, "walktest": t3 - t2, "signoff": t4 - t3, "total": t4 - t0}


async def run_all(installs: int) -> list[dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="safehome-bench-provision-") as tmp:
        wd = Path(tmp)
        # the hub's ACL and password file, as `safehome broker config` writes them
        bdir = wd / "broker"
        bdir.mkdir()
        (bdir / "acl").write_text(render_acl())
        pid = BrokerSettings(directory=bdir, tls=False).pid_path  # where the credentials look for it
        pid.parent.mkdir(parents=True, exist_ok=True)
        creds = Credentials(PasswordFile(bdir / "passwd"), None)
        hub_password = uuid.uuid4().hex
        creds.set_hub(hub_password)
        (bdir / "hub.password").write_text(hub_password + "\n")
        isolation = plugin.build(Path(tempfile.gettempdir()) / f"safehome-plugin-{plugin.source_digest()}" / "isolation.so")
        broker = Mosquitto(bdir / "mosquitto", extra_config=render_security(bdir / "passwd", bdir / "acl", isolation)
                           + f"pid_file {pid}\nmax_queued_messages 100000\n", allow_anonymous=False).start()
        deadline = time.monotonic() + 10
        while not pid.exists():  # credentials reload the broker through its pid file
            if time.monotonic() > deadline:
                raise click.ClickException(f"the broker wrote no pid file {pid}")
            await asyncio.sleep(0.02)
        try:
            broker_toml = bdir / "broker.toml"
            broker_toml.write_text(f'directory = "{bdir}"\ntls = false\nplain_port = {broker.port}\nuser = "root"\n')
            db_url = f"sqlite:///{wd / 'hub.db'}"
            engine = make_engine(db_url)
            upgrade(engine)
            seed_small_district(make_session_factory(engine))
            engine.dispose()
            hub = build_hub(HubSettings(
                env="test", worker_id=f"bench-{uuid.uuid4().hex[:6]}",
                database={"url": db_url, "migrate": False},
                mqtt=MqttSettings(port=broker.port, password=hub_password),
                http={"enabled": False},
                alarms=AlarmSettings(),
            ))
            await hub.start()
            try:
                return [await one_install(wd, broker.port, db_url, broker_toml, n) for n in range(installs)]
            finally:
                await hub.stop()
        finally:
            broker.stop()


@click.command(name="provision")
@click.option("--installs", type=click.IntRange(1, 50), default=5, show_default=True)
def provision_cmd(installs: int) -> None:
    """Time from `provision gateway` to a signed-off home (simulated walk test, 2 sensors)."""
    runs = asyncio.run(run_all(installs))
    rows = [
        (f"{step} (median / max of {installs})",
         f"{statistics.median(r[step] for r in runs):.2f} s / {max(r[step] for r in runs):.2f} s")
        for step in ("total", "provision", "link", "walktest", "signoff")
    ]
    notes = ("`provision`: registry check, password, bundle, retained config; `link`: the agent from the bundle "
             "connected and applied the config; `walktest`: from the command's start to PASSED with both sensors "
             "triggered at once (real installs add the walk); `signoff`: the command. Each install re-provisions "
             "the same gateway (new password, new config revision).")
    report.write("Provisioning: provision gateway to signed-off home", rows, notes)
