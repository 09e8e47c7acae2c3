"""`safehome bench` commands. Benchmarks are not tests: each prints its figures and appends them
to docs/benchmarks-history.md (``--no-write``: print only); docs/benchmarks.md summarises the
latest of each."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import click

from bench import report


@click.group(name="bench")
def bench() -> None:
    """Benchmarks; figures go to docs/benchmarks-history.md (summary: docs/benchmarks.md)."""


@bench.command(name="connections")
@click.option("--homes", type=click.IntRange(1, 19_000), default=10_000, show_default=True)
@click.option("--processes", type=click.IntRange(1, 8), default=1, show_default=True)
@click.option("--hold", type=float, default=65.0, show_default=True, help="Seconds to hold all sessions.")
def connections(homes: int, processes: int, hold: float) -> None:
    """Concurrent gateway sessions held with heartbeats (floor goal 10,000)."""
    from bench import connections as c

    c.run(homes, processes, hold)


#: Benchmarks owned by other modules of bench/: "module:command", registered below.
OTHERS: tuple[str, ...] = ("bench.ingest:ingest_cmd", "bench.edge_footprint:edge_cmd", "bench.provision:provision_cmd")


def _register() -> None:
    for ref in OTHERS:
        module, _, attr = ref.partition(":")
        bench.add_command(getattr(importlib.import_module(module), attr))


_register()


def hub_deployment(f: Callable[..., None]) -> Callable[..., None]:
    """The hub deployment options of the end-to-end benchmarks (latency, recovery)."""
    f = click.option(
        "--postgres", is_flag=True, help="The hub on a throwaway PostgreSQL database (default SQLite)."
    )(f)
    return click.option(
        "--split-lanes/--one-process",
        default=True,
        show_default=True,
        help="Alarm lane and telemetry lane in two hub processes (the recommended deployment), or one.",
    )(f)


@bench.command(name="latency")
@click.option("--homes", "homes_list", default="1000,10000", show_default=True, help="Comma-separated N.")
@click.option("--alarms", type=int, default=200, show_default=True)
@click.option("--spacing", type=float, default=0.25, show_default=True, help="Seconds between alarms.")
@hub_deployment
def latency(homes_list: str, alarms: int, spacing: float, split_lanes: bool, postgres: bool) -> None:
    """Alarm latency (publish → webhook) p50/p99/max while N homes send telemetry and heartbeats."""
    from bench import latency as lat

    for n in (int(x) for x in homes_list.split(",")):
        lat.run(n, alarms, spacing, split=split_lanes, postgres=postgres)


@bench.command(name="board")
@click.option("--homes", type=click.IntRange(1, 19_000), default=10_000, show_default=True)
@click.option("--alarms", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--spacing", type=float, default=0.3, show_default=True, help="Seconds between alarms.")
@click.option("--warmup", type=float, default=20.0, show_default=True, help="Seconds of load before measuring.")
@click.option("--within", type=float, default=30.0, show_default=True, help="Seconds after which an unseen alarm is lost.")
@hub_deployment
def board(homes: int, alarms: int, spacing: float, warmup: float, within: float, split_lanes: bool, postgres: bool) -> None:
    """Gateway publish → alarm row on an open console board (headless Chromium) p50/p99/max under load;
    fails if an alarm never appears."""
    from bench import board as bd

    _text, lost = bd.run(homes, alarms, spacing, warmup, split_lanes, postgres, within)
    if lost:
        raise click.ClickException(f"{lost} of {alarms} alarms never appeared on the board")


@bench.command(name="recovery")
@click.option("--gateways", type=int, default=5000, show_default=True)
@click.option(
    "--hours", type=float, default=1.0, show_default=True, help="Outage length (backlog per gateway)."
)
@hub_deployment
def recovery(gateways: int, hours: float, split_lanes: bool, postgres: bool) -> None:
    """Time to store every gateway's outage backlog after reconnecting at once, alarm latency meanwhile."""
    from bench import recovery as rec

    rec.run(gateways, hours, split=split_lanes, postgres=postgres)


@bench.command(name="cluster")
@click.option("--homes", type=click.IntRange(100, 19_000), default=10_000, show_default=True)
@click.option("--alarms", type=click.IntRange(10, 1000), default=200, show_default=True)
@click.option("--spacing", type=float, default=0.25, show_default=True, help="Seconds between alarms.")
@click.option("--warmup", type=float, default=20.0, show_default=True, help="Seconds of load before measuring.")
@click.option("--outage", type=float, default=10.0, show_default=True, help="Seconds of alarms raised after the kill.")
@click.option("--connect-within", type=float, default=600.0, show_default=True,
              help="Seconds to wait for every load gateway to connect; then measure with those connected.")
@click.option("--only", type=click.Choice(["mosquitto", "nats"]), default=None,
              help="Measure one broker only (the figures are side by side only without it).")
@click.option("--database", type=click.Choice(["sqlite", "postgres"]), default="sqlite", show_default=True,
              help="The two hub workers' database: one SQLite file (whose write priorities hold only within a "
                   "process), or PostgreSQL as a deployment of several workers has.")  # fmt: skip
@click.option("--dead-machine", is_flag=True,
              help="NATS: the killed node's MQTT port drops every packet sent to it (connects to it time out, "
                   "as to a machine that is gone) instead of refusing connections (a process that died). "
                   "Needs nft.")  # fmt: skip
def cluster(
    homes: int, alarms: int, spacing: float, warmup: float, outage: float, connect_within: float, only: str | None,
    database: str, dead_machine: bool,
) -> None:
    """Mosquitto vs a 3-node NATS cluster in one run: connect time, broker RSS per 10,000
    connections, alarm publish → webhook, readings/s per worker, a node's SIGKILL to recovery."""
    from bench import cluster as cl

    plan = cl.Plan(homes, alarms, spacing, warmup, outage, connect_within, database == "postgres", dead_machine)
    cl.run(plan, (only,) if only else cl.BACKENDS)


@bench.command(name="flood")
@click.option("--alarms", type=int, default=100, show_default=True, help="Other homes' alarms per phase.")
@click.option("--spacing", type=float, default=0.05, show_default=True, help="Seconds between alarms.")
@click.option("--count", type=int, default=20_000, show_default=True, help="Events the flooding gateway sends.")
@click.option("--kind", default="smoke", show_default=True, help="Event kind of the flood (smoke: never shed).")
@click.option("--sensors", type=int, default=10, show_default=True, help="Distinct sensor ids in the flood.")
@click.option(
    "--broker-rate",
    type=click.FloatRange(min=0),
    default=None,
    help="The broker's rate limit per gateway (messages/s); default: the deployment's; 0: none (shows the harm).",
)
@hub_deployment
def flood(
    alarms: int,
    spacing: float,
    count: int,
    kind: str,
    sensors: int,
    broker_rate: float | None,
    split_lanes: bool,
    postgres: bool,
) -> None:
    """Other homes' alarm latency while one gateway floods the hub, next to a baseline."""
    from bench import flood as fl

    fl.run(alarms, spacing, count, kind, sensors, split=split_lanes, postgres=postgres, broker_rate=broker_rate)


@bench.command(name="scaleout")
@click.option("--gateways", type=int, default=20, show_default=True)
@click.option("--messages", type=int, default=1500, show_default=True, help="telemetry messages per gateway")
@click.option("--readings", type=int, default=20, show_default=True, help="readings per message")
def scaleout(gateways: int, messages: int, readings: int) -> None:
    """1 vs 2 hub ingest workers on a shared subscription: split and CPU per reading (PostgreSQL)."""
    from bench import scaleout as so

    so.run(gateways, messages, readings)


@bench.command()
@click.option("--homes", type=click.IntRange(200, 19_000), default=10_000, show_default=True)
@click.option("--offline", type=int, default=3000, show_default=True, help="Gateways cut off (Last-Will).")
@click.option("--mains", type=int, default=1000, show_default=True, help="Gateways reporting mains_lost.")
@click.option("--smoke", type=int, default=50, show_default=True, help="Smoke alarms before, and again during.")
@click.option("--storm-s", type=float, default=10.0, show_default=True, help="Seconds the storm is spread over.")
def storm(homes: int, offline: int, mains: int, smoke: int, storm_s: float) -> None:
    """A district storm (Last-Wills + mains_lost) while smoke alarms are raised: smoke latency
    before/during, time to store and decide the storm, mass-event incidents per subdistrict."""
    from bench import storm as st

    if offline + mains + 2 * smoke > homes:
        raise click.BadParameter("offline + mains + 2 x smoke must not exceed --homes")
    st.run(homes, offline, mains, smoke, storm_s)


@bench.command()
@click.option("--homes", "homes_list", default="10000,100000", show_default=True, help="Comma-separated N.")
def supervision(homes_list: str) -> None:
    """Supervision's database round (gateways every second, sensors every 30 s) at N homes."""
    from bench import supervision as sup

    sup.run([int(x) for x in homes_list.split(",")])


@bench.command(name="all")
@click.pass_context
def all_(ctx: click.Context) -> None:
    """Every benchmark, one after the other (each with its defaults)."""
    for name in sorted(bench.commands):
        if name != "all":
            click.echo(f"=== safehome bench {name}", err=True)
            ctx.invoke(bench.commands[name])


@bench.command(name="attack")
@click.option("--victims", type=click.IntRange(1, 1000), default=10, show_default=True, help="Other homes' gateways.")
@click.option("--alarms", type=int, default=300, show_default=True, help="Panic events per phase.")
@click.option("--spacing", type=float, default=0.05, show_default=True, help="Seconds between alarms.")
@click.option("--without-isolation", is_flag=True, help="The broker without the isolation plugin (shows the harm).")
def attack(victims: int, alarms: int, spacing: float, without_isolation: bool) -> None:
    """Other homes' alarms (publish → stored ack), baseline and while one stolen gateway password attacks."""
    from bench import attack as atk

    atk.run(victims, alarms, spacing, isolation=not without_isolation)


def _add_write_option() -> None:
    """The same ``--write/--no-write`` on every subcommand (``all`` passes it on to each)."""
    for cmd in bench.commands.values():
        if not any(p.name == "write" for p in cmd.params):
            cmd.params.append(report.WRITE_OPTION)


_add_write_option()
