"""Play a planned timeline against a running :class:`~firmware_sim.fleet.Fleet`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import protocols as p
from firmware_sim.fleet import Fleet
from firmware_sim.scenario.plan import Action
from firmware_sim.scenario.schedule import Scheduler
from protocols.messages import Values

log = logging.getLogger(__name__)


def apply(fleet: Fleet, a: Action) -> None:
    """Apply one action to the fleet (an unknown gateway is skipped and logged, never fatal)."""
    if a.gw not in fleet.gateways:
        log.warning("scenario action for unknown gateway %s skipped", a.gw)
        return
    if a.gw in fleet.dark and a.op in ("alarm", "restore", "telemetry"):
        # a gateway without power sees nothing: the incident passes unrecorded
        fleet.stats.inc("events_while_dark")
        return
    if a.op in ("alarm", "restore"):
        state = p.EventState.ALARM if a.op == "alarm" else p.EventState.RESTORE
        values = Values(lel=a.value) if a.kind == "gas" and a.value is not None else None
        fleet.trigger(a.gw, p.EventKind(a.kind), state, a.sensor, values)
    elif a.op == "reading":
        assert a.sensor is not None and a.value is not None
        fleet.set_reading(a.gw, a.sensor, a.kind, a.value)
    elif a.op == "telemetry":
        fleet.send_telemetry(a.gw)
    elif a.op == "link_down":
        fleet.link_down(a.gw)
    elif a.op == "link_up":
        fleet.link_up(a.gw)
    elif a.op == "power_off":
        fleet.power_off(a.gw)
    elif a.op == "power_on":
        fleet.power_on(a.gw)
    else:
        raise ValueError(f"unknown scenario op {a.op!r}")


async def play(
    fleet: Fleet,
    scheduler: Scheduler,
    stop: asyncio.Event | None = None,
    on_action: Callable[[Action], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Apply actions as they fall due until the timeline ends or ``stop`` is set."""
    stop = stop or asyncio.Event()
    t0 = clock()
    while not stop.is_set() and not scheduler.done:
        for a in scheduler.due(clock() - t0):
            apply(fleet, a)
            if on_action is not None:
                on_action(a)
        wait = scheduler.next_in(clock() - t0)
        if wait is None:
            break
        try:
            await asyncio.wait_for(stop.wait(), min(wait, 1.0))
        except TimeoutError:
            pass
