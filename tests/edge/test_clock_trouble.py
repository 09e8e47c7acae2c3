"""An unsynchronised clock becomes a gateway-level clock_unsynced trouble, then its restore."""

from __future__ import annotations

from pathlib import Path

from gpiozero.pins.mock import MockFactory

from edge.agent import Agent
from edge.clock import Clock, FixedProbe
from protocols import Channel, EventKind, EventState
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from tests.edge.conftest import running, settings_for


async def test_clock_unsynced_trouble_and_restore(
    tmp_path: Path, mosquitto: Mosquitto, acker: HubAcker, mock_factory: MockFactory
) -> None:
    probe = FixedProbe(False)
    s = settings_for(tmp_path, mosquitto, clock_grace_s=0.2)
    agent = Agent(s, factory=mock_factory, clock=Clock(probe, cache_s=0))
    async with running(agent):
        [trouble] = await acker.wait_for(s.gateway_id, Channel.EVENT)
        assert (trouble.kind, trouble.state, trouble.sensor, trouble.synced) == (
            EventKind.CLOCK_UNSYNCED,
            EventState.ALARM,
            None,
            False,
        )
        probe.value = True
        [restore] = await acker.wait_for(s.gateway_id, Channel.EVENT, lambda m: m.state is EventState.RESTORE)
        assert restore.kind is EventKind.CLOCK_UNSYNCED and restore.synced
