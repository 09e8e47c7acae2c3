"""Telemetry stays in RAM while the hub acks it promptly; unacked telemetry reaches the disk at flush."""

from __future__ import annotations

from pathlib import Path

from gpiozero.pins.mock import MockFactory

from edge.store import LANE_TELEMETRY
from protocols import Channel
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, running, settings_for


async def test_acked_telemetry_never_touches_the_disk(
    tmp_path: Path, mosquitto: Mosquitto, acker: HubAcker, mock_factory: MockFactory
) -> None:
    s = settings_for(tmp_path, mosquitto, telemetry_flush_s=30)
    agent = make_agent(s, mock_factory)
    async with running(agent):
        agent.analog["gas-1"].set_fraction(0.07)
        agent.record_telemetry()  # (reserves the first seq block: one commit)
        await until(lambda: not agent.outbox.memory, what="first ack")
        commits = agent.store.commits
        for _ in range(20):
            agent.record_telemetry()
        msgs = await acker.wait_for(s.gateway_id, Channel.TELEMETRY, count=21)
        await until(lambda: agent.outbox.depth() == 0, what="acks")
        assert agent.store.commits == commits  # nothing written for 20 acked batches
        readings = {(r.sensor, r.metric): r.value for r in msgs[-1].readings}
        assert readings[("gas-1", "gas_lel")] == 7.0
        assert readings[("smoke-1", "smoke_contact")] == 0.0


async def test_unacked_telemetry_is_flushed_to_disk(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    hub = HubAcker(mosquitto.host, mosquitto.port, auto_ack=False)
    try:
        s = settings_for(tmp_path, mosquitto, telemetry_flush_s=0.05)
        agent = make_agent(s, mock_factory)
        async with running(agent):
            for _ in range(3):
                agent.record_telemetry()
            await hub.wait_for(s.gateway_id, Channel.TELEMETRY, count=3)
            await until(lambda: agent.store.depth().get(LANE_TELEMETRY) == 3, what="flush")
            assert not agent.outbox.memory
    finally:
        hub.close()
