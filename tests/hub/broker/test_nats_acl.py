"""The third-party-gateway checks of test_acl.py / test_isolation.py on a 3-node NATS
cluster: a plain paho MQTT 3.1.1 client as the gateway, a native NATS subscriber (nats-py)
as the hub, each on a different node, configured by hub/broker/nats.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

import protocols as p
from hub.broker.nats import subject
from safehome.testing.nats import NatsCluster
from safehome.testing.poll import until
from tests.support.hub_mqtt import Client

GW_A, GW_B = "nats-gw-a", "nats-gw-b"


def _client(cluster: NatsCluster, node: int, user: str | None, password: str | None, **kw: object) -> Client:
    return Client(cluster.endpoint(node), user, password, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def passwords(nats_cluster: NatsCluster) -> dict[str, str]:
    return {gw: nats_cluster.gateway(gw) for gw in (GW_A, GW_B)}


class Uplink:
    """The hub's side: a native core NATS queue-group subscription on every uplink subject."""

    def __init__(self) -> None:
        self.got: list[tuple[str, bytes]] = []

    async def on_msg(self, msg: Msg) -> None:
        self.got.append((msg.subject, msg.data))


@pytest.fixture
async def hub(nats_cluster: NatsCluster) -> AsyncIterator[tuple[NatsClient, Uplink]]:
    nc = await nats.connect(nats_cluster.nats_urls[2], user="hub", password=nats_cluster.hub_password)
    up = Uplink()
    for ch in sorted(p.UPLINK_CHANNELS):
        await nc.subscribe(subject(f"{p.ROOT}/gw/+/{ch.value}"), queue="hub", cb=up.on_msg)
    await nc.flush()
    for ch in sorted(p.UPLINK_CHANNELS):
        nats_cluster.wait_routed(subject(f"{p.ROOT}/gw/+/{ch.value}"), node=2)
    try:
        yield nc, up
    finally:
        await nc.close()


async def test_gateway_uplink_reaches_a_native_subscriber_on_another_node(
    nats_cluster: NatsCluster, passwords: dict[str, str], hub: tuple[NatsClient, Uplink]
) -> None:
    _, up = hub
    a = _client(nats_cluster, 0, GW_A, passwords[GW_A], client_id=GW_A).connect()
    try:
        # forged first, own second, on one connection: the forged one is dropped (NATS logs a
        # publish violation; MQTT 3.1.1 has no way to say so)
        a.publish(str(p.Topic.of(GW_B, "event")), b"forged", qos=1)
        a.publish(str(p.Topic.of(GW_A, "ack")), b"forged-ack", qos=1)
        a.publish(str(p.Topic.of(GW_A, "event")), b"own", qos=1)
        await until(lambda: up.got, what="the gateway's event at the hub")
        assert up.got[0] == (subject(str(p.Topic.of(GW_A, "event"))), b"own")
        a.publish(str(p.Topic.of(GW_A, "status")), b"own-status", qos=1)
        await until(lambda: len(up.got) >= 2, what="the gateway's status at the hub")
        assert up.got == [
            (subject(str(p.Topic.of(GW_A, "event"))), b"own"),
            (subject(str(p.Topic.of(GW_A, "status"))), b"own-status"),
        ]
    finally:
        a.close()


async def test_gateway_cannot_subscribe_beyond_its_own_downlink(
    nats_cluster: NatsCluster, passwords: dict[str, str]
) -> None:
    a = _client(nats_cluster, 0, GW_A, passwords[GW_A], client_id=GW_A).connect()
    b = _client(nats_cluster, 1, GW_B, passwords[GW_B], client_id=GW_B).connect()
    hub = _client(nats_cluster, 2, "hub", nats_cluster.hub_password, client_id="hub-acl-test").connect()
    try:
        refused = {
            t: a.subscribe(t)
            for t in (
                str(p.Topic.of(GW_B, "ack")),
                f"{p.ROOT}/gw/+/cmd",
                f"$share/hub/{p.ROOT}/gw/+/event",
                "#",
                "$MQTT/sub/#",
                str(p.Topic.of(GW_B, "event")),
            )
        }
        assert refused == {t: [0x80] for t in refused}
        assert a.subscribe(str(p.Topic.of(GW_A, "ack"))) == [1]
        assert b.subscribe(str(p.Topic.of(GW_B, "ack"))) == [1]
        hub.publish(str(p.Topic.of(GW_B, "ack")), b"for-b")
        hub.publish(str(p.Topic.of(GW_B, "cmd")), b"cmd-for-b")
        hub.publish(str(p.Topic.of(GW_A, "ack")), b"for-a")
        assert b.get().payload == b"for-b"
        assert a.get().payload == b"for-a"
        assert a.drain() == []
    finally:
        for c in (a, b, hub):
            c.close()


async def test_wrong_password_anonymous_and_native_gateway_logins_are_refused(
    nats_cluster: NatsCluster, passwords: dict[str, str]
) -> None:
    bad = _client(nats_cluster, 0, GW_A, "not-the-password", client_id="nats-bad").connect(expect_ok=False)
    anon = _client(nats_cluster, 1, None, None, client_id="nats-anon").connect(expect_ok=False)
    try:
        assert bad.refused
        assert anon.refused
    finally:
        bad.close()
        anon.close()
    # a gateway's password is for MQTT only: not for the native port, where the hub reads
    nc = NatsClient()
    try:
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            login = nc.connect(
                nats_cluster.nats_urls[0],
                user=GW_A,
                password=passwords[GW_A],
                allow_reconnect=False,
                connect_timeout=2,
            )
            await asyncio.wait_for(login, 10)
    finally:
        await nc.close()  # nats-py leaves a refused login's socket open otherwise
