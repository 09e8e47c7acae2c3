"""An agent with ``mqtt.downlink_qos = 0`` (what a bundle for the NATS cluster says, docs/broker.md
section 6) on a real single-node nats-server: its downlink subscriptions make no JetStream
consumer (a QoS 1 subscription of another gateway does: the control), the retained config the
hub published before it connected still arrives, and an alarm it raises is still acked by the
hub's native queue group. The simulated fleet at ``downlink_qos=0`` likewise: no consumer,
its alarm acked (by the hub's MQTT login, safehome/testing/acker.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiomqtt
import nats
import pytest
from gpiozero.pins.mock import MockFactory
from nats.aio.msg import Msg

import protocols as p
from hub.broker.nats import subject
from hub.provision.publish import publish_config
from safehome.testing.nats import NatsCluster
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, new_gateway_id, running, settings_for

#: a bound on a hang, not a timing
pytestmark = pytest.mark.timeout(120)


def consumer_filters(cluster: NatsCluster) -> list[str]:
    """The filter subject of every JetStream consumer on the node (MQTT QoS 1 subscriptions
    are consumers of ``$MQTT_msgs`` filtered on ``$MQTT.msgs.<topic as subject>``)."""
    jsz = cluster.monitor(0, "/jsz?accounts=true&streams=true&consumers=true&config=true")
    return [
        c["config"].get("filter_subject", "")
        for a in jsz.get("account_details") or []
        for s in a.get("stream_detail") or []
        for c in s.get("consumer_detail") or []
    ]


def of(gw: str, filters: list[str]) -> list[str]:
    return [f for f in filters if f".gw.{gw}." in f]


async def test_a_qos_0_downlink_makes_no_consumer_and_the_alarm_is_still_acked(
    tmp_path: Path, mock_factory: MockFactory
) -> None:
    with NatsCluster(tmp_path / "nats", size=1) as cluster:
        gw, control = new_gateway_id(), new_gateway_id()
        hub = await nats.connect(cluster.nats_urls, user="hub", password=cluster.hub_password)
        kinds: list[p.EventKind] = []

        async def store_and_ack(msg: Msg) -> None:
            ev = p.decode(p.Channel.EVENT, msg.data, p.Event)
            kinds.append(ev.kind)
            ack = p.Ack(gw=ev.gw, ts=ev.ts, items=[p.AckItem(id=ev.id, status=p.AckStatus.STORED)])
            await hub.publish(subject(str(p.Topic.of(ev.gw, p.Channel.ACK))), p.encode(ack))

        await hub.subscribe(subject(f"{p.ROOT}/gw/{gw}/event"), queue="hub", cb=store_and_ack)
        await hub.flush()
        try:
            pw = cluster.gateway(control)
            async with aiomqtt.Client(
                cluster.host, cluster.mqtt_ports[0], identifier=control, username=control, password=pw,
                clean_session=False,
            ) as c:  # fmt: skip
                await c.subscribe([(t, 1) for t in p.gateway_subscriptions(control)])
                await until(lambda: of(control, consumer_filters(cluster)), what="the control's consumers")

            node = cluster.endpoint(0)
            config = p.Config(gw=gw, revision=3, ts=int(time.time() * 1000), heartbeat_s=20)
            publish_config(config, node.host, node.port, cluster.hub_password)  # retained, as provisioning does
            mqtt = {"host": node.host, "port": node.port, "password": cluster.gateway(gw), "downlink_qos": 0}
            s = settings_for(tmp_path, node, gateway_id=gw, mqtt=mqtt)  # type: ignore[arg-type]
            agent = make_agent(s, mock_factory)
            async with running(agent, wait_link=False):
                await until(agent.link_up.is_set, within=60, what="uplink")
                await until(lambda: agent.config_revision == 3, within=60, what="the retained config")
                assert agent.heartbeat_s == 20
                mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
                await until(lambda: agent.outbox.depth() == 0 and kinds, within=60, what="the alarm acked")
                assert of(gw, consumer_filters(cluster)) == []
            assert set(kinds) == {p.EventKind.SMOKE}  # (a resend after a late ack repeats it)
        finally:
            await hub.close()


async def test_a_fleet_at_downlink_qos_0_gets_its_acks_on_nats(tmp_path: Path) -> None:
    from firmware_sim.fleet import Fleet, FleetSettings
    from safehome.testing.acker import HubAcker
    from tests.firmware_sim.conftest import specs

    with NatsCluster(tmp_path / "nats", size=1) as cluster:
        node = cluster.endpoint(0)
        gateways = specs(3, "simq")
        password = new_gateway_id()  # a throwaway secret, one bcrypt hash for all
        cluster.gateways({g.id: password for g in gateways})
        acker = HubAcker(node.host, node.port, shared=False, username="hub", password=cluster.hub_password)
        settings = FleetSettings(host=node.host, port=node.port, downlink_qos=0, resend_s=0.3, tick_s=0.02)
        fleet = Fleet(gateways, settings, credentials=lambda gw: (gw, password))
        try:
            await fleet.start()
            stop = asyncio.Event()
            task = asyncio.create_task(fleet.run(stop))
            gw = gateways[0].id
            pend = fleet.trigger(gw, p.EventKind.SMOKE, sensor="smoke-1")
            await until(lambda: pend.id not in fleet.gateways[gw].pending, within=60, what="the alarm acked")
            assert [f for g in gateways for f in of(g.id, consumer_filters(cluster))] == []
            stop.set()
            await task
        finally:
            await fleet.stop()
            acker.close()
