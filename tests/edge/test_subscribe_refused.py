"""A broker that refuses the gateway's downlink subscriptions (SUBACK 0x80) does not leave
the agent linked without its acks: the link is dropped and made again, subscribing again.
A NATS node refused a gateway's ack subscription so on a reconnect while its cluster
re-elected after a node's SIGKILL (tests/hub/ingest/test_nats.py); here, deterministically,
a gateway logs in with another gateway's credentials, whose permissions are that one's
topics (Mosquitto's ACL file refuses no subscription)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from safehome.testing.nats import NatsCluster
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, new_gateway_id, running, settings_for

#: a bound on a hang, not a timing
pytestmark = pytest.mark.timeout(120)


async def test_a_refused_subscription_is_no_link(
    tmp_path: Path, mock_factory: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with NatsCluster(tmp_path / "nats", size=1) as cluster:
        gw, other = new_gateway_id(), new_gateway_id()
        node = cluster.endpoint(0)
        mqtt = {"host": node.host, "port": node.port, "username": other, "password": cluster.gateway(other)}
        s = settings_for(tmp_path, node, gateway_id=gw, mqtt=mqtt)  # type: ignore[arg-type]
        agent = make_agent(s, mock_factory)

        def refusals() -> int:
            return sum("subscription refused" in r.getMessage() for r in caplog.records)

        async with running(agent, wait_link=False):
            mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
            await until(lambda: agent.outbox.alarms_pending() == 1, what="alarm recorded")
            await until(lambda: refusals() >= 2, within=60, what="a new link after each refusal")
            assert not agent.link_up.is_set()
            assert agent.outbox.alarms_pending() == 1
