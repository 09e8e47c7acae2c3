"""Broker down for a while → events buffered → broker back → delivered, alarms before telemetry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from protocols import Channel, Event, EventKind, Telemetry
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, running, settings_for


@pytest.mark.parametrize("order", ["oldest_first", "newest_first"])
async def test_broker_outage_buffers_then_delivers_alarms_first(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto], mock_factory: MockFactory, order: str
) -> None:
    broker = mosquitto_factory(persistence=True)
    hub = HubAcker(broker.host, broker.port, persistent=True)
    try:
        s = settings_for(tmp_path, broker, telemetry_flush_s=0.2, backlog_order=order, inflight_window=2)
        agent = make_agent(s, mock_factory)
        gw = s.gateway_id
        async with running(agent):
            broker.stop()
            await until(lambda: not agent.link_up.is_set(), what="link down")
            for _ in range(5):  # a backlog of telemetry, older than the alarm
                agent.record_telemetry()
            agent.analog["gas-1"].set_fraction(0.05)
            await until(lambda: agent.outbox.depth() >= 5, what="telemetry buffered")
            mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
            await until(lambda: agent.outbox.alarms_pending() == 1, what="alarm recorded")
            await until(lambda: not agent.outbox.memory, what="telemetry flushed to disk")
            assert agent.store.depth() == {0: 1, 2: 5}
            assert not hub.messages(gw, Channel.EVENT)

            broker.start()  # same port, same persistence file: the acker's session survives
            await until(lambda: agent.link_up.is_set(), within=15, what="reconnect")
            await hub.wait_for(gw, Channel.TELEMETRY, count=5, within=15)
            await until(lambda: agent.outbox.depth() == 0, what="everything acked")

        uplink = [m for m in (r.message for r in hub.received) if isinstance(m, Event | Telemetry)]
        kinds = [m.kind if isinstance(m, Event) else "telemetry" for m in uplink]
        assert kinds[0] is EventKind.SMOKE, kinds
        assert kinds.count("telemetry") >= 5
        seqs = [m.seq for m in uplink if isinstance(m, Telemetry)][:5]
        assert seqs == sorted(seqs, reverse=order == "newest_first")  # the backlog in config order
    finally:
        hub.close()


async def test_an_alarm_cuts_a_long_reconnect_backoff_short(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto], mock_factory: MockFactory
) -> None:
    broker = mosquitto_factory()
    hub = HubAcker(broker.host, broker.port)  # reconnects (and resubscribes) by itself
    try:
        wide = {"host": broker.host, "port": broker.port, "reconnect_min_s": 40.0, "reconnect_max_s": 60.0}
        s = settings_for(tmp_path, broker, mqtt=wide)
        agent = make_agent(s, mock_factory)
        async with running(agent):
            broker.stop()
            await until(lambda: not agent.link_up.is_set(), what="link down")
            broker.start()  # the agent sleeps its backoff (40 s or more) ...
            assert not agent.link_up.is_set()
            mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
            # ... until the alarm: then it retries within ~2 s (the deadline only tells 2 from 40)
            await until(agent.link_up.is_set, within=20, what="reconnect for the alarm")
            [ev] = await hub.wait_for(s.gateway_id, Channel.EVENT, within=20)
            assert ev.kind is EventKind.SMOKE
    finally:
        hub.close()
