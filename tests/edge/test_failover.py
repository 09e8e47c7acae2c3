"""Several broker addresses: the node the agent is on is SIGKILLed, the agent is on another
one within seconds and what was unacked (and what was raised meanwhile) is delivered and
acked there. Real Mosquittos on loopback; the gpiozero mock drives the sensors."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from edge.health import read_state
from edge.link import rotation
from edge.settings import load_settings
from protocols import Channel, Event, EventKind
from protocols.failover import NEXT_TRY_S, Address
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.pki import make_pki
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, new_gateway_id, running, settings_for

#: a bound on a hang, not a timing: a stop lost to Python 3.11 wait_for hung one (edge.session.still_running)
pytestmark = pytest.mark.timeout(180)

FAST = {"reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "failover_spread_s": 0.3, "connect_timeout_s": 5}


def gateway_starting_at(first: int, addresses: list[str]) -> str:
    """A gateway id whose own order over ``addresses`` starts with ``addresses[first]``."""
    while True:
        gw = new_gateway_id()
        s = load_settings(None, gateway_id=gw, mqtt={"servers": addresses})
        if str(rotation(s, random.Random()).current) == addresses[first]:
            return gw


async def test_the_node_dies_and_the_agent_delivers_through_another(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto], mock_factory: MockFactory
) -> None:
    nodes = [mosquitto_factory(), mosquitto_factory()]
    servers = [f"{b.host}:{b.port}" for b in nodes]
    gw = gateway_starting_at(0, servers)
    # the hub on node 1 receives but never acks; the hub on node 2 acks
    silent = HubAcker(nodes[0].host, nodes[0].port, auto_ack=False)
    acking = HubAcker(nodes[1].host, nodes[1].port)
    try:
        s = settings_for(tmp_path, nodes[0], gateway_id=gw, mqtt={"servers": servers, **FAST})
        agent = make_agent(s, mock_factory)
        async with running(agent):
            assert agent.link.server == Address(nodes[0].host, nodes[0].port)
            mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
            [smoke] = await silent.wait_for(gw, Channel.EVENT)  # sent, never acked

            nodes[0].stop(kill=True)  # SIGKILL: no DISCONNECT, no goodbye
            mock_factory.pin(agent.sensor("panic-1").pins["button"]).drive_low()  # raised meanwhile

            on_two = Address(nodes[1].host, nodes[1].port)
            await until(lambda: agent.link.server == on_two, within=15, what="agent on node 2")
            await acking.wait_for(gw, Channel.EVENT, lambda m: m.id == smoke.id, within=15)
            await acking.wait_for(gw, Channel.EVENT, lambda m: m.kind is EventKind.PANIC, within=15)
            await until(lambda: agent.outbox.depth() == 0, within=15, what="both acked through node 2")
            await until(
                lambda: (read_state(s.state_path) or {}).get("broker") == str(on_two),
                what="status file names node 2",
            )
        kinds = {m.kind for m in acking.of(gw, Channel.EVENT) if isinstance(m, Event)}
        assert {EventKind.SMOKE, EventKind.PANIC} <= kinds
        assert agent.outbox.resent + agent.outbox.sent >= 3  # smoke twice (once per node), panic
    finally:
        silent.close()
        acking.close()


async def test_each_address_is_checked_against_its_own_tls_name(
    tmp_path: Path,
    mosquitto_factory: Callable[..., Mosquitto],
    mock_factory: MockFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pki = make_pki(tmp_path / "pki", hosts=("localhost",)).directory  # valid for "localhost" only
    tls = f"cafile {pki / 'ca.crt'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}\n"
    nodes = [mosquitto_factory(extra_config=tls), mosquitto_factory(extra_config=tls)]
    # node 1 given by IP (its certificate does not name 127.0.0.1), node 2 by its name
    servers = [f"127.0.0.1:{nodes[0].port}", f"localhost:{nodes[1].port}"]
    gw = gateway_starting_at(0, servers)
    mqtt = {"servers": servers, "tls": True, "ca_file": str(pki / "ca.crt"), **FAST}
    s = settings_for(tmp_path, nodes[0], gateway_id=gw, mqtt=mqtt)
    agent = make_agent(s, mock_factory)
    async with running(agent, wait_link=False):
        await until(lambda: agent.link.server == Address("localhost", nodes[1].port), within=15, what="node 2")
    refused = [r.getMessage() for r in caplog.records if f"127.0.0.1:{nodes[0].port}" in r.getMessage()]
    assert any("certificate" in m.lower() for m in refused), refused


async def test_a_node_that_never_answers_connect_is_hung_up_on(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    """A CONNECT left without CONNACK (a NATS node electing leaders holds it) is hung up on
    when the attempt gives up: a late CONNACK on it would be a second session of the gateway."""
    attempts: list[bool] = []  # one per connection: True once the agent closed it

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(False)
        i = len(attempts) - 1
        await reader.read()  # never answers; returns at EOF
        attempts[i] = True
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    mqtt = {**FAST, "servers": [f"127.0.0.1:{port}"], "connect_timeout_s": 0.3}
    try:
        agent = make_agent(settings_for(tmp_path, mosquitto, mqtt=mqtt), mock_factory)
        async with running(agent, wait_link=False):
            await until(lambda: sum(attempts) >= 2, within=15, what="two attempts hung up on by the agent")
            assert not agent.link_up.is_set()
    finally:
        server.close()


async def test_a_cancellation_swallowed_on_the_way_still_stops_the_session() -> None:
    """Python 3.11's wait_for (inside aiomqtt) can return a reply that arrived in the step
    that cancelled the task, losing the cancellation: the session checks the request count."""
    from edge.session import cancel_requests, still_running

    async def session() -> str:
        before = cancel_requests()
        still_running(before)  # nothing asked: goes on
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            pass  # what wait_for did with it
        still_running(before)
        return "ran on"

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(session())


async def test_a_node_that_fails_the_login_is_left_at_once_for_the_next(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A node that takes the connection and closes it before CONNACK (a NATS node whose
    session store timed out) ends the attempt at once, and the next address is tried after
    NEXT_TRY_S: with a 600 s connect timeout and a 60 s spread the agent gets to
    the second node well before 60 s (it could not before: it waited out both)."""
    caplog.set_level(logging.INFO, logger="edge.session")
    closed: list[bytes] = []

    async def fails_logins(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        closed.append(await reader.read(1))  # the CONNECT's first byte
        writer.close()

    server = await asyncio.start_server(fails_logins, "127.0.0.1", 0)
    servers = [f"127.0.0.1:{server.sockets[0].getsockname()[1]}", f"{mosquitto.host}:{mosquitto.port}"]
    gw = gateway_starting_at(0, servers)
    mqtt = {**FAST, "servers": servers, "connect_timeout_s": 600, "failover_spread_s": 60}
    try:
        agent = make_agent(settings_for(tmp_path, mosquitto, gateway_id=gw, mqtt=mqtt), mock_factory)
        async with running(agent, wait_link=False):
            on_two = Address(mosquitto.host, mosquitto.port)
            await until(lambda: agent.link.server == on_two, within=30, what="agent on the node that logs it in")
        assert closed == [b"\x10"]  # one CONNECT reached the failing node, and it was left
        said = [r.getMessage() for r in caplog.records]
        assert any("closed the connection before CONNACK" in m for m in said), said
        [retry] = [m for m in said if m.endswith("(connect failed)")]
        lo, hi = NEXT_TRY_S
        assert lo <= float(retry.split(" in ")[1].split(" s")[0]) <= hi, retry
    finally:
        server.close()


async def test_an_alarm_unacked_on_a_half_open_link_goes_through_the_next_node(
    tmp_path: Path,
    mosquitto_factory: Callable[..., Mosquitto],
    mock_factory: MockFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The node's end of the link goes silent with no FIN or RST (its machine vanished, a
    partition): the keep-alive, 600 s here, would notice after 15 min. An alarm unacked on
    the link for alarm_link_timeout_s makes the agent hang up and deliver it through the next
    node."""
    from bench.faults.proxy import TcpProxy

    nodes = [mosquitto_factory(), mosquitto_factory()]
    proxy = TcpProxy(nodes[0].host, nodes[0].port).start()
    servers = [f"127.0.0.1:{proxy.port}", f"{nodes[1].host}:{nodes[1].port}"]
    gw = gateway_starting_at(0, servers)
    ackers = [HubAcker(n.host, n.port) for n in nodes]
    try:
        mqtt = {"servers": servers, **FAST, "keepalive_s": 600, "alarm_link_timeout_s": 2}
        s = settings_for(tmp_path, nodes[0], gateway_id=gw, mqtt=mqtt, ack_timeout_s=1)
        agent = make_agent(s, mock_factory)
        async with running(agent):
            assert agent.link.server == Address("127.0.0.1", proxy.port)
            proxy.stall()
            mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
            on_two = Address(nodes[1].host, nodes[1].port)
            await until(lambda: agent.link.server == on_two, within=30, what="the agent on node 2")
            await ackers[1].wait_for(gw, Channel.EVENT, lambda m: m.kind is EventKind.SMOKE, within=15)
            await until(lambda: agent.outbox.alarms_pending() == 0, within=15, what="the smoke acked via node 2")
            # acked: the next hang-up starts from the base limit again
            await until(lambda: agent.link.alarm_hangups == 0, what="the hang-ups forgotten once acked")
        said = [r.getMessage() for r in caplog.records if "presumed dead" in r.getMessage()]
        assert said and "unacked for" in said[0] and "alarm_link_timeout_s 2 s" in said[0], said
        assert ackers[0].of(gw, Channel.EVENT) == []  # nothing got through the stalled link
    finally:
        for a in ackers:
            a.close()
        proxy.stop()


def test_each_hang_up_for_an_unacked_alarm_doubles_the_next_links_limit() -> None:
    from protocols.failover import ALARM_LINK_TIMEOUT_MAX_S, alarm_link_timeout

    limits = [alarm_link_timeout(15, n) for n in range(6)]
    assert limits == [15, 30, 60, ALARM_LINK_TIMEOUT_MAX_S, ALARM_LINK_TIMEOUT_MAX_S, ALARM_LINK_TIMEOUT_MAX_S]
    assert alarm_link_timeout(300, 3) == 300  # a base above the cap is kept, not lowered
