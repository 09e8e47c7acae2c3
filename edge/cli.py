"""`safehome edge` commands: run the agent, show its status, run a local self-test."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import click

from devices.errors import DeviceError
from edge.errors import EdgeError
from edge.settings import EdgeSettings, load_settings
from protocols.logs import configure_logging

CONFIG_HELP = "Settings file (TOML); SAFEHOME_EDGE_* environment variables override it."
DEFAULT_CONFIG = Path("/etc/safehome/edge.toml")


def _settings(config: Path | None) -> EdgeSettings:
    path = config if config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    try:
        return load_settings(path)
    except EdgeError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(name="edge")
def edge() -> None:
    """Run the gateway agent on a Raspberry Pi, show its status, run a self-test."""


@edge.command()
@click.option("--config", "config", type=click.Path(path_type=Path), help=CONFIG_HELP)
@click.option("--log-level", default="INFO", show_default=True)
def run(config: Path | None, log_level: str) -> None:
    """Run the agent until SIGTERM / SIGINT (systemd: Type=notify, WatchdogSec)."""
    configure_logging(log_level)
    settings = _settings(config)

    def loader() -> EdgeSettings:
        return load_settings(config) if config is not None else settings

    async def main() -> None:
        from edge.agent import Agent

        agent = Agent(settings, settings_loader=loader)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, agent.stop)
        await agent.run()

    try:
        asyncio.run(main())
    except (EdgeError, DeviceError) as exc:
        raise click.ClickException(str(exc)) from exc


@edge.command()
@click.option("--config", "config", type=click.Path(path_type=Path), help=CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def status(config: Path | None, as_json: bool) -> None:
    """Buffer depth, link state and last ack of the running agent."""
    from edge.health import read_state
    from edge.store import read_depth

    s = _settings(config)
    live = read_state(s.state_path)
    try:
        depth = read_depth(s.db_path) if s.db_path.exists() else {}
    except EdgeError as exc:
        raise click.ClickException(str(exc)) from exc
    out = {"gateway_id": s.gateway_id, "buffer_on_disk": depth, "agent": live}
    if as_json:
        click.echo(json.dumps(out, indent=1, sort_keys=True))
        return
    click.echo(f"gateway      {s.gateway_id}")
    click.echo(
        f"on disk      {sum(depth.values())} " + ", ".join(f"{k}: {v}" for k, v in sorted(depth.items()))
    )
    if live is None:
        click.echo(f"agent        not running (no {s.state_path})")
        raise SystemExit(3)
    age = time.time() - (live.get("updated_ms") or 0) / 1000
    click.echo(f"agent        {'stale ' if age > 30 else ''}status from {age:.0f} s ago")
    broker = live.get("broker")
    click.echo(f"link         {live.get('link')}" + (f" to {broker}" if broker else ""))
    click.echo(
        f"buffer       {live.get('buffer_depth')} (alarms {live.get('alarms_pending')}), "
        f"oldest unacked {live.get('oldest_unacked_s')} s"
    )
    last = live.get("last_ack_ms")
    click.echo(f"last ack     {'never' if not last else f'{time.time() - last / 1000:.0f} s ago'}")
    click.echo(f"siren        {live.get('siren')}; rejects {live.get('rejects')}")


@edge.command()
@click.option("--config", "config", type=click.Path(path_type=Path), help=CONFIG_HELP)
def selftest(config: Path | None) -> None:
    """Open the buffer and every configured pin, check the clock; exit 1 on failure.

    Run it with the agent stopped (it needs the pins)."""
    from edge.agent import Agent
    from edge.commands import selftest as run_selftest

    s = _settings(config)

    async def main() -> dict[str, object]:
        agent = Agent(s)
        try:
            result: dict[str, object] = dict(run_selftest(agent))
            buzzer = agent.outputs.get("siren")
            if buzzer is not None:
                await asyncio.sleep(0.2)
                buzzer.set(False)
            return result
        finally:
            agent.close()

    try:
        result = asyncio.run(main())
    except (EdgeError, DeviceError) as exc:
        raise click.ClickException(str(exc)) from exc
    for k, v in result.items():
        click.echo(f"{k:14} {v}")
    ok = bool(result["store"]) and bool(result["sensors_ok"])
    click.echo("selftest " + ("passed" if ok else "FAILED"))
    if not ok:
        raise SystemExit(1)
