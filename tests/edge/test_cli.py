"""`safehome edge status` and `safehome edge selftest` (click's runner, real settings files)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from gpiozero.pins.mock import MockFactory

from edge.cli import edge
from edge.health import read_state
from edge.settings import load_settings
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from safehome.testing.toml import write_toml
from tests.edge.conftest import SENSORS, agent_config, make_agent, new_gateway_id, running


def test_selftest_passes_on_mock_pins(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    config = agent_config(tmp_path, mosquitto, "gw-cli-selftest")
    r = CliRunner().invoke(edge, ["selftest", "--config", str(config)])
    assert r.exit_code == 0, r.output
    assert "selftest passed" in r.output
    assert "sensors_ok     True" in r.output


def test_status_without_a_running_agent(tmp_path: Path, mosquitto: Mosquitto) -> None:
    config = agent_config(tmp_path, mosquitto, "gw-cli-status")
    r = CliRunner().invoke(edge, ["status", "--config", str(config)])
    assert r.exit_code == 3
    assert "not running" in r.output


async def test_status_of_a_running_agent(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    config = agent_config(tmp_path, mosquitto, new_gateway_id())
    s = load_settings(config)
    agent = make_agent(s, mock_factory)
    async with running(agent):
        await until(lambda: (read_state(s.state_path) or {}).get("link") == "up", what="status file")
        r = CliRunner().invoke(edge, ["status", "--config", str(config)])
        assert r.exit_code == 0, r.output
        assert "link         up" in r.output and "last ack     never" in r.output
        r = CliRunner().invoke(edge, ["status", "--config", str(config), "--json"])
        assert json.loads(r.output)["agent"]["gateway_id"] == s.gateway_id


def test_bad_config_is_a_clear_cli_error(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('gateway_id = "X"')
    r = CliRunner().invoke(edge, ["status", "--config", str(tmp_path / "bad.toml")])
    assert r.exit_code == 1 and "invalid edge settings" in r.output


def test_hardware_pin_factory_off_a_pi_is_a_clear_error(tmp_path: Path, mosquitto: Mosquitto) -> None:
    config = agent_config(tmp_path, mosquitto, "gw-cli-rpigpio")
    config.write_text(config.read_text().replace('pin_factory = "mock"', 'pin_factory = "rpigpio"'))
    r = CliRunner().invoke(edge, ["selftest", "--config", str(config)])
    assert r.exit_code == 1, r.output
    assert "pin factory 'rpigpio' is not usable here" in r.output


async def test_an_unwritable_status_file_does_not_stop_the_agent(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    from tests.edge.conftest import settings_for

    (tmp_path / "not-a-dir").write_text("a file where the state dir should be")
    s = settings_for(tmp_path, mosquitto, state_dir=tmp_path / "not-a-dir")
    agent = make_agent(s, mock_factory)
    async with running(agent):
        await until(lambda: agent.last_poll > 0 and agent.healthy(), what="running")
        agent.record_telemetry()
        await until(lambda: agent.outbox.sent >= 1, what="still sending")


def test_an_adc_channel_clash_is_refused_naming_both_sensors(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    """Refused before any pin is opened: the agent starts once the installer fixes the wiring."""
    ups = {"id": "power-1", "model": "power-supervisor", "params": {"mains_pin": 26, "battery_channel": 0}}
    top = {"gateway_id": new_gateway_id(), "environment": "development", "pin_factory": "mock",
           "data_dir": str(tmp_path / "data"), "state_dir": str(tmp_path / "run")}  # fmt: skip
    mqtt = {"host": mosquitto.host, "port": mosquitto.port}
    config = write_toml(tmp_path / "clash.toml", top, mqtt, {"sensors": [*SENSORS, ups]})
    r = CliRunner().invoke(edge, ["selftest", "--config", str(config)])
    assert r.exit_code == 1, r.output
    assert (
        "ADC clash: sensor 'gas-1' (gas-detector, level) and sensor 'power-1' (power-supervisor, battery) "
        "are both wired to channel 0 of the MCP3008 (SPI0 CE0)"
    ) in r.output
    ups["params"]["battery_channel"] = 1  # type: ignore[index]
    config = write_toml(tmp_path / "fixed.toml", top, mqtt, {"sensors": [*SENSORS, ups]})
    r = CliRunner().invoke(edge, ["selftest", "--config", str(config)])
    assert r.exit_code == 0 and "selftest passed" in r.output, r.output
