"""Issue 17 end to end: a node of a 3-node NATS cluster is SIGKILLed during a burst of alarms
and restarted later; nothing is lost, nothing doubled, every alarm reaches a person, and
supervision does not report the gateways that failed over as lost.

Real processes on loopback: three nats-server nodes (safehome/testing/nats.py, the
product's config, users and ACL), two ``safehome hub run`` workers on backend nats (one
queue group) and one PostgreSQL database, a webhook receiver subscribed to the district,
one edge agent (mock pins) and a fleet of simulated gateways, each given the three nodes'
addresses. The killed node is the one the hub workers send their acks through and the edge
agent is connected to, so the hub's own failover and a gateway's are both on the path.

Supervision runs with a short heartbeat (2 s) so that its silence deadline (15 s) falls
inside the test: a control gateway of the killed node that stays away *is* reported
silent, the gateways that fail over are not. A node's SIGKILL sends no Last-Will
(docs/broker.md, NATS's MQTT limits), so silence is the only way a dead node's gateways
could be reported lost.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import protocols as p
from bench.system import subscribe_webhook
from edge.agent import Agent
from edge.clock import Clock, FixedProbe
from edge.link import rotation
from edge.settings import EdgeSettings, load_settings
from firmware_sim.fleet import Fleet, FleetObserver, FleetSettings, SimGateway, specs_from_registry
from firmware_sim.registry import Registry, generate, registry_to_yaml
from hub.alarms.store.models import Alarm
from hub.db.engine import make_engine
from hub.db.events import StoredEvent
from hub.db.state import GatewayState
from protocols.failover import Address
from safehome.demo_hub import LOOPBACK_WEBHOOKS_TOML, HubHandle, nats_mqtt_toml, start_real_hub
from safehome.testing.nats import NatsCluster
from safehome.testing.poll import until
from safehome.testing.postgres import PostgresServer
from tests.support.http import Receiver, http_receiver

#: ~40 s here at load ~9; a hang (a wait without its own deadline) fails at 300 s, not the suite's 900 s
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]

HOMES = 16
HEARTBEAT_S = 2
#: the gateways' silence deadline: heartbeat 2 s x 2 misses + grace 11 s = 15 s (min 4 s)
SUPERVISION = [
    "[hub.supervision]",
    "tick_s = 0.5",
    "gateway_min_silence_s = 4",
    "grace_s = 11",
    "heartbeat_misses = 2",
    *LOOPBACK_WEBHOOKS_TOML,  # the webhook receiver listens on 127.0.0.1
]
#: fast failover, as tests/edge/test_failover.py: the next node within 0.3 s, a full round
#: of refused nodes (NATS refuses logins for ~4 s until the session stream has a new leader)
#: waits 0.2-1 s
FAST = {"reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "failover_spread_s": 0.3}
LOST_KINDS = ("gateway_silent", "gateway_offline")


class Acked(FleetObserver):
    """The event ids each simulated gateway got its ``stored`` ack for."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def stored(self, gw: SimGateway, ids: set[str]) -> None:
        self.ids |= ids


@dataclass
class District:
    reg: Registry
    cluster: NatsCluster
    hub: HubHandle
    hooks: Receiver
    db_url: str
    passwords: dict[str, str] = field(default_factory=dict)

    def node_of(self, address: Address) -> int:
        return self.cluster.mqtt_ports.index(address.port)

    @property
    def servers(self) -> list[str]:
        return [f"{self.cluster.host}:{port}" for port in self.cluster.mqtt_ports]

    def hub_connections(self, i: int, mqtt: bool) -> int:
        """The hub's connections to node ``i``: MQTT (the workers' ack publishers) or native
        (their ingest lanes)."""
        conns = self.cluster.monitor(i, "/connz?auth=true&limit=1024").get("connections") or []
        return sum(1 for c in conns if c.get("authorized_user") == "hub" and bool(c.get("mqtt_client")) == mqtt)

    def query(self, stmt: Any) -> list[Any]:
        engine = make_engine(self.db_url)
        try:
            with Session(engine) as s:
                return list(s.execute(stmt).all())
        finally:
            engine.dispose()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """A blank throwaway database (the hub's start migrates it)."""
    url = pg_server.create_database("safehome_cluster")
    yield url
    pg_server.drop_database(url)


@asynccontextmanager
async def district(tmp_path: Path, db_url: str) -> AsyncIterator[District]:
    reg = generate(HOMES, seed=17)
    (tmp_path / "registry.yaml").write_text(registry_to_yaml(reg))
    cluster = NatsCluster(tmp_path / "nats", size=3)
    passwords = {g.id: uuid.uuid4().hex for g in reg.gateways}
    cluster.gateways(passwords)
    cluster.start()
    hub: HubHandle | None = None
    try:
        with http_receiver() as hooks:
            mqtt = nats_mqtt_toml([(cluster.host, port) for port in cluster.mqtt_ports], cluster.nats_urls,
                                  cluster.hub_password)  # fmt: skip
            hub = await asyncio.to_thread(
                start_real_hub, tmp_path, cluster.host, 0, tmp_path / "registry.yaml", reg,
                db_url=db_url, mqtt=mqtt, workers=2, extra=SUPERVISION,
            )  # fmt: skip
            subscribe_webhook(db_url, f"{hooks.url}/alarms", reg.district.id)
            yield District(reg, cluster, hub, hooks, db_url, passwords)
    finally:
        if hub is not None:
            hub.stop()
        cluster.stop()


def agent_settings(tmp_path: Path, d: District, gw: str) -> EdgeSettings:
    return load_settings(
        None,
        gateway_id=gw,
        environment="development",
        data_dir=tmp_path / "edge-data",
        state_dir=tmp_path / "edge-run",
        pin_factory="mock",
        mqtt={"servers": d.servers, "password": d.passwords[gw], "connect_timeout_s": 5, **FAST},
        sensors=[{"id": "smoke-1", "model": "smoke-dry-contact"}, {"id": "panic-1", "model": "panic-button"}],
        outputs=[{"id": "buzzer-1", "model": "buzzer"}],
        poll_ms=10,
        heartbeat_s=HEARTBEAT_S,
        telemetry_s=3600,
        ack_timeout_s=0.5,
        resend_max_s=2.0,
        time_sync="assume_synced",
        watchdog=False,
    )


def gateway_starting_at(d: District, node: int, among: list[str]) -> str:
    """A gateway of ``among`` whose edge agent tries node ``node`` first."""
    for gw in among:
        s = load_settings(None, gateway_id=gw, mqtt={"servers": d.servers})
        if d.node_of(rotation(s, random.Random()).current) == node:
            return gw
    raise AssertionError(f"no gateway of {len(among)} starts at node {node}")


def hub_pids_alive(d: District) -> None:
    for proc in d.hub.processes:
        assert proc.poll() is None, f"hub worker {proc.pid} exited; see {d.hub.log_path}"


async def test_a_node_is_sigkilled_during_a_burst_of_alarms(tmp_path: Path, pg_url: str) -> None:
    async with district(tmp_path, pg_url) as d:
        gws = [g.id for g in d.reg.gateways]
        # The node to kill is the first MQTT address: each worker's ack publisher connects
        # there first (hub/mqtt.py LazyPublisher), the worst case (the ingest then waits for
        # nothing but its acks' reconnect: hub/ingest/service.py publish_acks). The edge
        # agent starts on it too; the ingest lanes are where nats-py's random order put them.
        victim = 0
        edge_gw = gateway_starting_at(d, victim, gws)
        specs = [s for s in specs_from_registry(d.reg) if s.id != edge_gw]
        acked = Acked()
        settings = FleetSettings.model_validate(
            {"servers": d.servers, "heartbeat_s": HEARTBEAT_S, "telemetry_s": 5, "resend_s": 1, "resend_max_s": 2,
             "seed": 5, **FAST}
        )  # fmt: skip
        fleet = Fleet(specs, settings, credentials=lambda gw: (gw, d.passwords[gw]), observer=acked)
        pins = MockFactory()
        agent = Agent(agent_settings(tmp_path, d, edge_gw), factory=pins, clock=Clock(FixedProbe(True)))
        stop = asyncio.Event()
        await fleet.start()
        runner = asyncio.create_task(fleet.run(stop))
        edge = asyncio.create_task(agent.run())
        try:
            await until(agent.link_up.is_set, within=30, what="edge agent linked")
            assert agent.link.server is not None and d.node_of(agent.link.server) == victim

            def online() -> int:
                rows = d.query(select(func.count()).select_from(GatewayState).where(GatewayState.online))
                return int(rows[0][0])

            await until(lambda: online() == len(gws), within=60, what="every gateway online at the hub")
            await until(lambda: d.hub_connections(victim, mqtt=True) >= 2, within=60,
                        what="both workers' ack publishers on the node to kill")  # fmt: skip
            on_victim = [gw for gw, a in fleet.server_of.items() if d.node_of(a) == victim]
            assert len(on_victim) >= 2, f"only {on_victim} of the fleet on node {victim}"
            silent_control, movers = on_victim[0], on_victim[1:]
            fleet_gws = [s.id for s in specs if s.id != silent_control]

            # the burst: half of the fleet's smoke alarms and the agent's smoke just before the
            # kill (in flight or unacked when the node dies), the rest while gateways fail over
            sent: list[str] = []
            half = len(fleet_gws) // 2
            sent += [fleet.trigger(gw, p.EventKind.SMOKE, sensor="smoke-1").id for gw in fleet_gws[:half]]
            pins.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
            d.cluster.kill(victim)
            fleet.link_down(silent_control)  # before the loop sees the loss: no Will, never back
            sent += [fleet.trigger(gw, p.EventKind.SMOKE, sensor="smoke-1").id for gw in fleet_gws[half:]]
            pins.pin(agent.sensor("panic-1").pins["button"]).drive_low()

            def elsewhere(address: Address | None) -> bool:
                return address is not None and d.node_of(address) != victim

            def back() -> bool:
                linked = agent.link_up.is_set() and elsewhere(agent.link.server)
                return linked and all(elsewhere(fleet.server_of.get(gw)) for gw in movers)

            await until(back, within=60, what="the killed node's gateways on other nodes")
            # the control is reported silent: supervision's deadline passed inside the test
            await until(lambda: lost_alarms(d, [silent_control]) == {silent_control}, within=60,
                        what="the control gateway reported silent")  # fmt: skip

            await asyncio.to_thread(d.cluster.restart, victim)  # the gateways keep running meanwhile
            sent += [fleet.trigger(gw, p.EventKind.PANIC, sensor="panic-1").id for gw in fleet_gws]
            hub_pids_alive(d)

            await until(lambda: set(sent) <= acked.ids, within=90, what="every fleet alarm acked")
            await until(lambda: agent.outbox.depth() == 0, within=60, what="the agent's alarms acked")
            edge_ids = {r[0] for r in d.query(select(StoredEvent.id).where(StoredEvent.gateway_id == edge_gw))}
            assert len(edge_ids) == 2, edge_ids
            ids = set(sent) | edge_ids
            # 0 lost, 0 duplicated: one stored event and one alarm per event
            assert len(d.query(select(StoredEvent.id).where(StoredEvent.id.in_(ids)))) == len(ids)
            alarms = d.query(select(Alarm.id, Alarm.event_id, Alarm.gateway_id, Alarm.kind)
                             .where(Alarm.kind.in_(["smoke", "panic"])))  # fmt: skip
            assert sorted(a.event_id for a in alarms) == sorted(ids)
            # every alarm notified, once
            await until(lambda: {a.id for a in alarms} <= raised(d.hooks), within=60, what="every alarm's webhook")
            per_alarm = deliveries(d.hooks)
            assert all(len(per_alarm[a.id]) == 1 for a in alarms), per_alarm
            # the gateways that failed over were not reported lost (only the control was)
            assert lost_alarms(d, gws) == {silent_control}
            hub_pids_alive(d)
        finally:
            agent.stop()
            await asyncio.wait_for(edge, 15)
            stop.set()
            await runner
            await fleet.stop()
            pins.reset()


def lost_alarms(d: District, gws: list[str]) -> set[str]:
    rows = d.query(select(Alarm.gateway_id).where(Alarm.kind.in_(LOST_KINDS), Alarm.gateway_id.in_(gws)))
    return {r[0] for r in rows}


def _raised_bodies(hooks: Receiver) -> list[tuple[str, dict[str, Any]]]:
    with hooks.lock:
        requests = list(hooks.requests)
    out = []
    for r in requests:
        body = r.json()
        if isinstance(body, dict) and body.get("event") == "alarm.raised":
            out.append((r.headers.get("x-safehome-delivery", ""), body))
    return out


def raised(hooks: Receiver) -> set[str]:
    return {str(body.get("alarm_id")) for _d, body in _raised_bodies(hooks)}


def deliveries(hooks: Receiver) -> dict[str, set[str]]:
    """alarm id → the distinct deliveries (notification ids) of its ``alarm.raised``."""
    out: dict[str, set[str]] = {}
    for delivery, body in _raised_bodies(hooks):
        out.setdefault(str(body.get("alarm_id")), set()).add(delivery)
    return out

