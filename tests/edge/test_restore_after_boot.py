"""A condition raised before a restart and gone when the gateway comes back (a power cut
that emptied the UPS: the inputs start clear) is restored once the inputs have settled;
one still on is not; a panic press (momentary) is never "restored"."""

from __future__ import annotations

from pathlib import Path

from gpiozero.pins.mock import MockFactory, MockPin

from edge.agent import LATCHED, Agent
from protocols import Channel, EventKind, EventState
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, running, settings_for


def smoke_pin(mock_factory: MockFactory, agent: Agent) -> MockPin:
    pin: MockPin = mock_factory.pin(agent.sensor("smoke-1").pins["contact"])
    return pin


def smoke_events(acker: HubAcker, gw: str) -> dict[str, EventState]:
    """Smoke events by id (a resend is the same event)."""
    return {m.id: m.state for m in acker.messages(gw, Channel.EVENT) if m.kind is EventKind.SMOKE}


async def test_a_condition_that_ended_while_the_gateway_was_down_is_restored(
    tmp_path: Path, mosquitto: Mosquitto, acker: HubAcker, mock_factory: MockFactory
) -> None:
    s = settings_for(tmp_path, mosquitto, restore_after_boot_s=0.3)
    first = make_agent(s, mock_factory)
    async with running(first):
        smoke_pin(mock_factory, first).drive_low()
        mock_factory.pin(first.sensor("panic-1").pins["button"]).drive_low()  # momentary
        await acker.wait_for(s.gateway_id, Channel.EVENT, lambda m: m.kind is EventKind.PANIC)
        await acker.wait_for(s.gateway_id, Channel.EVENT, lambda m: m.kind is EventKind.SMOKE)
        assert first.store.get_meta(LATCHED) == [["smoke-1", "smoke"]]
    # the gateway is dark; meanwhile the smoke cleared and the button was let go
    mock_factory.reset()
    second = make_agent(s, mock_factory)
    assert second.latched == {("smoke-1", "smoke")}
    async with running(second):
        [restore] = await acker.wait_for(
            s.gateway_id, Channel.EVENT, lambda m: m.kind is EventKind.SMOKE and m.state is EventState.RESTORE
        )
        assert restore.sensor == "smoke-1"
        await until(lambda: second.latched == set(), what="nothing latched any more")
        assert second.store.get_meta(LATCHED) == []
    panic = {m.id: m.state for m in acker.messages(s.gateway_id, Channel.EVENT) if m.kind is EventKind.PANIC}
    assert list(panic.values()) == [EventState.ALARM]


async def test_a_condition_still_on_after_the_restart_is_not_restored(
    tmp_path: Path, mosquitto: Mosquitto, acker: HubAcker, mock_factory: MockFactory
) -> None:
    s = settings_for(tmp_path, mosquitto, restore_after_boot_s=1.0)  # > the contact's 200 ms debounce
    first = make_agent(s, mock_factory)
    async with running(first):
        smoke_pin(mock_factory, first).drive_low()
        await acker.wait_for(s.gateway_id, Channel.EVENT, lambda m: m.kind is EventKind.SMOKE)
    second = make_agent(s, mock_factory)
    smoke_pin(mock_factory, second).drive_low()  # smoke is still there
    async with running(second):
        await until(lambda: len(smoke_events(acker, s.gateway_id)) == 2, what="smoke raised again")
        await until(lambda: second._after_boot is None, what="the after-boot check ran")
        assert second.latched == {("smoke-1", "smoke")}
    # raised again (a repeat at the hub), never restored
    assert list(smoke_events(acker, s.gateway_id).values()) == [EventState.ALARM, EventState.ALARM]
