"""A pin driven low becomes an event at the broker; only the hub's Ack removes it; no Ack → resend."""

from __future__ import annotations

from pathlib import Path

from gpiozero.pins.mock import MockFactory

from edge.store import LANE_TELEMETRY, Entry
from protocols import AckStatus, Channel, EventKind, EventState, GatewayState, new_event_id
from protocols.codec import LIMITS
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, running, settings_for


async def test_smoke_pin_low_reaches_the_hub_and_the_ack_empties_the_buffer(
    tmp_path: Path, mosquitto: Mosquitto, acker: HubAcker, mock_factory: MockFactory
) -> None:
    s = settings_for(tmp_path, mosquitto)
    agent = make_agent(s, mock_factory)
    async with running(agent):
        [birth] = await acker.wait_for(s.gateway_id, Channel.STATUS, lambda m: m.reason == "birth")
        assert birth.state is GatewayState.ONLINE
        mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
        [ev] = await acker.wait_for(s.gateway_id, Channel.EVENT)
        assert (ev.sensor, ev.kind, ev.state, ev.synced) == (
            "smoke-1",
            EventKind.SMOKE,
            EventState.ALARM,
            True,
        )
        await until(lambda: agent.outbox.depth() == 0, what="ack to empty the buffer")
        assert not agent.store.contains(ev.id)
        assert agent.last_ack_ms is not None


async def test_without_ack_the_event_is_resent_with_the_same_id(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    hub = HubAcker(mosquitto.host, mosquitto.port, auto_ack=False)
    try:
        s = settings_for(tmp_path, mosquitto, ack_timeout_s=0.2)
        agent = make_agent(s, mock_factory)
        async with running(agent):
            mock_factory.pin(agent.sensor("panic-1").pins["button"]).drive_low()
            sends = await hub.wait_for(s.gateway_id, Channel.EVENT, count=3)
            assert {m.id for m in sends} == {sends[0].id}
            assert {m.seq for m in sends} == {sends[0].seq}
            assert sends[0].kind is EventKind.PANIC
            assert agent.store.contains(sends[0].id)  # PUBACKs did not remove it
            assert agent.outbox.resent >= 2
            hub.ack(s.gateway_id, sends[0].id, AckStatus.STORED)
            await until(lambda: agent.outbox.depth() == 0, what="ack")
            n = len(hub.messages(s.gateway_id, Channel.EVENT))
            # an acked event is never sent again: stop the agent and look
        assert len(hub.messages(s.gateway_id, Channel.EVENT)) <= n + 1  # at most one in flight at ack time
    finally:
        hub.close()


async def test_rejected_event_leaves_the_buffer(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    hub = HubAcker(mosquitto.host, mosquitto.port, auto_ack=False)
    try:
        s = settings_for(tmp_path, mosquitto)
        agent = make_agent(s, mock_factory)
        async with running(agent):
            mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
            [ev] = await hub.wait_for(s.gateway_id, Channel.EVENT)
            hub.ack(s.gateway_id, ev.id, AckStatus.REJECTED, reason="unknown sensor")
            await until(lambda: agent.outbox.depth() == 0, what="reject to drop the event")
    finally:
        hub.close()


async def test_uplink_socket_has_nagle_disabled(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    """Without TCP_NODELAY an alarm can wait tens of ms behind the previous segment's ACK."""
    import socket

    agent = make_agent(settings_for(tmp_path, mosquitto), mock_factory)
    async with running(agent):
        assert agent.client is not None
        sock = agent.client._client.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


async def test_an_alarm_overtakes_a_full_in_flight_window_of_telemetry(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    hub = HubAcker(mosquitto.host, mosquitto.port, auto_ack=False)
    try:
        s = settings_for(tmp_path, mosquitto, inflight_window=2, ack_timeout_s=60)
        agent = make_agent(s, mock_factory)
        async with running(agent):
            for _ in range(6):
                agent.record_telemetry()
            await hub.wait_for(s.gateway_id, Channel.TELEMETRY, count=2)
            assert len(agent.outbox.flights) == 2  # window full, nobody acks
            mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
            [ev] = await hub.wait_for(s.gateway_id, Channel.EVENT)
            assert ev.kind is EventKind.SMOKE
            assert len(hub.messages(s.gateway_id, Channel.TELEMETRY)) == 2  # nothing else got in
            assert ev.id in agent.outbox.flights and len(agent.outbox.flights) == 2
    finally:
        hub.close()


async def test_a_message_above_its_payload_limit_is_never_published(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory, acker: HubAcker
) -> None:
    s = settings_for(tmp_path, mosquitto)
    agent = make_agent(s, mock_factory)
    big = Entry(new_event_id(), LANE_TELEMETRY, "telemetry", 1, 1, b"x" * (LIMITS[Channel.TELEMETRY] + 1))
    agent.store.add_telemetry([big])  # (only a buffer from an older agent could hold one)
    async with running(agent):
        await until(lambda: not agent.store.contains(big.id), what="the oversize entry dropped")
        agent.record_telemetry()
        [t] = await acker.wait_for(s.gateway_id, Channel.TELEMETRY)  # the link carries on
        assert t.id != big.id and agent.link_up.is_set()
