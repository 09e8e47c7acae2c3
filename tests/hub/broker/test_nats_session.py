"""Sessions on a 3-node NATS cluster: Last-Will, retained uplink, credential reloads
(rotation, revocation) and the client-id takeover with its watch (hub/broker/natswatch.py).
One cluster for the module; the node kill comes last and restarts the node."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.msg import Msg

import protocols as p
from hub.broker.nats import subject
from hub.broker.natswatch import TakeoverWatch
from safehome.testing.nats import NatsCluster
from safehome.testing.poll import until, wait_for
from tests.support.hub_mqtt import Client


def _client(cluster: NatsCluster, node: int, user: str | None, password: str | None, **kw: object) -> Client:
    return Client(cluster.endpoint(node), user, password, **kw)  # type: ignore[arg-type]


def _login(cluster: NatsCluster, node: int, user: str, password: str, **kw: object) -> Client | None:
    """One login attempt: the connected client, or None (closed) when it was not accepted."""
    c = _client(cluster, node, user, password, client_id=user, **kw).connect(expect_ok=False)
    if c.connect_rc and not c.refused:
        return c
    c.close()
    return None


class Statuses:
    def __init__(self) -> None:
        self.got: list[tuple[str, bytes]] = []

    async def on_msg(self, msg: Msg) -> None:
        self.got.append((msg.subject, msg.data))


@pytest.fixture
async def hub_status(nats_cluster: NatsCluster) -> AsyncIterator[Statuses]:
    """The hub's queue-group subscription on every gateway's status, on node 3."""
    nc = await nats.connect(nats_cluster.nats_urls[2], user="hub", password=nats_cluster.hub_password)
    st = Statuses()
    await nc.subscribe(subject(f"{p.ROOT}/gw/+/status"), queue="hub", cb=st.on_msg)
    await nc.flush()
    nats_cluster.wait_routed(subject(f"{p.ROOT}/gw/+/status"), node=2)
    try:
        yield st
    finally:
        await nc.close()


async def test_last_will_reaches_the_hub_when_the_link_dies(
    nats_cluster: NatsCluster, hub_status: Statuses
) -> None:
    gw = "nats-will"
    pw = nats_cluster.gateway(gw)
    topic = str(p.Topic.of(gw, "status"))
    a = _client(nats_cluster, 0, gw, pw, client_id=gw, will=(topic, b"lwt")).connect()
    a.publish(topic, b"birth", retain=True)
    await until(lambda: hub_status.got, what="birth status")
    a.kill()
    await until(lambda: len(hub_status.got) >= 2, within=30, what="the Last-Will at the hub")
    assert hub_status.got == [(subject(topic), b"birth"), (subject(topic), b"lwt")]


async def test_retained_uplink_is_not_replayed_to_the_hub(nats_cluster: NatsCluster) -> None:
    gw = "nats-retain"
    pw = nats_cluster.gateway(gw)
    a = _client(nats_cluster, 1, gw, pw, client_id=gw).connect(timeout=60)
    try:
        for ch in ("event", "status"):
            # the PUBACK: its node (n2) has taken the message (a retained one is stored in JetStream
            # first, seconds on a loaded host) and routed it to the subscribers it knows of.
            # A hub subscribing before that would get it live, not replayed.
            taken = a.publish(str(p.Topic.of(gw, ch)), f"retained-{ch}".encode(), retain=True, within=60)
            assert taken, f"no PUBACK for the retained {ch} within 60 s"
        # a hub worker subscribing afterwards (core NATS: no retained store) gets live traffic only
        nc = await nats.connect(nats_cluster.nats_urls[0], user="hub", password=nats_cluster.hub_password)
        st = Statuses()
        try:
            for ch in ("event", "status"):
                await nc.subscribe(subject(f"{p.ROOT}/gw/+/{ch}"), queue="hub-late", cb=st.on_msg)
            await nc.flush()
            nats_cluster.wait_routed(subject(f"{p.ROOT}/gw/+/event"), node=0)
            a.publish(str(p.Topic.of(gw, "event")), b"live", within=None)  # the hub runs on this loop
            await until(lambda: st.got, within=60, what="the live event")
            assert st.got == [(subject(str(p.Topic.of(gw, "event"))), b"live")]
        finally:
            await nc.close()
    finally:
        a.close()


async def test_rotation_and_revocation_apply_at_the_reload(nats_cluster: NatsCluster) -> None:
    gw = "nats-creds"
    old = nats_cluster.gateway(gw)
    a = _client(nats_cluster, 0, gw, old, client_id=gw).connect()
    try:
        new = nats_cluster.credentials.rotate(gw)  # reloads every node
        wait_for(lambda: a.disconnects, within=15, what="the old password's connection dropped")
    finally:
        a.close()
    stale = _client(nats_cluster, 1, gw, old, client_id=gw).connect(expect_ok=False)
    b = _client(nats_cluster, 1, gw, new, client_id=gw).connect()
    try:
        assert stale.refused
        nats_cluster.credentials.revoke(gw)
        wait_for(lambda: b.disconnects, within=15, what="the revoked gateway's connection dropped")
    finally:
        stale.close()
        b.close()
    again = _client(nats_cluster, 2, gw, new, client_id=gw).connect(expect_ok=False)
    again.close()
    assert again.refused


async def test_client_id_takeover_is_caught_and_the_impostor_revoked(nats_cluster: NatsCluster) -> None:
    """NATS 2.9 lets gateway A's password take gateway B's session (Mosquitto's plugin refuses
    it); the watch revokes A, and B is back on its own."""
    victim, thief = "nats-victim", "nats-thief"
    pw_v, pw_t = nats_cluster.gateway(victim), nats_cluster.gateway(thief)
    hub = _client(nats_cluster, 2, "hub", nats_cluster.hub_password, client_id="hub-takeover-test").connect()
    v = _client(nats_cluster, 0, victim, pw_v, client_id=victim).connect()
    assert v.subscribe(str(p.Topic.of(victim, "ack"))) == [1]
    t = _client(nats_cluster, 1, thief, pw_t, client_id=victim).connect()
    watch = TakeoverWatch(nats_cluster.settings)
    try:
        # the attack works on NATS: the victim is disconnected
        wait_for(lambda: v.disconnects, within=15, what="the victim disconnected by the takeover")
        wait_for(lambda: watch.scan() or watch.revoked, within=30, what="the watch finding the impostor")
        assert [(i.user, i.client_id) for i in watch.revoked] == [(thief, victim)]
        assert thief not in nats_cluster.credentials.passwords.users()
        # the thief is out for good, the victim back on its session
        wait_for(lambda: t.refused, within=15, what="the thief's login refused")
        v.subscribe(str(p.Topic.of(victim, "ack")))
        v.drain()
        hub.publish(str(p.Topic.of(victim, "ack")), b"for-victim")
        assert v.get(timeout=15).payload == b"for-victim"
        assert watch.scan() == []
    finally:
        for c in (t, v, hub):
            c.close()


def test_the_monitoring_port_shows_an_mqtt_clients_password(nats_cluster: NatsCluster) -> None:
    """nats-server 2.9.10 keeps an MQTT client's password as its "jwt" and shows it in
    /connz?auth=true, which has no authentication: why the monitoring port is loopback only
    and the nodes' machines must have no other users (docs/broker.md). When this fails, a
    newer nats-server no longer leaks it: update docs/broker.md."""
    gw = "nats-leak"
    pw = nats_cluster.gateway(gw)
    a = _client(nats_cluster, 0, gw, pw, client_id=gw).connect()
    try:
        conns = wait_for(
            lambda: [
                c
                for c in nats_cluster.monitor(0, "/connz?auth=true")["connections"]
                if c.get("mqtt_client") == gw
            ],
            what="the gateway in /connz",
        )
        assert conns[0].get("jwt") == pw
        assert "jwt" not in json.dumps(nats_cluster.monitor(0, "/connz")["connections"])  # without auth=true
    finally:
        a.close()


async def test_sigkill_of_a_node_loses_its_gateways_wills_not_their_sessions(
    nats_cluster: NatsCluster, hub_status: Statuses
) -> None:
    """The Last-Will lives in the memory of the node the gateway is connected to: a SIGKILLed
    node sends none (the hub's silence supervision reports such a gateway). The session is
    replicated: the gateway logs in on another node and finds the ack the hub sent while it
    was away; its traffic reaches the hub."""
    gw, other = "nats-kill", "nats-kill-marker"
    pw, pw_o = nats_cluster.gateway(gw), nats_cluster.gateway(other)
    topic, ack = str(p.Topic.of(gw, "status")), str(p.Topic.of(gw, "ack"))
    a = _client(nats_cluster, 1, gw, pw, client_id=gw, will=(topic, b"lwt"), clean_session=False).connect()
    o = _client(nats_cluster, 0, other, pw_o, client_id=other).connect()
    hub = _client(nats_cluster, 2, "hub", nats_cluster.hub_password, client_id="hub-kill-test").connect()
    try:
        assert a.subscribe(ack) == [1]
        a.publish(topic, b"birth", retain=True)
        await until(lambda: hub_status.got, what="birth status")
        nats_cluster.kill(1)
        wait_for(lambda: a.disconnects, within=30, what="the gateway's link to the killed node dropping")
        a.close()
        # sent while the gateway is away: waits in its (replicated) session
        hub.publish(ack, b"ack-while-away")
        # the marker, sent after the node died, arrives; no Last-Will ever came before it
        o.publish(str(p.Topic.of(other, "status")), b"marker")
        await until(lambda: len(hub_status.got) >= 2, within=15, what="the marker")
        assert hub_status.got == [
            (subject(topic), b"birth"),
            (subject(str(p.Topic.of(other, "status"))), b"marker"),
        ]
        # failover: the same gateway on another node, once the session stream has a new
        # leader if the dead node led it (until then a login fails: "timeout ... $MQTT_sess")
        b = wait_for(
            lambda: _login(nats_cluster, 2, gw, pw, will=(topic, b"lwt"), clean_session=False),
            within=30,
            what="login after failover",
        )
        assert b is not None
        try:
            assert b.get(timeout=15).payload == b"ack-while-away"
            b.publish(topic, b"birth-again", retain=True)
            await until(lambda: len(hub_status.got) >= 3, within=15, what="the birth after failover")
            assert hub_status.got[2] == (subject(topic), b"birth-again")
        finally:
            b.close()
    finally:
        o.close()
        hub.close()
        nats_cluster.restart(1)
