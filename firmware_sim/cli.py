"""`safehome sim` commands: registry, fleet, scenario, home."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from protocols.logs import configure_logging

F = TypeVar("F", bound=Callable[..., Any])


@click.group(name="sim")
def sim() -> None:
    """Simulated homes, fleets and scenarios."""


@sim.command(name="registry")
@click.option("--homes", type=click.IntRange(1, 1_000_000), default=300, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same district.")
@click.option("--district", default="pudong", show_default=True, help="District id.")
def registry_cmd(homes: int, seed: int, district: str) -> None:
    """Write a synthetic district registry (YAML) to stdout, for `safehome hub import`."""
    from firmware_sim.registry import generate, registry_to_yaml

    sys.stdout.write(registry_to_yaml(generate(homes, seed, district)))


def _run_or_fail(coro: Any) -> None:
    """Run the fleet; simulator errors become a one-line CLI error, not a traceback."""
    import asyncio

    from firmware_sim.errors import SimError

    try:
        asyncio.run(coro)
    except SimError as exc:
        raise click.ClickException(str(exc)) from exc


SERVER_OPTION = click.option(
    "--server",
    "servers",
    multiple=True,
    metavar="HOST[:PORT]",
    help="A node of a clustered broker (repeat for each; replaces --host, --port is the default port). "
    "Each gateway fails over between them like the edge agent.",
)


def _fleet_options(f: F) -> F:
    opts = [
        click.option(
            "--registry",
            "registry_path",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Registry YAML (default: a generated district of --homes homes).",
        ),
        click.option("--homes", type=click.IntRange(1), default=None, help="Simulate the first N gateways."),
        click.option("--seed", type=int, default=1, show_default=True),
        click.option("--host", default="127.0.0.1", show_default=True),
        click.option("--port", type=int, default=1883, show_default=True),
        SERVER_OPTION,
        click.option(
            "--heartbeat", type=float, default=30.0, show_default=True, help="Seconds between heartbeats."
        ),
        click.option(
            "--telemetry",
            type=float,
            default=60.0,
            show_default=True,
            help="Seconds between telemetry batches.",
        ),
        click.option(
            "--resend",
            type=float,
            default=10.0,
            show_default=True,
            help="First resend delay (doubles to 120 s).",
        ),
        click.option(
            "--state",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="SQLite file for sequences and unacked messages (survives restarts).",
        ),
        click.option(
            "--password-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="gateway-id:password lines.",
        ),
        click.option("--password-template", default=None, help="e.g. 'demo-{gw}' (demo/bench brokers only)."),
        click.option(
            "--downlink-qos",
            type=click.IntRange(0, 1),
            default=None,
            help="QoS of each gateway's downlink subscription: 0 on a NATS cluster (docs/broker.md "
            "section 6) [default: SAFEHOME_SIM_DOWNLINK_QOS, else 1].",
        ),
        click.option(
            "--failover-spread",
            type=click.FloatRange(0, 60),
            default=None,
            help="Seconds (uniform) a gateway waits before the next address after a lost link: "
            "10 on a NATS cluster, as its bundles say (docs/broker.md section 6) "
            "[default: SAFEHOME_SIM_FAILOVER_SPREAD_S, else 2].",
        ),
        click.option(
            "--uplink-qos",
            type=click.IntRange(0, 1),
            default=None,
            help="QoS of every gateway publish and Last-Will: 0 on a NATS cluster, as its bundles say "
            "(docs/broker.md, \"Logins after a node dies\") [default: SAFEHOME_SIM_UPLINK_QOS, else 1].",
        ),
        click.option(
            "--retain-status/--no-retain-status",
            default=None,
            help="Publish status and Last-Will retained: not on a NATS cluster, as its bundles say "
            "[default: SAFEHOME_SIM_RETAIN_STATUS, else retained].",
        ),
        click.option("--duration", type=float, default=None, help="Stop after this many seconds."),
        click.option("--shard", default="0/1", show_default=True, help="Run shard I of N of the gateways."),
        click.option("-v", "--verbose", is_flag=True),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _setup(registry_path: Path | None, homes: int | None, seed: int, shard_spec: str, verbose: bool) -> Any:
    import logging

    from firmware_sim.fleet import specs_from_registry
    from firmware_sim.registry import generate, load_registry
    from firmware_sim.runner import shard

    configure_logging(logging.INFO if verbose else logging.WARNING)
    reg = load_registry(registry_path) if registry_path else generate(homes or 300, seed)
    specs = specs_from_registry(reg, homes)
    i, _, n = shard_spec.partition("/")
    return reg, shard(specs, int(i), int(n or 1)), specs


def _settings(
    host: str,
    port: int,
    servers: tuple[str, ...],
    heartbeat: float,
    telemetry: float,
    resend: float,
    state: Path | None,
    seed: int,
    **link: Any,
) -> Any:
    """``link``: downlink_qos, failover_spread_s, uplink_qos, retain_status; None: from the
    SAFEHOME_SIM_* environment, or the default."""
    from pydantic import ValidationError

    from firmware_sim.fleet import FleetSettings

    try:
        given: dict[str, Any] = {
            "host": host,
            "port": port,
            "servers": list(servers),
            "heartbeat_s": heartbeat,
            "telemetry_s": telemetry,
            "resend_s": resend,
            "state_path": state,
            "seed": seed,
        }
        given |= {k: v for k, v in link.items() if v is not None}
        return FleetSettings(**given)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise click.UsageError(f"invalid fleet settings: {problems}") from exc


def _creds(password_file: Path | None, password_template: str | None) -> Any:
    from firmware_sim.fleet.types import username_only
    from firmware_sim.runner import password_file as pf
    from firmware_sim.runner import password_template as pt

    return (
        pf(password_file) if password_file else pt(password_template) if password_template else username_only
    )


@sim.command(name="fleet")
@_fleet_options
@click.option(
    "--backlog",
    "backlog_h",
    type=float,
    default=0.0,
    show_default=True,
    help="Hours of telemetry each gateway buffered during an outage, sent after (re)connecting.",
)
@click.option(
    "--report-every", type=float, default=10.0, show_default=True, help="Seconds between status lines."
)
@click.option(
    "--incidents",
    type=float,
    default=0.0,
    show_default=True,
    help="Random alarms/troubles per hour across the fleet (0: none; planned for --duration or 24 h).",
)
def fleet_cmd(
    registry_path: Path | None,
    homes: int | None,
    seed: int,
    host: str,
    port: int,
    servers: tuple[str, ...],
    heartbeat: float,
    telemetry: float,
    resend: float,
    state: Path | None,
    password_file: Path | None,
    password_template: str | None,
    downlink_qos: int | None,
    failover_spread: float | None,
    uplink_qos: int | None,
    retain_status: bool | None,
    duration: float | None,
    shard: str,
    verbose: bool,
    backlog_h: float,
    report_every: float,
    incidents: float,
) -> None:
    """Run N simulated gateways at the protocol level (heartbeats, telemetry, resend until acked)."""

    from firmware_sim import runner
    from firmware_sim.scenario import parse_scenario, plan

    _reg, specs, _all = _setup(registry_path, homes, seed, shard, verbose)
    actions = None
    if incidents > 0:
        actions = plan(
            parse_scenario(
                {"seed": seed, "steps": [{"incidents": {"per_hour": incidents, "until": duration or 86_400}}]}
            ),
            specs,
        )
    _run_or_fail(
        runner.run(
            specs,
            _settings(
                host, port, servers, heartbeat, telemetry, resend, state, seed,
                downlink_qos=downlink_qos, failover_spread_s=failover_spread, uplink_qos=uplink_qos,
                retain_status=retain_status,
            ),
            credentials=_creds(password_file, password_template),
            actions=actions,
            duration=duration,
            report=runner.stats_line,
            report_every=report_every,
            prepare=_backlog(backlog_h, telemetry) if backlog_h > 0 else None,
        )
    )


def _backlog(hours: float, telemetry_s: float) -> Callable[[Any], None]:
    def prepare(fleet: Any) -> None:
        count = max(1, int(hours * 3600 / telemetry_s))
        for gw in fleet.gateways:
            fleet.add_backlog(gw, count, telemetry_s)

    return prepare


@sim.command(name="scenario")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_fleet_options
@click.option(
    "--speed", type=float, default=1.0, show_default=True, help="Scenario time runs this many times faster."
)
@click.option("--dry-run", is_flag=True, help="Print the planned timeline and exit.")
def scenario_cmd(
    file: Path,
    registry_path: Path | None,
    homes: int | None,
    seed: int,
    host: str,
    port: int,
    servers: tuple[str, ...],
    heartbeat: float,
    telemetry: float,
    resend: float,
    state: Path | None,
    password_file: Path | None,
    password_template: str | None,
    downlink_qos: int | None,
    failover_spread: float | None,
    uplink_qos: int | None,
    retain_status: bool | None,
    duration: float | None,
    shard: str,
    verbose: bool,
    speed: float,
    dry_run: bool,
) -> None:
    """Play a scenario FILE (YAML) on a simulated fleet."""

    from firmware_sim import runner
    from firmware_sim.errors import SimError
    from firmware_sim.scenario import load_scenario, plan

    _reg, specs, _all = _setup(registry_path, homes, seed, shard, verbose)
    try:
        actions = plan(load_scenario(file), specs)
    except SimError as exc:
        raise click.ClickException(str(exc)) from exc
    if dry_run:
        for a in actions:
            click.echo(
                f"{a.t:10.1f}s {a.op:9} {a.gw} {a.kind} {a.sensor or ''} {'' if a.value is None else a.value} {a.note}"
            )
        return

    def show(a) -> None:  # type: ignore[no-untyped-def]
        if a.note:
            click.echo(f"{a.t:8.1f}s {a.gw} {a.note}", err=True)

    _run_or_fail(
        runner.run(
            specs,
            _settings(
                host, port, servers, heartbeat, telemetry, resend, state, seed,
                downlink_qos=downlink_qos, failover_spread_s=failover_spread, uplink_qos=uplink_qos,
                retain_status=retain_status,
            ),
            credentials=_creds(password_file, password_template),
            actions=actions,
            speed=speed,
            duration=duration,
            on_action=show,
            report=runner.stats_line,
        )
    )


@sim.command(name="home")
@click.argument("script", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Edge agent TOML (pin_factory must be mock); default: the standard kit.")  # fmt: skip
@click.option("--gateway", default="gw-home-sim", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=1883, show_default=True)
@SERVER_OPTION
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Agent buffer/state directory (default: a temporary directory).")  # fmt: skip
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--linger", type=float, default=10.0, show_default=True, help="Seconds to keep running after the script."
)
def home_cmd(script: Path, config: Path | None, gateway: str, host: str, port: int, servers: tuple[str, ...],
             data_dir: Path | None, seed: int, linger: float) -> None:  # fmt: skip
    """Run a REAL edge agent whose sensors are firmware models playing SCRIPT on mock pins.

    The agent runs in its own process, a simulated Pi: when the UPS HAT's cell runs empty
    the Pi goes dark (killed: its Last-Will fires) and it boots again when mains returns."""
    import asyncio
    import logging
    import tempfile

    from firmware_sim.errors import SimError
    from firmware_sim.firmware.driver import play
    from firmware_sim.firmware.home import DEFAULT_OUTPUTS, DEFAULT_SENSORS, load_home_script
    from firmware_sim.firmware.pi import SimulatedPi

    configure_logging(logging.WARNING)
    try:
        drives = load_home_script(script, seed)
    except SimError as exc:
        raise click.ClickException(str(exc)) from exc
    tmp = Path(tempfile.mkdtemp(prefix="safehome-home-")) if data_dir is None else data_dir
    overrides: dict[str, Any] = {"pin_factory": "mock", "environment": "development", "watchdog": False}
    if config is None:
        overrides |= {"gateway_id": gateway, "data_dir": tmp / "data", "state_dir": tmp / "run",
                      "mqtt": {"servers": list(servers), "port": port} if servers else {"host": host, "port": port},
                      "sensors": DEFAULT_SENSORS,
                      "outputs": DEFAULT_OUTPUTS, "time_sync": "assume_synced"}  # fmt: skip

    async def main() -> None:
        import signal

        pi = SimulatedPi(config, overrides)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def show(d: Any) -> None:
            if d.note:
                click.echo(f"{d.t:8.2f}s {d.sensor} {d.role}={d.value:g} {d.note}", err=True)

        try:
            await pi.boot()  # the home is wired before the first poll: NC loops closed, power good
            await play(drives, pi, on_drive=show, stop=stop)
            try:
                await asyncio.wait_for(stop.wait(), linger)
            except TimeoutError:
                pass
            state = await pi.shutdown()
            click.echo(
                f"agent state: {state}" if state is not None else "agent state: dark (no power)", err=True
            )
        finally:
            await pi.power_off()  # only if still up after an error

    _run_or_fail(main())
