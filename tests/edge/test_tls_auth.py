"""TLS (own CA) + per-gateway username/password against a real Mosquitto."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from protocols import Channel, EventKind
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.pki import make_pki
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, running, settings_for


@pytest.fixture
def tls_broker(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto]
) -> tuple[Mosquitto, Path, int, str]:
    pki = make_pki(tmp_path / "pki").directory
    gw = "gw-tls-" + tmp_path.name[-8:].lower().replace("_", "-").strip("-")
    gw = gw if gw[-1].isalnum() else gw + "0"
    pwfile = pki / "passwd"
    pwfile.write_text("")
    for user, pw in ((gw, "gw-secret-1"), ("hub", "hub-secret-1")):
        subprocess.run(["mosquitto_passwd", "-b", str(pwfile), user, pw], check=True, capture_output=True)
    extra = (
        f"cafile {pki / 'ca.crt'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}\n"
        f"password_file {pwfile}\n"
    )
    # the TLS listener is the broker's port; the hub's plain listener comes after it
    broker = mosquitto_factory(extra_config=extra, allow_anonymous=False, extra_listeners=1)
    return broker, pki / "ca.crt", broker.extra_ports[0], gw


async def test_agent_connects_with_tls_and_credentials(
    tmp_path: Path, tls_broker: tuple[Mosquitto, Path, int, str], mock_factory: MockFactory
) -> None:
    broker, ca, plain_port, gw = tls_broker
    hub = HubAcker(broker.host, plain_port, username="hub", password="hub-secret-1")
    try:
        mqtt = {
            "host": "127.0.0.1",
            "port": broker.port,
            "tls": True,
            "ca_file": str(ca),
            "password": "gw-secret-1",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
        }
        s = settings_for(tmp_path, broker, gateway_id=gw, mqtt=mqtt, environment="production")
        agent = make_agent(s, mock_factory)
        async with running(agent):
            mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
            [ev] = await hub.wait_for(gw, Channel.EVENT)
            assert ev.kind is EventKind.SMOKE
            await until(lambda: agent.outbox.depth() == 0, what="ack over TLS")
    finally:
        hub.close()


async def test_wrong_password_never_links_and_keeps_the_alarm(
    tmp_path: Path, tls_broker: tuple[Mosquitto, Path, int, str], mock_factory: MockFactory
) -> None:
    broker, ca, _plain, gw = tls_broker
    mqtt = {
        "host": "127.0.0.1",
        "port": broker.port,
        "tls": True,
        "ca_file": str(ca),
        "password": "wrong-password-1",
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.2,
    }
    s = settings_for(tmp_path, broker, gateway_id=gw, mqtt=mqtt)
    agent = make_agent(s, mock_factory)
    async with running(agent, wait_link=False):
        mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
        await until(lambda: agent.outbox.alarms_pending() == 1, what="alarm recorded")
        await until(lambda: broker.log_text().count("not authorised") >= 2, what="refusals")
        assert not agent.link_up.is_set()
        assert agent.outbox.alarms_pending() == 1
