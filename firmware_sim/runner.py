"""Run a fleet (and optionally a scenario timeline) until Ctrl-C, a deadline or the end.

Shared by ``safehome sim fleet``, ``safehome sim scenario`` and the demo. Also splits a
fleet over several processes (``--processes``): each child runs one shard of gateways.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from firmware_sim.errors import FleetError
from firmware_sim.fleet import Fleet, FleetObserver, FleetSettings, GatewaySpec
from firmware_sim.fleet.types import Credentials, username_only
from firmware_sim.scenario import Action, Scheduler
from firmware_sim.scenario.run import play

log = logging.getLogger(__name__)


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft open-files limit towards ``wanted`` (up to the hard limit); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def shard(specs: list[GatewaySpec], index: int, count: int) -> list[GatewaySpec]:
    return specs[index::count]


def password_file(path: Path) -> Credentials:
    """``gateway-id:password`` per line (``#`` comments); username is the gateway id."""
    table: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        gw, sep, pw = line.partition(":")
        if not sep:
            raise FleetError(f"{path}:{n}: expected gateway-id:password")
        table[gw.strip()] = pw.strip()

    def creds(gw: str) -> tuple[str | None, str | None]:
        return gw, table.get(gw)

    return creds


def password_template(template: str) -> Credentials:
    """Password made from a template, e.g. ``demo-{gw}`` (for demos and benchmarks only)."""

    def creds(gw: str) -> tuple[str | None, str | None]:
        return gw, template.format(gw=gw)

    return creds


async def run(
    specs: list[GatewaySpec],
    settings: FleetSettings,
    *,
    credentials: Credentials = username_only,
    actions: list[Action] | None = None,
    speed: float = 1.0,
    duration: float | None = None,
    observer: FleetObserver | None = None,
    on_action: Callable[[Action], None] | None = None,
    report: Callable[[Fleet], None] | None = None,
    report_every: float = 10.0,
    stop: asyncio.Event | None = None,
    prepare: Callable[[Fleet], None] | None = None,
) -> Fleet:
    raise_fd_limit(len(specs) + 256)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fleet = Fleet(specs, settings, credentials, observer)
    if prepare is not None:
        prepare(fleet)  # e.g. an outage's backlog, queued before the gateways connect
    try:
        t0 = time.monotonic()
        await fleet.start()
        log.info(
            "fleet: %d/%d gateways connected in %.1f s", fleet.connected, len(specs), time.monotonic() - t0
        )
        tasks = [asyncio.create_task(fleet.run(stop), name="loop")]
        if actions:
            tasks.append(asyncio.create_task(play(fleet, Scheduler(actions, speed), stop, on_action), name="scenario"))
        if duration is not None:
            loop.call_later(duration, stop.set)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), report_every)
            except TimeoutError:
                _fail_if_died(tasks)
                if report is not None:
                    report(fleet)
        await asyncio.gather(*tasks)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await fleet.stop()
    return fleet


def _fail_if_died(tasks: list[asyncio.Task[None]]) -> None:
    """A fleet whose loop died must not go on printing status lines as if it ran: fail."""
    for t in tasks:
        if t.done() and not t.cancelled() and t.exception() is not None:
            raise FleetError(f"the fleet's task {t.get_name()} stopped: {t.exception()!r}") from t.exception()


def stats_line(fleet: Fleet) -> None:
    c = fleet.stats.counts
    pending = sum(len(g.pending) for g in fleet.gateways.values())
    sent = sum(v for k, v in c.items() if k.startswith("sent:"))
    resent = sum(v for k, v in c.items() if k.endswith(":resend"))
    print(
        f"{time.strftime('%H:%M:%S')} connected {fleet.connected}/{len(fleet.gateways)} "
        f"sent {sent} (resends {resent}) acked {c['acked']} pending {pending} heartbeats {c['heartbeats']} "
        f"home-told {sum(v for k, v in c.items() if k.startswith('home_told:'))} "
        f"connects failed {c['login_failed']} logins + {c['unreachable']} unreachable ("
        + ", ".join(f"{k.partition(':')[2]} {v}" for k, v in sorted(c.items()) if k.startswith("unreachable:"))
        + ") away "
        + " ".join(f"{k} {v}" for k, v in fleet.away().items()),
        file=sys.stderr,
        flush=True,
    )
