"""Downlink: malformed messages are logged and counted and never stop the agent; retained
Config is applied and persisted; every command gets a CommandResult."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from edge.settings import DeviceEntry
from protocols import Channel, Command, CommandResult, Config, new_event_id
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, running, settings_for


def cmd(gw: str, name: str, **kw: object) -> Command:
    return Command(gw=gw, id=new_event_id(), name=name, ts=int(time.time() * 1000), **kw)  # type: ignore[arg-type]


async def result_for(hub: HubAcker, gw: str, c: Command) -> CommandResult:
    [r] = await hub.wait_for(gw, Channel.RESULT, lambda m: m.command_id == c.id)
    return r  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("channel", "payload", "reason"),
    [
        (Channel.COMMAND, b"{not json", "bad_json"),
        (Channel.COMMAND, b'{"gw": "GW", "id": 5, "name": "selftest", "ts": 1}', "bad_field"),
        (Channel.CONFIG, b'{"gw": "GW", "revision": "7", "ts": 1}', "bad_field"),
        (Channel.ACK, b"[1, 2, 3]", "not_an_object"),
        (Channel.ACK, b'{"gw": "GW", "ts": 1, "items": [{"id": "x", "status": "stored"}]}', "bad_field"),
        (
            Channel.COMMAND,
            b'{"gw": "someone-else", "id": "ID", "name": "selftest", "ts": 1}',
            "gateway_mismatch",
        ),
        (Channel.CONFIG, b'{"pad": "' + b"x" * 70_000 + b'"}', "too_large"),
        (Channel.COMMAND, b"", "bad_json"),
    ],
)
async def test_malformed_downlink_is_logged_counted_and_the_agent_keeps_running(
    tmp_path: Path,
    mosquitto: Mosquitto,
    acker: HubAcker,
    mock_factory: MockFactory,
    caplog: pytest.LogCaptureFixture,
    channel: Channel,
    payload: bytes,
    reason: str,
) -> None:
    s = settings_for(tmp_path, mosquitto)
    gw = s.gateway_id
    agent = make_agent(s, mock_factory)
    async with running(agent):
        bad = payload.replace(b'"GW"', f'"{gw}"'.encode()).replace(b'"ID"', f'"{new_event_id()}"'.encode())
        with caplog.at_level(logging.ERROR, logger="edge"):
            acker.publish(gw, channel, bad)
            await until(lambda: agent.rejects.total == 1, what="the reject to be counted")
        assert agent.rejects.by_reason == {reason: 1}
        assert any(reason in r.getMessage() and channel.value in r.getMessage() for r in caplog.records)
        # still alive: a good command right after is answered, an alarm still goes out
        c = cmd(gw, "report_status")
        acker.publish(gw, Channel.COMMAND, c)
        assert (await result_for(acker, gw, c)).ok
        mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
        await acker.wait_for(gw, Channel.EVENT)


async def test_unknown_command_is_answered_not_ok(
    tmp_path: Path, mosquitto: Mosquitto, acker: HubAcker, mock_factory: MockFactory
) -> None:
    s = settings_for(tmp_path, mosquitto)
    agent = make_agent(s, mock_factory)
    async with running(agent):
        c = cmd(s.gateway_id, "format_disk")
        acker.publish(s.gateway_id, Channel.COMMAND, c)
        r = await result_for(acker, s.gateway_id, c)
        assert (r.ok, r.command) == (False, "format_disk")
        assert "unknown_command" in r.detail
        assert agent.rejects.by_reason == {"unknown_command": 1}


async def test_commands_selftest_silence_report_reload_and_expired(
    tmp_path: Path, mosquitto: Mosquitto, acker: HubAcker, mock_factory: MockFactory
) -> None:
    s = settings_for(tmp_path, mosquitto, heartbeat_s=30)
    gw = s.gateway_id
    agent = make_agent(s, mock_factory, settings_loader=lambda: s.model_copy(update={"heartbeat_s": 45}))
    async with running(agent):
        c = cmd(gw, "selftest")
        acker.publish(gw, Channel.COMMAND, c)
        r = await result_for(acker, gw, c)
        assert r.ok and r.data["store"] is True and r.data["sensors"] == 3 and r.data["buzzer"] is True

        mock_factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
        await acker.wait_for(gw, Channel.EVENT)
        loop_time = __import__("asyncio").get_running_loop().time
        assert agent.siren.pattern(loop_time(), True).value == "alarm"
        c = cmd(gw, "silence_siren")
        acker.publish(gw, Channel.COMMAND, c)
        assert (await result_for(acker, gw, c)).ok
        assert agent.siren.pattern(loop_time(), True).value == "off"

        c = cmd(gw, "report_status")
        acker.publish(gw, Channel.COMMAND, c)
        r = await result_for(acker, gw, c)
        assert r.ok and r.data["link"] == "up"
        await acker.wait_for(gw, Channel.STATUS, lambda m: m.reason == "report")

        c = cmd(gw, "reload_config")
        acker.publish(gw, Channel.COMMAND, c)
        assert (await result_for(acker, gw, c)).ok
        assert agent.heartbeat_s == 45

        c = cmd(gw, "selftest", expires=1_000)
        acker.publish(gw, Channel.COMMAND, c)
        r = await result_for(acker, gw, c)
        assert not r.ok and "expired" in r.detail


async def test_reload_refuses_a_clashing_wiring_while_the_old_one_runs(
    tmp_path: Path, mosquitto: Mosquitto, acker: HubAcker, mock_factory: MockFactory
) -> None:
    """Else the agent would answer "restart to apply" and then not start at all."""
    s = settings_for(tmp_path, mosquitto, heartbeat_s=30)
    ups = DeviceEntry(id="power-1", model="power-supervisor", params={"mains_pin": 26})  # ADC ch 1: free
    clash = DeviceEntry(id="gas-2", model="gas-detector", params={"contact_pin": 12, "level_channel": 1})
    new = s.model_copy(update={"heartbeat_s": 45, "sensors": [*s.sensors, ups, clash]})
    agent = make_agent(s, mock_factory, settings_loader=lambda: new)
    async with running(agent):
        c = cmd(s.gateway_id, "reload_config")
        acker.publish(s.gateway_id, Channel.COMMAND, c)
        r = await result_for(acker, s.gateway_id, c)
    assert not r.ok and r.detail.startswith("not reloaded: ADC clash: sensor 'power-1'")
    assert "sensor 'gas-2' (gas-detector, level) are both wired to channel 1 of the MCP3008" in r.detail
    assert agent.heartbeat_s == 30 and agent.s is s  # nothing of the refused file was applied


async def test_retained_config_is_applied_and_persisted(
    tmp_path: Path, mosquitto: Mosquitto, acker: HubAcker, mock_factory: MockFactory
) -> None:
    s = settings_for(tmp_path, mosquitto)
    gw = s.gateway_id
    cfg = Config(
        gw=gw,
        revision=7,
        ts=int(time.time() * 1000),
        heartbeat_s=20,
        telemetry_s=120,
        backlog_order="newest_first",
        siren_timeout_s=90,
    )
    acker.publish(gw, Channel.CONFIG, cfg, retain=True)
    try:
        agent = make_agent(s, mock_factory)
        async with running(agent):
            await until(lambda: agent.config_revision == 7, what="config applied")
            assert (agent.heartbeat_s, agent.telemetry_s, agent.outbox.newest_first) == (20, 120, True)
            assert agent.siren.timeout_s == 90
            older = cfg.model_copy(update={"revision": 6, "heartbeat_s": 99})
            acker.publish(gw, Channel.CONFIG, older)
            c = cmd(gw, "report_status")  # a round trip, so the older config has been handled
            acker.publish(gw, Channel.COMMAND, c)
            await result_for(acker, gw, c)
            assert agent.heartbeat_s == 20
    finally:
        acker.publish(gw, Channel.CONFIG, b"", retain=True)  # clear the retained config
    again = make_agent(s, mock_factory)  # no broker needed: the config was persisted
    try:
        assert (again.config_revision, again.heartbeat_s, again.outbox.newest_first) == (7, 20, True)
    finally:
        again.close()


async def test_config_is_answered_in_status_refused_whole_then_applied(
    tmp_path: Path, mosquitto: Mosquitto, acker: HubAcker, mock_factory: MockFactory
) -> None:
    """An invalid config (revision readable) and one naming a sensor not wired here are refused
    whole, reported in a status at once; a later good revision applies and clears the refusal."""
    from protocols import SensorConfig, Status

    s = settings_for(tmp_path, mosquitto)
    gw = s.gateway_id

    def refusal_in_status(revision: int) -> bool:
        return any(isinstance(m, Status) and m.config_error is not None and m.config_error.revision == revision
                   for m in acker.messages(gw, Channel.STATUS))

    agent = make_agent(s, mock_factory)
    async with running(agent):
        before = (agent.config_revision, agent.heartbeat_s)
        acker.publish(gw, Channel.CONFIG, b'{"v": "1.1", "gw": "%s", "revision": 8, "ts": 1, "heartbeat_s": 1}'
                      % gw.encode())
        await until(lambda: refusal_in_status(8), what="invalid config 8 refused in a status")
        assert agent.config_error is not None and agent.config_error.reason == "invalid"
        assert "heartbeat_s" in agent.config_error.detail
        unknown = Config(gw=gw, revision=9, ts=1, heartbeat_s=20,
                         sensors=[SensorConfig(id="nowhere-1", model="smoke-dry-contact")])
        acker.publish(gw, Channel.CONFIG, unknown)
        await until(lambda: refusal_in_status(9), what="config 9 refused in a status")
        assert agent.config_error is not None and agent.config_error.reason == "unknown_sensor"
        assert (agent.config_revision, agent.heartbeat_s) == before  # nothing of it applied
        acker.publish(gw, Channel.CONFIG, Config(gw=gw, revision=10, ts=1, heartbeat_s=20))
        await until(lambda: any(isinstance(m, Status) and m.config_revision == 10 and m.config_error is None
                                     for m in acker.messages(gw, Channel.STATUS)), what="config 10 applied")
        assert agent.heartbeat_s == 20 and agent.config_error is None
        assert agent.rejects.by_reason["config_unknown_sensor"] == 1
