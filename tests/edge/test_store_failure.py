"""A failing store (real SQLite error: the database refuses writes) never loses an event."""

from __future__ import annotations

from pathlib import Path

from gpiozero.pins.mock import MockFactory

from protocols import Channel, EventKind
from tests.edge.conftest import make_agent, running, settings_for, wait_until
from tests.edge.hub_acker import HubAcker
from tests.support.mosquitto import Mosquitto


async def test_event_is_kept_in_ram_and_delivered_when_the_store_refuses_writes(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    hub = HubAcker(mosquitto.host, mosquitto.port, auto_ack=False)
    try:
        s = settings_for(tmp_path, mosquitto)
        agent = make_agent(s, mock_factory)
        async with running(agent):
            agent.store.next_seq()  # (reserve a seq block while writes still work)
            agent.store._db.execute("PRAGMA query_only=1")  # every write now fails in SQLite
            mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
            [ev] = await hub.wait_for(s.gateway_id, Channel.EVENT)
            assert ev.kind is EventKind.SMOKE
            assert ev.id in agent.outbox.volatile and not agent.store.healthy
            agent.outbox.flush()  # still failing: stays in RAM
            assert ev.id in agent.outbox.volatile
            agent.store._db.execute("PRAGMA query_only=0")  # the disk recovers
            agent.outbox.flush()
            assert agent.store.contains(ev.id) and not agent.outbox.volatile
            hub.ack(s.gateway_id, ev.id)
            await wait_until(lambda: agent.outbox.depth() == 0, what="ack")
    finally:
        hub.close()
