"""The fleet and the stand-in hub on several broker addresses: they spread over the nodes,
and when one node is SIGKILLed every gateway on it (and the stand-in) is back on the other
and an alarm raised meanwhile is acked there. Two real Mosquittos on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from firmware_sim.broker import free_port
from firmware_sim.errors import LoginFailed, MqttError
from firmware_sim.mqtt import MqttSession
from firmware_sim.standin import StandIn
from protocols import EventKind
from protocols.failover import Address
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.firmware_sim.conftest import RunFleet

#: a bound on a hang, not a timing: a stop lost to Python 3.11 wait_for hung one (edge.session.still_running)
pytestmark = pytest.mark.timeout(180)

N = 20  #: gateways: all of them on one node by chance has odds 2 x 2**-20


async def test_a_fleet_fails_over_when_its_node_dies(
    run_fleet: RunFleet, mosquitto_factory: Callable[..., Mosquitto]
) -> None:
    nodes = [mosquitto_factory(), mosquitto_factory()]
    addrs = [Address(b.host, b.port) for b in nodes]
    ackers = [HubAcker(b.host, b.port) for b in nodes]
    standin = StandIn("", 0, ack=False, servers=addrs)  # counts what reaches the hub side
    try:
        fleet = await run_fleet(N, broker=nodes[0], servers=[str(a) for a in addrs], failover_spread_s=0.3)
        assert fleet.connected == N
        assert set(fleet.server_of.values()) == set(addrs)  # spread over both nodes

        dead = addrs.index(standin.server)
        alive = addrs[1 - dead]
        moved = [g for g, a in fleet.server_of.items() if a == addrs[dead]]
        nodes[dead].stop(kill=True)
        pend = fleet.trigger(moved[0], EventKind.SMOKE, sensor="smoke-1")  # raised meanwhile

        await until(
            lambda: fleet.connected == N and set(fleet.server_of.values()) == {alive},
            within=15,
            what="every gateway on the surviving node",
        )
        await until(lambda: pend.id not in fleet.gateways[moved[0]].pending, within=15, what="alarm acked")
        await until(lambda: standin.server == alive and standin.connected.is_set(), what="stand-in moved")
        seen = standin.counts["event"]
        fleet.trigger(moved[-1], EventKind.PANIC, sensor="smoke-1")
        await until(lambda: standin.counts["event"] > seen, what="the stand-in receives on the new node")
        assert fleet.stats.counts["links_lost"] >= len(moved)
    finally:
        standin.close()
        for a in ackers:
            a.close()


def test_a_bad_server_is_refused_before_anything_runs() -> None:
    from click.testing import CliRunner

    from firmware_sim.cli import sim

    r = CliRunner().invoke(sim, ["fleet", "--homes", "2", "--server", "a:1883", "--server", "b:70000"])
    assert r.exit_code == 2
    assert "servers[1]: 'b:70000': port 70000 is outside 1..65535" in r.output


def test_the_link_options_reach_the_fleet_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from firmware_sim.cli import _settings, sim

    def link(**given: object) -> tuple[int, int, bool]:
        s = _settings("127.0.0.1", 1883, (), 30.0, 60.0, 10.0, None, 1, **given)
        return int(s.downlink_qos), int(s.uplink_qos), bool(s.retain_status)

    for name in ("DOWNLINK_QOS", "UPLINK_QOS", "RETAIN_STATUS"):
        monkeypatch.delenv(f"SAFEHOME_SIM_{name}", raising=False)
    assert link() == link(downlink_qos=None, uplink_qos=None, retain_status=None) == (1, 1, True)
    assert link(downlink_qos=0, uplink_qos=0, retain_status=False) == (0, 0, False)
    monkeypatch.setenv("SAFEHOME_SIM_DOWNLINK_QOS", "0")
    monkeypatch.setenv("SAFEHOME_SIM_UPLINK_QOS", "0")
    monkeypatch.setenv("SAFEHOME_SIM_RETAIN_STATUS", "false")
    assert link() == (0, 0, False)
    assert link(downlink_qos=1, uplink_qos=1, retain_status=True) == (1, 1, True)  # options beat the environment
    for option in ("--downlink-qos", "--uplink-qos"):
        r = CliRunner().invoke(sim, ["fleet", "--homes", "2", option, "2"])
        assert r.exit_code == 2 and option in r.output


async def test_an_alarm_cuts_a_gateways_long_reconnect_wait_short(mosquitto: Mosquitto, run_fleet: RunFleet) -> None:
    """As the edge agent does: while an alarm waits unacked, a gateway reconnects within
    0.5-2 s, not after its spread or backoff (here 30-60 s); an alarm raised during such a wait
    cuts it short, and a gateway that lost its link with an alarm waiting comes back at once."""
    acker = HubAcker(mosquitto.host, mosquitto.port)
    try:
        fleet = await run_fleet(2, reconnect_min_s=30, reconnect_max_s=60, failover_spread_s=60)
        waiting, lost_with_alarm = sorted(fleet.gateways)
        s = fleet.sessions[waiting]
        assert s.transport is not None
        s.transport.abort()  # the link drops; one address: a full round failed, the wide backoff
        await until(lambda: waiting not in fleet.sessions, what="the link noticed as lost")
        wait_s = fleet.reconnect_in(waiting)
        assert wait_s is not None and wait_s > 20
        pend = fleet.trigger(waiting, EventKind.SMOKE, sensor="smoke-1")  # raised during the wait
        await until(lambda: pend.id not in fleet.gateways[waiting].pending, what="the alarm acked")

        acker.should_ack = lambda m: False  # the next alarm stays unacked ...
        other = fleet.trigger(lost_with_alarm, EventKind.GAS, sensor="gas-1")
        s2 = fleet.sessions[lost_with_alarm]
        assert s2.transport is not None
        s2.transport.abort()  # ... when the link drops
        await until(lambda: lost_with_alarm not in fleet.sessions, what="the second link noticed as lost")
        wait_s = fleet.reconnect_in(lost_with_alarm)
        assert wait_s is not None and wait_s <= 2.0
        acker.should_ack = lambda m: True
        await until(lambda: other.id not in fleet.gateways[lost_with_alarm].pending, what="the second alarm acked")
    finally:
        acker.close()


async def test_a_failed_connect_is_retried_soon_on_the_next_node(mosquitto: Mosquitto, run_fleet: RunFleet) -> None:
    """As the agent does: a node that closes the connection before CONNACK fails the login
    (LoginFailed, counted apart from a node that cannot be reached), and the gateway tries
    the next address after NEXT_TRY_S instead of its spread (here 60 s)."""
    closed: list[bytes] = []

    async def fails_logins(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        closed.append(await reader.read(1))
        writer.close()

    server = await asyncio.start_server(fails_logins, "127.0.0.1", 0)
    bad = Address("127.0.0.1", server.sockets[0].getsockname()[1])
    good = Address(mosquitto.host, mosquitto.port)
    try:
        session = MqttSession("simlogin-x")
        with pytest.raises(LoginFailed, match="closed before CONNACK"):
            await session.connect(bad.host, bad.port)
        with pytest.raises(MqttError) as unreachable:  # nothing listens there: not a login failure
            await session.connect("127.0.0.1", free_port())
        assert not isinstance(unreachable.value, LoginFailed)
        closed.clear()

        fleet = await run_fleet(16, servers=[str(bad), str(good)], failover_spread_s=60)
        # ~8 gateways start at the failing node: after the spread, all 8 would be back within
        # 20 s at odds of (1/3)**8; after NEXT_TRY_S they all are
        await until(lambda: fleet.connected == 16, within=20, what="every gateway on the node that logs it in")
        assert set(fleet.server_of.values()) == {good}
        assert fleet.stats.counts["connects"] == 16
        assert fleet.stats.counts["login_failed"] == len(closed) >= 4  # about half started there
        assert fleet.stats.counts["unreachable"] == 0
    finally:
        server.close()


def test_after_a_failed_round_a_fleet_gateway_backs_off_as_the_agent_does() -> None:
    """Full-jitter exponential per failed round (protocols.failover.reconnect_delay), not a
    flat 1-30 s: a restarted single broker sees its gateways after ~1 s, not up to 30 s."""
    from firmware_sim.fleet import Fleet, FleetSettings
    from tests.firmware_sim.conftest import specs

    fleet = Fleet(specs(1, "simbackoff"), FleetSettings(host="127.0.0.1", port=1, reconnect_min_s=1, reconnect_max_s=30))
    rot = fleet.rotation(next(iter(fleet.gateways)))
    delays = [rot.down() for _ in range(8)]  # one address: every failure is a full round
    assert delays[0] == 1.0
    for k, d in enumerate(delays):
        assert 1.0 <= d <= min(30.0, 2.0**k), (k, d)


def test_the_status_line_says_where_the_gateways_without_a_link_are() -> None:
    """``away``: a connect in flight (nothing scheduled), or the next try within 2 s, 10 s or
    later; a gateway cut on purpose is not counted. The status line prints it."""
    import io
    import time
    from contextlib import redirect_stderr

    from firmware_sim.fleet import Fleet, FleetSettings
    from firmware_sim.runner import stats_line
    from tests.firmware_sim.conftest import specs

    fleet = Fleet(specs(5, "simaway"), FleetSettings(host="127.0.0.1", port=1))
    ids = list(fleet.gateways)
    now = time.monotonic()
    fleet._schedule_reconnect(ids[0], 1.0)
    fleet._schedule_reconnect(ids[1], 5.0)
    fleet._schedule_reconnect(ids[2], 50.0)
    fleet.down.add(ids[4])
    assert fleet.away(now) == {"connecting": 1, "next<=2s": 1, "next<=10s": 1, "next>10s": 1}
    out = io.StringIO()
    with redirect_stderr(out):
        stats_line(fleet)
    assert "away connecting 1 next<=2s 1 next<=10s 1 next>10s 1" in out.getvalue()


async def test_a_fleet_gateway_hangs_up_on_a_link_that_leaves_its_alarm_unacked(
    mosquitto: Mosquitto, run_fleet: RunFleet
) -> None:
    """The agent's rule (docs/protocol.md §1.1): the link of a gateway goes silent with no FIN
    or RST (a proxy that stops forwarding), the keep-alive is 600 s; an alarm unacked on it
    for alarm_link_timeout_s makes the gateway hang up and deliver it through the next node."""
    from bench.faults.proxy import TcpProxy

    acker = HubAcker(mosquitto.host, mosquitto.port)
    proxy = TcpProxy(mosquitto.host, mosquitto.port).start()
    stalled = Address("127.0.0.1", proxy.port)
    direct = Address(mosquitto.host, mosquitto.port)
    try:
        fleet = await run_fleet(
            8, servers=[str(stalled), str(direct)], keepalive=600, alarm_link_timeout_s=1.0, failover_spread_s=0.2
        )
        await until(lambda: fleet.connected == 8, what="the fleet connected")
        on_proxy = [gw for gw, a in fleet.server_of.items() if a == stalled]
        assert on_proxy, "no gateway started on the proxy (each starts at a node of its own order)"
        gw = on_proxy[0]
        proxy.stall()
        pend = fleet.trigger(gw, EventKind.SMOKE, sensor="smoke-1")
        await until(lambda: pend.id not in fleet.gateways[gw].pending, within=20, what="the alarm acked")
        assert fleet.server_of[gw] == direct
        assert fleet.stats.counts["alarm_hangups"] >= 1
        assert fleet.gateways[gw].alarm_hangups == 0  # acked: back to the base limit
    finally:
        proxy.stop()
        acker.close()
