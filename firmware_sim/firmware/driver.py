"""Apply timed drives to a real edge agent's gpiozero MockFactory pins and settable ADC.

:class:`PinDriver` drives an agent in this process (tests); a gateway whose supply can be
cut runs as a :class:`~firmware_sim.firmware.pi.SimulatedPi`, which :func:`play` drives alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from firmware_sim.errors import SimError
from firmware_sim.firmware.models import Drive
from firmware_sim.firmware.power import SUPPLY


class AgentLike(Protocol):
    """What the driver needs of ``edge.agent.Agent`` (kept structural: no import of edge here)."""

    factory: Any
    analog: dict[str, Any]
    sensors: list[Any]

    def sensor(self, sensor_id: str) -> Any: ...


class Driver(Protocol):
    """Anything that applies a drive now: :class:`PinDriver`, or a simulated Pi (async)."""

    def apply(self, d: Drive) -> Awaitable[None] | None: ...


class PinDriver:
    def __init__(self, agent: AgentLike) -> None:
        self.agent = agent

    def apply(self, d: Drive) -> None:
        if d.role == SUPPLY:
            raise SimError(
                f"sensor {d.sensor!r}: {d.note or 'the supply is cut'}: an agent in this process "
                "cannot lose its power; run it as a SimulatedPi (`safehome sim home` does)"
            )
        try:
            runtime = self.agent.sensor(d.sensor)
        except StopIteration as exc:
            raise SimError(f"the agent has no sensor {d.sensor!r}") from exc
        if d.role in runtime.channels:
            source = self.agent.analog.get(d.sensor)
            if source is None:
                raise SimError(f"sensor {d.sensor!r} has no simulated ADC (pin factory is not mock?)")
            source.set_fraction(d.value)
            return
        if d.role not in runtime.pins:
            roles = sorted([*runtime.pins, *runtime.channels])
            raise SimError(f"sensor {d.sensor!r} has no input role {d.role!r} (has {roles})")
        cap = runtime.definition.capability(d.role)
        pin = self.agent.factory.pin(runtime.pins[d.role])
        active = d.value >= 0.5
        # an active-low input is "active" when the contact pulls it to ground
        if active == cap.active_low:
            pin.drive_low()
        else:
            pin.drive_high()

    def settle(self) -> None:
        """Wire the home before the agent's first poll: every digital input at rest
        (contacts open, NC tamper loops closed, power good). A MockFactory pin nobody drives
        reads what its pull says, and for an NC loop or a power-good line that is the
        trouble itself (as a cut wire would be on a real gateway)."""
        for runtime in self.agent.sensors:
            for role in runtime.pins:
                self.apply(Drive(0.0, runtime.sensor_id, role, 0.0))


async def play(
    drives: list[Drive],
    driver: Driver,
    clock: Callable[[], float] = time.monotonic,
    on_drive: Callable[[Drive], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Apply each drive at its time (seconds from now)."""
    t0 = clock()
    for d in sorted(drives):
        wait = d.t - (clock() - t0)
        if wait > 0:
            if stop is not None:
                try:
                    await asyncio.wait_for(stop.wait(), wait)
                    return
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(wait)
        applied = driver.apply(d)
        if applied is not None:
            await applied
        if on_drive is not None:
            on_drive(d)
