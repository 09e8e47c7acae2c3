"""Siren / help-on-the-way patterns (pure policy) and the panic cancel path end to end."""

from __future__ import annotations

from pathlib import Path

from gpiozero.pins.mock import MockFactory

from edge.siren import Pattern, SirenPolicy
from edge.store import LANE_EVENT
from protocols import AckStatus, Channel, EventKind, EventState
from tests.edge.conftest import make_agent, running, settings_for, wait_until
from tests.edge.hub_acker import HubAcker
from tests.support.mosquitto import Mosquitto


def test_alarm_sounds_until_a_person_acknowledges_then_help_pattern() -> None:
    p = SirenPolicy(timeout_s=600, help_s=60)
    assert p.pattern(0, link_up=True) is Pattern.OFF
    p.alarm("e1", "smoke-1", now=0)
    assert p.pattern(1, link_up=True) is Pattern.ALARM
    assert p.hub_status("e1", AckStatus.STORED, now=2) is False  # stored is not a person
    assert p.pattern(3, link_up=True) is Pattern.ALARM
    assert p.hub_status("e1", AckStatus.DISPATCHED, now=10) is True  # voice prompt once
    assert p.pattern(11, link_up=True) is Pattern.HELP
    assert p.hub_status("e1", AckStatus.ACKNOWLEDGED, now=12) is False  # already announced
    assert p.pattern(100, link_up=True) is Pattern.OFF


def test_timeout_never_applies_while_the_uplink_is_down() -> None:
    p = SirenPolicy(timeout_s=60)
    p.alarm("e1", "gas-1", now=0)
    assert p.pattern(61, link_up=True) is Pattern.OFF
    assert p.pattern(61, link_up=False) is Pattern.ALARM
    assert SirenPolicy(timeout_s=0).pattern(0, True) is Pattern.OFF


def test_cancel_silence_and_disabled() -> None:
    p = SirenPolicy()
    p.alarm("e1", "panic-1", now=0)
    p.alarm("e2", "smoke-1", now=0)
    p.cancel_sensor("panic-1")
    assert p.pattern(1, True) is Pattern.ALARM  # smoke still unhandled
    p.silence()
    assert p.pattern(1, True) is Pattern.OFF
    p.alarm("e3", "smoke-1", now=2)
    p.enabled = False
    assert p.pattern(3, False) is Pattern.OFF
    assert p.hub_status("unknown", AckStatus.DISPATCHED, 4) is False  # not ours: no prompt


class Voice:
    def __init__(self) -> None:
        self.said: list[str] = []

    async def say(self, prompt: str) -> None:
        self.said.append(prompt)


async def test_panic_buzzer_help_on_the_way_and_long_press_cancel(
    tmp_path: Path, mosquitto: Mosquitto, acker: HubAcker, mock_factory: MockFactory
) -> None:
    s = settings_for(tmp_path, mosquitto)
    gw = s.gateway_id
    voice = Voice()
    agent = make_agent(s, mock_factory, voice=voice)
    buzzer = mock_factory.pin(agent.outputs["siren"].pin)
    async with running(agent):
        button = mock_factory.pin(agent.sensor("panic-1").pins["button"])
        button.drive_low()
        [alarm] = await acker.wait_for(gw, Channel.EVENT)
        assert (alarm.kind, alarm.state) == (EventKind.PANIC, EventState.ALARM)
        await wait_until(lambda: buzzer.state, what="the buzzer to sound")
        button.drive_high()
        await wait_until(lambda: not agent.sensor("panic-1").input_states()["button"], what="release")

        acker.ack(gw, alarm.id, AckStatus.DISPATCHED, by="ws-0001")
        await wait_until(lambda: voice.said == ["help_on_the_way"], what="voice prompt")
        loop_time = __import__("asyncio").get_running_loop().time
        assert agent.siren.pattern(loop_time(), True) is Pattern.HELP

        # a later long press cancels: a restore is sent; the alarm itself is never deleted
        button.drive_low()
        [restore] = await acker.wait_for(gw, Channel.EVENT, lambda m: m.state is EventState.RESTORE, within=15)
        button.drive_high()
        assert restore.kind is EventKind.PANIC and restore.seq > alarm.seq
        assert len(acker.messages(gw, Channel.EVENT)) >= 2


def test_restore_is_in_the_event_lane() -> None:
    from edge.policy import lane_for_event

    assert lane_for_event(EventKind.PANIC, EventState.RESTORE) == LANE_EVENT
