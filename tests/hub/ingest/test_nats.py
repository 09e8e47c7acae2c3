"""The ingest on a NATS cluster: uplink consumed natively from a queue group, acks back over
MQTT QoS 1 to the gateways' MQTT subscriptions, reconnecting when a node is SIGKILLed.

The cluster is the product's (safehome/testing/nats.py: config, users and ACL rendered by
hub/broker/nats.py). On SQLite only: the broker backend is what these test, not the database."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

import protocols as p
from hub.ingest import nats_source
from hub.ingest.nats_source import NatsLane, nats_subject
from hub.ingest.service import PRIORITY_LANE
from hub.runner import build_hub
from hub.sealing import generate_key
from hub.settings import MqttSettings, load_hub_settings
from safehome.testing.nats import NatsCluster
from safehome.testing.poll import until, wait_for
from tests.hub.ingest.conftest import Worker, gateway_state, start_worker, stored
from tests.support.hub_gateway import ScriptedGateway
from tests.support.hub_mqtt import Client

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def nats_mqtt(cluster: NatsCluster) -> MqttSettings:
    return MqttSettings(
        backend="nats",
        servers=[f"{cluster.host}:{port}" for port in cluster.mqtt_ports],
        nats_servers=cluster.nats_urls,
        password=cluster.hub_password,
    )


@dataclass
class Gateways:
    """What a ScriptedGateway asks of its broker: credentials, and a client on node ``node``."""

    cluster: NatsCluster
    node: int = 0

    def gateway(self, gw: str) -> str:
        password = self.cluster.gateway(gw)
        # the nodes reload their users on SIGHUP, asynchronously: log in once it took
        wait_for(lambda: self._logs_in(gw, password), what=f"{gw}'s login on node {self.node}")
        return password

    def _logs_in(self, gw: str, password: str) -> bool:
        probe = self.client(gw, password, client_id=gw).connect(expect_ok=False)
        probe.close()
        return not probe.refused

    def client(self, username: str | None, password: str | None, **kw: object) -> Client:
        return Client(self.cluster.endpoint(self.node), username, password, **kw)  # type: ignore[arg-type]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path / "nats", size=1).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nodes = NatsCluster(tmp_path / "nats3", size=3).start()
    yield nodes
    nodes.stop()


async def stop(*workers: Worker) -> None:
    for w in workers:
        await w.service.stop()
        w.engine.dispose()


async def send_until_acked(
    gw: ScriptedGateway, events: list[p.Event], within: float = 30, burst: int | None = None
) -> None:
    """Send, and resend what is not acked yet (at most ``burst`` at a time), as the edge agent
    does (core NATS may lose what was in flight when a node died: never an acked event).
    Never waits for a PUBACK: the hub runs on this event loop, and after a node's SIGKILL a
    gateway's PUBACK took 8 s here (a blocking send held the hub that long, per event), or
    the gateway was disconnected meanwhile (paho queues the publish for the reconnect)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        pending = [e for e in events if e.id not in gw.collect_acks()]
        if not pending:
            return
        assert loop.time() < deadline, f"{len(pending)} of {len(events)} events of {gw.gw} never acked"
        pending = pending[:burst]
        for e in pending:
            gw.send(e, wait=False)
        try:
            await gw.acked([e.id for e in pending], within=2)
        except AssertionError:
            continue  # the edge agent's resend interval, shortened


def resubscribing(gw: ScriptedGateway) -> ScriptedGateway:
    """The gateway subscribes to its acks again after paho reconnected it, as the edge agent
    does: a node that loses the leader of the MQTT streams (JetStream) times out QoS 1
    publishes for a few seconds and closes the MQTT connections whose publish timed out,
    on every node (nats-server 2.9.10; seen when the killed node led ``$MQTT_msgs``). And
    again after a refused SUBACK (below)."""
    topic = str(p.Topic.of(gw.gw, "ack"))
    client = gw.client

    def on_connect(c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        client.connect_rc.append(rc)
        c.subscribe(topic, 1)

    def on_subscribe(c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], props: Properties | None) -> None:
        client._on_subscribe(c, u, mid, rcs, props)
        if any(rc.is_failure for rc in rcs):
            # refused (0x80) while the cluster re-elects: the node made no consumer, and the
            # gateway would hear no ack again (110 s seen). The edge agent drops such a link
            # and subscribes on the next (edge/session.py); here it subscribes again.
            c.subscribe(topic, 1)

    client.c.on_connect = on_connect
    client.c.on_subscribe = on_subscribe
    return gw


def test_subjects_map_the_mqtt_topics() -> None:
    assert nats_subject("safehome/v1/gw/+/event") == "safehome.v1.gw.*.event"


@SQLITE
async def test_an_event_from_an_mqtt_gateway_is_stored_and_acked(node: NatsCluster, db_url: str) -> None:
    w = await start_worker(nats_mqtt(node), db_url, subscribed=True)
    gw = ScriptedGateway(Gateways(node), "nats-gw-1").connect()
    try:
        ev = gw.event()
        gw.send(ev)
        await gw.acked([ev.id])
        assert gw.acks[ev.id][0].status is p.AckStatus.STORED
        assert stored(w, [ev.id]) == 1
        # the sinks are told after the ack is published
        await until(lambda: [n.event.id for n in w.sink.events] == [ev.id], what="the sink told")
        assert w.count("safehome_ingest_lane_up", lane="priority") == 1
        # telemetry comes over the other lane, acked as well
        t = gw.telemetry([("co-1", "ppm", 3.0)])
        gw.send(t)
        await gw.acked([t.id])
        assert w.count("safehome_readings_stored_total") == 1
    finally:
        gw.close()
        await stop(w)


@SQLITE
async def test_two_workers_in_one_queue_group_store_each_event_once(node: NatsCluster, db_url: str) -> None:
    workers = [await start_worker(nats_mqtt(node), db_url, subscribed=True) for _ in range(2)]
    gws = [ScriptedGateway(Gateways(node), f"nats-two-{i}").connect() for i in range(3)]
    try:
        sent = {gw.gw: [gw.event(sensor=f"s-{n % 3}") for n in range(30)] for gw in gws}
        for gw in gws:
            for ev in sent[gw.gw]:  # twice: the copies may reach different workers
                gw.send(ev)
                gw.send(ev)
        for gw in gws:  # (two copies in one batch are acked once)
            await gw.acked([e.id for e in sent[gw.gw]], within=60)
        total = sum(len(evs) for evs in sent.values())

        def received() -> list[float]:
            return [w.count("safehome_messages_in_total", type="event") for w in workers]

        # the queue group hands each copy to exactly one worker
        await until(lambda: sum(received()) == 2 * total, what="every copy received once")
        assert stored(workers[0]) == total
        assert all(r > 0 for r in received()), f"load not split: {received()}"
        new = [w.count("safehome_events_stored_total", outcome="new") for w in workers]
        assert sum(new) == total  # every event was acked: stored, and new once
        await until(lambda: sum(len(w.sink.events) for w in workers) == total, what="sinks told once each")
    finally:
        for gw in gws:
            gw.close()
        await stop(*workers)


def lane_node(w: Worker, cluster: NatsCluster) -> int:
    """The index of the node the worker's priority lane is connected to."""
    source = w.service._sources[PRIORITY_LANE]
    assert isinstance(source, NatsLane)
    port = source.connected_port
    assert port is not None, "priority lane not connected"
    return [int(u.rsplit(":", 1)[1]) for u in cluster.nats_urls].index(port)


@SQLITE
async def test_the_hub_keeps_storing_when_its_node_is_sigkilled(cluster: NatsCluster, db_url: str) -> None:
    w = await start_worker(nats_mqtt(cluster), db_url, subscribed=True)
    killed = lane_node(w, cluster)
    # the gateway stays on a node that lives (its failover is the edge's, tests/edge/)
    gw = resubscribing(ScriptedGateway(Gateways(cluster, node=(killed + 1) % 3), "nats-kill-gw").connect())
    try:
        before = [gw.event(seq=i) for i in range(10)]
        await send_until_acked(gw, before)
        cluster.kill(killed)
        await until(lambda: w.count("safehome_ingest_lane_lost_total", lane="priority") >= 1, what="lane lost")
        await asyncio.wait_for(w.service.subscribed.wait(), 30)  # on another node
        assert lane_node(w, cluster) != killed
        after = [gw.event(seq=100 + i) for i in range(10)]
        # the cluster elects new leaders for the MQTT streams meanwhile: QoS 1 publishes (the
        # acks) time out, the gateway's connection is closed (>10 s each at load ~7)
        await send_until_acked(gw, after, within=120)
        assert stored(w, [e.id for e in before + after]) == 20
        assert w.count("safehome_ingest_lane_up", lane="priority") == 1
    finally:
        gw.close()
        await stop(w)


@SQLITE
async def test_the_hub_on_nats_reports_its_lanes_and_runs_without_sys(
    node: NatsCluster, db_url: str, tmp_path: Path
) -> None:
    settings = load_hub_settings(
        None, env="test", worker_id="nats-run-1", secrets={"key": generate_key()},
        database={"url": db_url}, mqtt=nats_mqtt(node).model_dump(exclude_unset=True), http={"port": 0},
    )
    hub = build_hub(settings, alarms=False)
    assert hub.monitor is None  # NATS has no $SYS topics: no broker monitor
    await hub.start()
    gw = ScriptedGateway(Gateways(node), "nats-run-gw").connect()
    try:
        assert hub.ingest is not None
        ingest = hub.ingest
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.http_port}") as http:
            await until(ingest.subscribed.is_set, what="subscribed")
            assert (await http.get("/healthz")).status_code == 200
            ev = gw.event(p.EventKind.GAS, sensor="gas-1")
            gw.send(ev)
            await gw.acked([ev.id])
            gw.close()
            node.kill(0)  # the only node: /healthz says so until it is back
            await until(lambda: not ingest.subscribed.is_set(), what="lanes down")
            r = await http.get("/healthz")
            assert r.status_code == 503 and r.json()["checks"]["broker"]["ok"] is False
            assert 'safehome_ingest_lane_up{lane="priority"} 0.0' in (await http.get("/metrics")).text
            node.restart(0)
            await until(ingest.subscribed.is_set, within=30, what="lanes back")
            assert (await http.get("/healthz")).status_code == 200
            lost = hub.metrics.registry.get_sample_value("safehome_ingest_lane_lost_total", {"lane": "priority"})
            assert lost is not None and lost >= 1
    finally:
        gw.close()
        await hub.stop()


@SQLITE
async def test_what_the_client_drops_as_a_slow_consumer_is_counted_and_resent(
    node: NatsCluster, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nats-py drops a message its subscription has no room for. A pending limit of one
    message makes a burst overflow it (the reader parses a whole read before the
    subscription's task runs): the drops are counted, never acked, and the gateway's resend
    gets every event stored."""
    monkeypatch.setattr(nats_source, "PENDING_MSGS", 1)
    w = await start_worker(nats_mqtt(node), db_url, subscribed=True)
    gw = ScriptedGateway(Gateways(node), "nats-slow-gw").connect()
    try:
        events = [gw.event(seq=i) for i in range(50)]
        for e in events:
            gw.send(e)
        await until(lambda: w.count("safehome_messages_rejected_total", reason="slow_consumer") > 0,
                    what="drops counted")
        acked_first = set(gw.collect_acks())
        assert len(acked_first) < len(events)  # what was dropped was not acked
        await send_until_acked(gw, events, within=60, burst=1)  # one at a time fits the limit
        assert stored(w, [e.id for e in events]) == len(events)
    finally:
        gw.close()
        await stop(w)


@SQLITE
async def test_a_gateways_last_will_reaches_the_hub_natively(node: NatsCluster, db_url: str) -> None:
    """NATS publishes an MQTT Last-Will on its subject: the queue group gets it like any status."""
    w = await start_worker(nats_mqtt(node), db_url, subscribed=True)
    gw = ScriptedGateway(Gateways(node), "nats-lwt-gw").connect()
    try:
        gw.send(gw.status(reason="birth"))
        await until(lambda: (st := gateway_state(w, gw.gw)) is not None and st.online, what="online")
        gw.client.kill()  # no DISCONNECT: the node publishes the Last-Will
        await until(lambda: not gateway_state(w, gw.gw).online, what="offline from Last-Will")  # type: ignore[union-attr]
        st = gateway_state(w, gw.gw)
        assert st is not None and st.last_status is not None and st.last_status["reason"] == "lwt"
    finally:
        await stop(w)


@SQLITE
async def test_acks_to_a_node_that_holds_the_connect_do_not_stop_the_ingest(node: NatsCluster, db_url: str) -> None:
    """After a node's SIGKILL a live node answers MQTT CONNECT only once the session stream
    has a leader again (up to the connect's 10 s timeout, measured): the ingest must go on
    storing meanwhile (the acks of those batches are dropped; the gateways resend). Here the
    hub's only MQTT address accepts TCP and never answers: each batch that waited for its
    acks would make one more connect attempt there before the next batch is stored."""
    attempts: list[asyncio.StreamWriter] = []

    async def hold(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        attempts.append(w)  # never answered, never closed by us before the end

    hole = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = hole.sockets[0].getsockname()[1]
    mqtt = nats_mqtt(node).model_copy(update={"servers": [f"127.0.0.1:{port}"]})
    w = await start_worker(mqtt, db_url, subscribed=True)
    gw = ScriptedGateway(Gateways(node), "nats-hole-gw").connect()
    try:
        events = [gw.event(seq=i) for i in range(5)]
        ids = [e.id for e in events]
        for n, ev in enumerate(events, 1):
            gw.send(ev)  # one batch each: the next is sent once this one is stored
            await until(functools.partial(lambda n: stored(w, ids) == n, n), within=30, what=f"event {n} stored")
        assert len(attempts) == 1, f"{len(attempts)} connect attempts: batches waited for their acks"
        assert not gw.collect_acks()  # nothing acked through the hole: resent later, stored once
    finally:
        gw.close()
        await stop(w)
        for writer in attempts:
            writer.close()
        hole.close()
        await hole.wait_closed()
