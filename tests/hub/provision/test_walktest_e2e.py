"""The installer's path end to end through real parts: `provision gateway` (credentials in
the real broker's password file, config delivered retained) → the edge agent started from
the bundle (mock pins) → `provision walktest` while each sensor is triggered → no alarm,
nothing sent to anyone → `provision signoff` → the next smoke is a real alarm again.
And the failing walk tests: a sensor that never reports, a sensor heard by another gateway."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from click.testing import Result
from gpiozero.pins.mock import MockFactory
from sqlalchemy import func, select

import protocols as p
from edge.agent import Agent
from edge.clock import Clock, FixedProbe
from edge.settings import load_settings
from hub.alarms.store.models import Alarm
from hub.db.engine import make_engine, make_session_factory
from hub.db.events import StoredEvent
from hub.notify.models import Notification
from hub.provision.models import ProvisionedGateway
from hub.registry.models import Gateway, Sensor
from hub.runner import Hub, build_hub
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from safehome.testing.registry import seed_small_district
from tests.hub.conftest import worker_settings
from tests.hub.provision.conftest import Site, write_broker_toml
from tests.support.hub_gateway import ScriptedGateway
from tests.support.hub_mqtt import SecuredBroker, start_secured_broker

pytestmark = pytest.mark.slow


@pytest.fixture
def secured(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> SecuredBroker:
    return start_secured_broker(mosquitto_factory, tmp_path / "secured")


@pytest.fixture
def site(secured: SecuredBroker, db_url: str, tmp_path: Path) -> Site:
    engine = make_engine(db_url)
    try:
        sessions = make_session_factory(engine)
        seed_small_district(sessions)
        with sessions() as s, s.begin():  # a second gateway in home-1, with a sensor of its own
            s.add(Gateway(id="gw-1b", home_id="home-1"))
            s.flush()
            s.add(Sensor(gateway_id="gw-1b", id="gas-1", model="gas-detector", kind="gas"))
    finally:
        engine.dispose()
    (secured.directory / "hub.password").write_text(secured.hub_password + "\n")
    toml = write_broker_toml(secured.directory, secured.broker.port)
    toml.write_text(toml.read_text().replace('user = "nobody"', f'user = "{_me()}"'))
    return Site(db_url, secured.directory, toml, tmp_path)


def _me() -> str:
    import os
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def count(hub: Hub, *where: object, model: type = Alarm) -> int:
    with hub.session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def agent_from(bundle: Path, tmp: Path, factory: MockFactory) -> AsyncIterator[Agent]:
    settings = load_settings(bundle / "edge.toml", data_dir=tmp / "data", state_dir=tmp / "run",
                             pin_factory="mock", poll_ms=10, time_sync="assume_synced", watchdog=False)
    agent = Agent(settings, factory=factory, clock=Clock(FixedProbe(True)))
    task = asyncio.create_task(agent.run())
    try:
        await until(agent.link_up.is_set, 15, "agent linked")
        yield agent
    finally:
        agent.stop()
        await asyncio.wait_for(task, 15)


async def walktest_running(hub: Hub, gw: str) -> None:
    def started() -> bool:
        with hub.session_factory() as s:
            rec = s.get(ProvisionedGateway, gw)
            return rec is not None and rec.walktest_started_at is not None and rec.walktest_ended_at is None
    await until(started, 15, "walk test started")


async def press(factory: MockFactory, pin: int) -> None:
    factory.pin(pin).drive_low()
    await asyncio.sleep(0.2)  # held past the 50 ms debounce, as a finger would
    factory.pin(pin).drive_high()


@pytest.fixture
def mock_factory() -> MockFactory:
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
async def hub(secured: SecuredBroker, site: Site) -> AsyncIterator[Hub]:
    """A running hub worker on the secured broker, subscribed."""
    hub = build_hub(worker_settings(secured, site.db_url))
    await hub.start()
    try:
        await until(lambda: hub.ingest is not None and hub.ingest.subscribed.is_set(), 10, "hub subscribed")
        yield hub
    finally:
        await hub.stop()


@pytest.fixture
def bundle(hub: Hub, secured: SecuredBroker, site: Site, tmp_path: Path) -> Path:
    """`provision gateway` for gw-1 of home-1 (mock pins, no TLS): its bundle directory."""
    bundle = tmp_path / "bundle"
    r = site.run("gateway", "--home", "home-1", "--gateway", "gw-1", "--hub-host", "127.0.0.1",
                 "--hub-port", str(secured.broker.port), "--no-tls", "-o", str(bundle), "--pin-factory", "mock")
    assert r.exit_code == 0, r.output
    assert "config revision 1 delivered" in r.output
    return bundle


async def test_provision_walk_test_signoff_end_to_end(
    hub: Hub, bundle: Path, secured: SecuredBroker, site: Site, mock_factory: MockFactory, tmp_path: Path
) -> None:
    async with agent_from(bundle, tmp_path, mock_factory) as agent:
        await until(lambda: agent.config_revision == 1, 10, "config revision 1 applied by the agent")
        walk: asyncio.Task[Result] = asyncio.create_task(asyncio.to_thread(
            site.run, "walktest", "gw-1", "--timeout", "60", "--poll", "0.1"))
        await walktest_running(hub, "gw-1")
        smoke = agent.sensor("smoke-1").pins["contact"]
        mock_factory.pin(smoke).drive_low()  # test smoke in the chamber
        await press(mock_factory, agent.sensor("panic-1").pins["button"])
        result = await asyncio.wait_for(walk, 60)
        mock_factory.pin(smoke).drive_high()  # chamber cleared: its restore is stored too
        await until(lambda: count(hub, StoredEvent.state == "restore", model=StoredEvent) == 1, 15, "restore")
        assert result.exit_code == 0, result.output
        assert "✓ smoke-1" in result.output and "✓ panic-1" in result.output
        assert "walk test PASSED: 2 sensors" in result.output
        # the smoke and the panic press were stored, and nobody was alarmed
        assert count(hub, model=Alarm) == 0 and count(hub, model=Notification) == 0

        r = await asyncio.to_thread(site.run, "signoff", "gw-1", "--by", "installer-7")
        assert r.exit_code == 0, r.output
        assert "signed off" in r.output
        assert "signed off: " in site.run("status", "gw-1").output

        mock_factory.pin(smoke).drive_low()  # a real fire after sign-off
        await until(lambda: count(hub, Alarm.kind == "smoke") == 1, 15, "real smoke alarm")
        mock_factory.pin(smoke).drive_high()


async def test_failing_walk_tests_name_the_sensor_and_the_gateway(
    hub: Hub, bundle: Path, secured: SecuredBroker, site: Site, mock_factory: MockFactory, tmp_path: Path
) -> None:
    other = ScriptedGateway(secured, "gw-1b").connect()
    try:
        async with agent_from(bundle, tmp_path, mock_factory) as agent:
            walk = asyncio.create_task(asyncio.to_thread(
                site.run, "walktest", "gw-1", "--timeout", "4", "--poll", "0.1"))
            await walktest_running(hub, "gw-1")
            await press(mock_factory, agent.sensor("panic-1").pins["button"])
            # smoke-1 is wired to the home's other Pi: it reports it, gw-1 never does
            ev = other.event(p.EventKind.SMOKE, sensor="smoke-1")
            other.send(ev)
            await other.acked([ev.id])
            result = await asyncio.wait_for(walk, 60)
    finally:
        other.close()
    assert result.exit_code == 1
    assert "walk test FAILED" in result.output
    assert "✗ smoke-1: never reported to gw-1" in result.output
    assert "✗ smoke-1: reported by gw-1b, but the register puts it on gw-1" in result.output
    assert "panic-1" not in result.output.split("FAILED")[1]
    r = site.run("signoff", "gw-1")
    assert r.exit_code == 1 and "the walk test failed: smoke-1: never reported" in r.output


async def test_config_push_is_answered_applied_or_refused_by_the_agent(
    hub: Hub, bundle: Path, secured: SecuredBroker, site: Site, mock_factory: MockFactory, tmp_path: Path
) -> None:
    """A good config push is applied and reported; one naming a sensor this Pi does not have
    is refused whole with the reason, the running config stays, and provision status says so."""
    async with agent_from(bundle, tmp_path, mock_factory) as agent:
        await until(lambda: agent.config_revision == 1, 10, "config revision 1 applied by the agent")
        good = await asyncio.to_thread(site.run, "push", "gw-1", "--new-revision", "--wait", "30", "--poll", "0.1")
        assert good.exit_code == 0, good.output
        assert "gw-1: applied revision 2" in good.output
        assert agent.config_revision == 2 and agent.config_error is None

        with hub.session_factory() as s, s.begin():  # the register gains a sensor this Pi lacks
            s.add(Sensor(gateway_id="gw-1", id="gas-7", model="gas-detector", kind="gas"))
        heartbeat = agent.heartbeat_s
        bad = await asyncio.to_thread(site.run, "push", "gw-1", "--new-revision", "--wait", "30", "--poll", "0.1")
        assert bad.exit_code == 1, bad.output
        assert "gw-1: refused revision 3: unknown_sensor (sensors not wired here: gas-7" in bad.output
        assert "still running revision 2" in bad.output
        assert agent.config_revision == 2 and agent.heartbeat_s == heartbeat
        assert agent.config_error is not None and agent.config_error.revision == 3
        status = site.run("status", "gw-1").output
        assert "gateway config: refused revision 3: unknown_sensor" in status, status
