"""Siren / help-on-the-way patterns (pure policy) and the panic cancel path end to end."""

from __future__ import annotations

from pathlib import Path

from gpiozero.pins.mock import MockFactory

from edge.siren import Pattern, SirenPolicy, led_on
from edge.store import LANE_EVENT
from protocols import AckStatus, Channel, EventKind, EventState
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, running, settings_for


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


def test_a_later_event_of_the_same_alarm_is_handled_with_it() -> None:
    p = SirenPolicy()
    p.alarm("e1", "smoke-1", now=0)
    p.alarm("e2", "smoke-1", now=5)  # the hub folds e2 into the alarm raised by e1
    p.alarm("e3", "gas-1", now=6)
    assert p.hub_status("e1", AckStatus.ACKNOWLEDGED, now=7) is True
    assert set(p.unhandled) == {"e3"}


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
        await until(lambda: buzzer.state, what="the buzzer to sound")
        button.drive_high()
        await until(lambda: not agent.sensor("panic-1").input_states()["button"], what="release")

        acker.ack(gw, alarm.id, AckStatus.DISPATCHED, by="ws-0001")
        await until(lambda: voice.said == ["help_on_the_way"], what="voice prompt")
        loop_time = __import__("asyncio").get_running_loop().time
        assert agent.siren.pattern(loop_time(), True) is Pattern.HELP

        # a later long press cancels: a restore is sent; the alarm itself is never deleted
        button.drive_low()
        [restore] = await acker.wait_for(
            gw, Channel.EVENT, lambda m: m.state is EventState.RESTORE, within=15
        )
        button.drive_high()
        assert restore.kind is EventKind.PANIC and restore.seq > alarm.seq
        assert len(acker.messages(gw, Channel.EVENT)) >= 2


def test_restore_is_in_the_event_lane() -> None:
    from edge.policy import lane_for_event

    assert lane_for_event(EventKind.PANIC, EventState.RESTORE) == LANE_EVENT


async def test_an_unacked_alarm_sounds_again_after_a_restart(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    s = settings_for(tmp_path, mosquitto, mqtt={"host": "127.0.0.1", "port": 9, "reconnect_min_s": 0.1})
    first = make_agent(s, mock_factory)
    async with running(first, wait_link=False):
        mock_factory.pin(first.sensor("gas-1").pins["contact"]).drive_low()
        await until(lambda: first.outbox.alarms_pending() == 1, what="alarm recorded")
    mock_factory.reset()
    second = make_agent(s, mock_factory)
    async with running(second, wait_link=False):
        loop_time = __import__("asyncio").get_running_loop().time
        await until(lambda: bool(second.siren.unhandled), what="siren resumed")
        assert second.siren.pattern(loop_time(), link_up=False) is Pattern.ALARM
        assert [sensor for sensor, _t in second.siren.unhandled.values()] == ["gas-1"]


def test_a_failing_buffer_chirps_below_alarms_until_silenced_or_recovered() -> None:
    p = SirenPolicy()
    p.set_trouble(True)
    assert p.pattern(0, True) is Pattern.TROUBLE
    p.alarm("e1", "smoke-1", 0)
    assert p.pattern(1, True) is Pattern.ALARM  # an alarm always wins
    p.silence()
    assert p.pattern(2, True) is Pattern.OFF  # the center silenced both
    p.set_trouble(True)
    assert p.pattern(3, True) is Pattern.OFF  # the same failure stays silenced …
    p.set_trouble(False)
    p.set_trouble(True)
    assert p.pattern(4, True) is Pattern.TROUBLE  # … a new one sounds again
    assert [led_on(t, True, trouble=True) for t in (0.05, 0.15, 0.25, 0.35)] == [True, False, True, False]
    assert led_on(0.7, True, trouble=False) and not led_on(0.7, False, trouble=False)
