"""``safehome demo``: broker, hub and a simulated district on one machine, with a live view.

Order: generate a district → start Mosquitto (generated config, free port) → start the hub
on SQLite (or, while ``hub/runner.py`` is not there, a stand-in that only acks) → run the
fleet with the demo scenario → live view. Ctrl-C (or ``--duration``) stops everything in
reverse order; children also get SIGTERM from the kernel if the demo itself dies.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import click
from rich.text import Text

from firmware_sim import runner
from firmware_sim.broker import LocalBroker
from firmware_sim.fleet import Fleet, FleetSettings, specs_from_registry
from firmware_sim.registry import Registry, generate, registry_to_yaml
from firmware_sim.scenario import load_scenario, plan
from safehome.demo_hub import HubHandle, start_hub
from safehome.demo_responder import Responder
from safehome.demo_view import DemoBoard, render

DEMO_SCENARIO = Path(__file__).resolve().parents[1] / "firmware_sim" / "scenarios" / "demo.yaml"


def _counters(fleet: Fleet, board: DemoBoard) -> dict[str, int | str]:
    c = fleet.stats.counts
    return {
        "gateways online": f"{fleet.connected}/{len(fleet.gateways)}",
        "links down": len(board.links_down),
        "events": sum(v for k, v in c.items() if k.startswith("events:")),
        "telemetry sent": c["sent:telemetry"],
        "resends": sum(v for k, v in c.items() if k.endswith(":resend")),
        "stored (acked)": c["acked"],
        "pending": sum(len(g.pending) for g in fleet.gateways.values()),
        "homes told": board.told,
    }


def _responder(hub: HubHandle, reg: Registry) -> Responder | None:
    """People at the centers (scripted); the second workstation is the slow one."""
    if hub.api_url is None:
        return None
    tokens = {region: tok for key, tok in hub.tokens.items() for role, _, region in [key.partition(" ")]
              if role in ("operator", "supervisor")}  # fmt: skip
    watch = hub.token("supervisor", f"district:{reg.district.id}")
    assert watch is not None
    slow = {reg.workstations[1].id} if len(reg.workstations) > 1 else set()
    return Responder(hub.api_url, tokens, watch, slow)


async def _respond(responder: Responder, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await responder.poll()
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


async def _run(
    homes: int, seed: int, duration: float | None, view: bool, workdir: Path, scenario: Path
) -> None:
    reg = generate(homes, seed)
    registry_path = workdir / "registry.yaml"
    registry_path.write_text(registry_to_yaml(reg))
    click.echo(f"district: {len(reg.homes)} homes, {len(reg.workstations)} workstations, "
               f"{len(reg.subdistricts)} subdistrict centers → {registry_path}")  # fmt: skip
    broker = LocalBroker(workdir / "broker").start()
    hub: HubHandle | None = None
    try:
        click.echo(f"broker: mosquitto pid {broker.pid} on mqtt://{broker.host}:{broker.port}")
        hub = start_hub(workdir, broker.host, broker.port, registry_path, reg)
        for line in hub.describe():
            click.echo(Text.from_markup(line).plain)
        specs = specs_from_registry(reg)
        actions = plan(load_scenario(scenario), specs)
        board = DemoBoard(reg)
        settings = FleetSettings(host=broker.host, port=broker.port, resend_s=5.0, seed=seed)
        header = "\n".join([f"broker [bold]mqtt://{broker.host}:{broker.port}[/]   registry {registry_path}",
                            *hub.describe(), "Ctrl-C stops everything."])  # fmt: skip
        stop = asyncio.Event()
        fleet_box: list[Fleet] = []
        responder = _responder(hub, reg)
        tasks: list[asyncio.Task[None]] = []
        if responder is not None:
            tasks.append(asyncio.create_task(_respond(responder, stop)))

        def report(fleet: Fleet) -> None:
            fleet_box[:] = [fleet]
            if not view:
                runner.stats_line(fleet)
                if responder is not None:
                    click.echo(f"  center: {responder.status}", err=True)

        if view:
            from rich.live import Live

            async def live() -> None:
                with Live(refresh_per_second=2, screen=False, transient=False) as lv:
                    while not stop.is_set():
                        if fleet_box:
                            center = (
                                (responder.alarms, responder.details, responder.status) if responder else None
                            )
                            lv.update(render(board, header, _counters(fleet_box[0], board), center))
                        try:
                            await asyncio.wait_for(stop.wait(), 0.5)
                        except TimeoutError:
                            pass

            tasks.append(asyncio.create_task(live()))
        await runner.run(specs, settings, actions=actions, duration=duration, observer=board, report=report,
                         report_every=0.5 if view else 5.0, stop=stop)  # fmt: skip
        stop.set()
        await asyncio.gather(*tasks)
        if responder is not None:
            await responder.close()
    finally:
        if hub is not None:
            hub.stop()
        broker.stop()
        click.echo("demo stopped: fleet, hub and broker are down")


@click.command(name="demo")
@click.option(
    "--homes",
    type=click.IntRange(150, 20_000),
    default=300,
    show_default=True,
    help="At least 150: the demo scenario uses 3 workstations.",
)
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option(
    "--duration", type=float, default=None, help="Stop after this many seconds (default: until Ctrl-C)."
)
@click.option("--no-view", is_flag=True, help="Status lines instead of the live view (logs, CI).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the run's files here (default: a temporary directory, removed at exit).")  # fmt: skip
@click.option("--scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=DEMO_SCENARIO,
              show_default=True)  # fmt: skip
def demo(
    homes: int, seed: int, duration: float | None, no_view: bool, workdir: Path | None, scenario: Path
) -> None:
    """Run the whole system on loopback (broker, hub, simulated homes)."""
    own = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="safehome-demo-")) if workdir is None else workdir
    wd.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        asyncio.run(_run(homes, seed, duration, not no_view and sys.stdout.isatty(), wd, scenario))
    except KeyboardInterrupt:
        pass  # Ctrl-C before the fleet's own handler was installed: cleanup already ran in _run
    finally:
        if own:
            shutil.rmtree(wd, ignore_errors=True)
    click.echo(f"ran {time.monotonic() - t0:.0f} s")
