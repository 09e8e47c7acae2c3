"""An agent with ``mqtt.downlink_qos = 0`` (what a bundle for the NATS cluster says, docs/broker.md
section 6) on a real single-node nats-server: its downlink subscriptions make no JetStream
consumer (a QoS 1 subscription of another gateway does: the control), the retained config the
hub published before it connected still arrives, and an alarm it raises is still acked by the
hub's native queue group. The simulated fleet at ``downlink_qos=0`` likewise: no consumer,
its alarm acked (by the hub's MQTT login, safehome/testing/acker.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import nats
import pytest
from gpiozero.pins.mock import MockFactory
from nats.aio.client import Client as NatsClient
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


@dataclass
class NativeHub:
    """The hub's side, natively (as hub/ingest/nats_source.py reads a NATS cluster): acks
    every event of ``gw`` (``*``: every gateway) and keeps what it heard."""

    nc: NatsClient
    kinds: list[p.EventKind] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)

    async def _store_and_ack(self, msg: Msg) -> None:
        ev = p.decode(p.Channel.EVENT, msg.data, p.Event)
        self.kinds.append(ev.kind)
        ack = p.Ack(gw=ev.gw, ts=ev.ts, items=[p.AckItem(id=ev.id, status=p.AckStatus.STORED)])
        await self.nc.publish(subject(str(p.Topic.of(ev.gw, p.Channel.ACK))), p.encode(ack))

    async def _status(self, msg: Msg) -> None:
        self.statuses.append(p.decode(p.Channel.STATUS, msg.data, p.Status).reason)


@contextlib.asynccontextmanager
async def native_hub(cluster: NatsCluster, gw: str) -> AsyncIterator[NativeHub]:
    hub = NativeHub(await nats.connect(cluster.nats_urls, user="hub", password=cluster.hub_password))
    try:
        await hub.nc.subscribe(subject(f"{p.ROOT}/gw/{gw}/event"), queue="hub", cb=hub._store_and_ack)
        await hub.nc.subscribe(subject(f"{p.ROOT}/gw/{gw}/status"), cb=hub._status)
        await hub.nc.flush()
        yield hub
    finally:
        await hub.nc.close()


async def test_a_qos_0_downlink_makes_no_consumer_and_the_alarm_is_still_acked(
    tmp_path: Path, mock_factory: MockFactory
) -> None:
    with NatsCluster(tmp_path / "nats", size=1) as cluster:
        gw, control = new_gateway_id(), new_gateway_id()
        async with native_hub(cluster, gw) as hub:
            kinds = hub.kinds
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


def stream_last_seq(cluster: NatsCluster) -> dict[str, int]:
    """The last sequence of each MQTT stream: it grows with every message stored, also in
    ``$MQTT_msgs``, which drops a message at once when no consumer wants it."""
    jsz = cluster.monitor(0, "/jsz?accounts=true&streams=true")
    return {
        s["name"]: int(s["state"]["last_seq"])
        for a in jsz.get("account_details") or []
        for s in a.get("stream_detail") or []
    }


async def test_an_agent_at_uplink_qos_0_not_retaining_stores_nothing_in_jetstream(
    tmp_path: Path, mock_factory: MockFactory
) -> None:
    """What a NATS bundle says (``uplink_qos = 0``, ``retain_status = false``): the agent's
    birth, heartbeats and alarm reach the hub natively and the alarm is acked, and not one of
    them is a JetStream write (on nats-server each QoS 1 publish is one in ``$MQTT_msgs``,
    each retained one in ``$MQTT_rmsgs``: the control's QoS 1 retained status is both)."""
    with NatsCluster(tmp_path / "nats", size=1) as cluster:
        gw, control = new_gateway_id(), new_gateway_id()
        node = cluster.endpoint(0)
        async with native_hub(cluster, gw) as hub, aiomqtt.Client(
            node.host, node.port, identifier=control, username=control, password=cluster.gateway(control),
            clean_session=False,
        ) as c:  # fmt: skip
            # the first MQTT login makes the streams
            await until(lambda: {"$MQTT_msgs", "$MQTT_rmsgs"} <= stream_last_seq(cluster).keys(), what="streams")
            before = stream_last_seq(cluster)
            mqtt = {
                "host": node.host, "port": node.port, "password": cluster.gateway(gw),
                "downlink_qos": 0, "uplink_qos": 0, "retain_status": False,
            }  # fmt: skip
            s = settings_for(tmp_path, node, gateway_id=gw, mqtt=mqtt, heartbeat_s=1)  # type: ignore[arg-type]
            agent = make_agent(s, mock_factory)
            async with running(agent, wait_link=False):
                await until(agent.link_up.is_set, within=60, what="uplink")
                mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
                await until(lambda: agent.outbox.depth() == 0 and hub.kinds, within=60, what="the alarm acked")
                await until(lambda: "heartbeat" in hub.statuses, within=60, what="a heartbeat")
            after = stream_last_seq(cluster)
            assert "birth" in hub.statuses and set(hub.kinds) == {p.EventKind.SMOKE}
            assert after["$MQTT_msgs"] == before["$MQTT_msgs"]
            assert after["$MQTT_rmsgs"] == before["$MQTT_rmsgs"]
            # the control: one QoS 1 retained status is a write in both streams
            await c.publish(str(p.Topic.of(control, p.Channel.STATUS)), b'{"control": 1}', qos=1, retain=True)
            await until(
                lambda: stream_last_seq(cluster)["$MQTT_msgs"] > after["$MQTT_msgs"]
                and stream_last_seq(cluster)["$MQTT_rmsgs"] > after["$MQTT_rmsgs"],
                what="the control's writes",
            )


async def test_a_fleet_as_a_nats_bundle_says_stores_nothing_in_jetstream(tmp_path: Path) -> None:
    """The simulated fleet with the same link settings (``uplink_qos=0``, ``retain_status=False``):
    births, heartbeats and an alarm, acked natively, and no JetStream write."""
    from firmware_sim.fleet import Fleet, FleetSettings
    from tests.firmware_sim.conftest import specs

    with NatsCluster(tmp_path / "nats", size=1) as cluster:
        node = cluster.endpoint(0)
        gateways = specs(3, "simz")
        password = new_gateway_id()
        cluster.gateways({g.id: password for g in gateways})
        settings = FleetSettings(
            host=node.host, port=node.port, downlink_qos=0, uplink_qos=0, retain_status=False,
            heartbeat_s=1, resend_s=0.3, tick_s=0.02,
        )  # fmt: skip
        fleet = Fleet(gateways, settings, credentials=lambda gw: (gw, password))
        async with native_hub(cluster, "*") as hub:
            try:
                await fleet.start()
                await until(lambda: {"$MQTT_msgs", "$MQTT_rmsgs"} <= stream_last_seq(cluster).keys(), what="streams")
                before = stream_last_seq(cluster)
                stop = asyncio.Event()
                task = asyncio.create_task(fleet.run(stop))
                gw = gateways[0].id
                pend = fleet.trigger(gw, p.EventKind.SMOKE, sensor="smoke-1")
                await until(lambda: pend.id not in fleet.gateways[gw].pending, within=60, what="the alarm acked")
                await until(lambda: hub.statuses.count("heartbeat") >= 3, within=60, what="heartbeats")
                after = stream_last_seq(cluster)
                assert hub.statuses.count("birth") >= 3  # one per gateway (a reconnect would add one)
                assert (after["$MQTT_msgs"], after["$MQTT_rmsgs"]) == (before["$MQTT_msgs"], before["$MQTT_rmsgs"])
                stop.set()
                await task
            finally:
                await fleet.stop()
