"""`safehome edge status` and `safehome edge selftest` (click's runner, real settings files)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from gpiozero.pins.mock import MockFactory

from edge.cli import edge
from edge.health import read_state
from edge.settings import load_settings
from tests.edge.conftest import make_agent, new_gateway_id, running, wait_until
from tests.edge.test_kill9 import agent_config
from tests.support.mosquitto import Mosquitto


def test_selftest_passes_on_mock_pins(tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory) -> None:
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


async def test_status_of_a_running_agent(tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory) -> None:
    config = agent_config(tmp_path, mosquitto, new_gateway_id())
    s = load_settings(config)
    agent = make_agent(s, mock_factory)
    async with running(agent):
        await wait_until(lambda: (read_state(s.state_path) or {}).get("link") == "up", what="status file")
        r = CliRunner().invoke(edge, ["status", "--config", str(config)])
        assert r.exit_code == 0, r.output
        assert "link         up" in r.output and "last ack     never" in r.output
        r = CliRunner().invoke(edge, ["status", "--config", str(config), "--json"])
        assert json.loads(r.output)["agent"]["gateway_id"] == s.gateway_id


def test_bad_config_is_a_clear_cli_error(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('gateway_id = "X"')
    r = CliRunner().invoke(edge, ["status", "--config", str(tmp_path / "bad.toml")])
    assert r.exit_code == 1 and "invalid edge settings" in r.output
