"""A simulated gateway whose downlink subscription is refused (SUBACK 0x80) drops its link
and connects again, as the edge agent does (docs/protocol.md section 1): a NATS node that
has just lost a peer can refuse one, and a link without its ack subscription would resend
for ever. Deterministic here: the gateway logs in with another gateway's credentials, whose
permissions are that one's topics (Mosquitto's ACL file refuses no subscription)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from firmware_sim.fleet import Fleet, FleetSettings
from safehome.testing.nats import NatsCluster
from safehome.testing.poll import until
from tests.firmware_sim.conftest import specs

#: a bound on a hang, not a timing
pytestmark = pytest.mark.timeout(120)


async def test_a_refused_subscription_drops_the_link_and_it_is_made_again(tmp_path: Path) -> None:
    with NatsCluster(tmp_path / "nats", size=1) as cluster:
        other = "gw-someone-else"
        password = cluster.gateway(other)
        node = cluster.endpoint(0)
        settings = FleetSettings(
            host=node.host, port=node.port, downlink_qos=0, tick_s=0.02, reconnect_min_s=0.05, reconnect_max_s=0.2
        )
        fleet = Fleet(specs(1, "simrefused"), settings, credentials=lambda _gw: (other, password))
        await fleet.start()  # CONNACK: the login itself is fine
        stop = asyncio.Event()
        task = asyncio.create_task(fleet.run(stop))
        try:
            await until(lambda: fleet.stats.counts["subscribe_refused"] >= 2, within=60, what="a new link after each refusal")
            assert fleet.stats.counts["connects"] >= 2
        finally:
            stop.set()
            await task
            await fleet.stop()
