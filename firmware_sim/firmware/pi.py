"""A simulated Raspberry Pi: the REAL edge agent in its own process, with a supply to cut.

The house (this process) keeps the state of every input wired to the gateway and plays
the firmware models' drives; the Pi (:mod:`firmware_sim.firmware.pi_main`, a child
process) runs the agent on mock pins. When the UPS HAT's cell is empty it cuts the Pi's
supply (a :data:`~firmware_sim.firmware.power.SUPPLY` drive): the child is SIGKILLed, so,
as on a real Pi, nothing more is published, nothing is flushed, and the broker sees the
session die without DISCONNECT and publishes its Last-Will. When mains returns the Pi
boots: a new child with the same settings and data directory, so the agent resends what
its store kept, and its inputs start as the house left them (not at rest).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from firmware_sim.errors import SimError
from firmware_sim.firmware.models import Drive
from firmware_sim.firmware.power import SUPPLY
from firmware_sim.procs import die_with_parent

#: a Pi that is not up (or down, when asked to stop) within this long is broken, not slow
BOOT_TIMEOUT_S = 60.0


class SimulatedPi:
    """One gateway: its agent settings (``config`` file and ``overrides``), its inputs, its power."""

    def __init__(self, config: Path | None, overrides: dict[str, Any]) -> None:
        self.config = config
        self.overrides = json.loads(json.dumps(overrides, default=str))  # paths as strings
        self.wiring: dict[tuple[str, str], Drive] = {}  #: last drive of each input
        self.proc: asyncio.subprocess.Process | None = None
        self.boots = 0
        self.exits: list[int] = []  #: return code of each child that ended (-9: power cut)

    @property
    def powered(self) -> bool:
        return self.proc is not None

    async def boot(self) -> None:
        """Power the Pi on and wait until its agent runs (``READY``)."""
        if self.proc is not None:
            return
        boot = {
            "config": str(self.config) if self.config else None,
            "overrides": self.overrides,
            "wiring": [dataclasses.asdict(d) for d in self.wiring.values()],
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "firmware_sim.firmware.pi_main", json.dumps(boot),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        assert proc.stdout is not None
        self.proc, self.boots = proc, self.boots + 1
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), BOOT_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if line.strip() != b"READY":
            await self._reap(kill=True)
            raise SimError(f"the simulated gateway did not boot (exit {self.exits[-1]}; its log is above)")

    async def apply(self, d: Drive) -> None:
        """Apply one drive: an input change (remembered, and sent to the Pi if it is up) or
        the supply being cut (power off) or restored (boot)."""
        if d.role == SUPPLY:
            await (self.power_off() if d.value >= 0.5 else self.boot())
            return
        self.wiring[(d.sensor, d.role)] = d
        if self.proc is None:
            return  # the Pi is dark: it will read the input when it boots
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(dataclasses.asdict(d)).encode() + b"\n")
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            await self._reap(kill=False)
            raise SimError(
                f"the simulated gateway stopped (exit {self.exits[-1]}) before {d.sensor} {d.role}; "
                "its log is above"
            ) from exc

    async def power_off(self) -> None:
        """Cut the supply: the agent dies at once (SIGKILL), mid-whatever it was doing."""
        await self._reap(kill=True)

    async def shutdown(self) -> dict[str, Any] | None:
        """Stop the Pi cleanly (the agent says goodbye and flushes); its last state, or
        None when it was dark."""
        proc = self.proc
        if proc is None:
            return None
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        state: dict[str, Any] | None = None
        try:
            async with asyncio.timeout(BOOT_TIMEOUT_S):
                while line := await proc.stdout.readline():
                    if line.startswith(b"STATE "):
                        state = json.loads(line[6:])
        except TimeoutError:
            await self._reap(kill=True)
            raise SimError("the simulated gateway did not stop; killed it") from None
        await self._reap(kill=False)
        if self.exits[-1] != 0:
            raise SimError(f"the simulated gateway exited with {self.exits[-1]}; its log is above")
        return state

    async def _reap(self, kill: bool) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if kill and proc.returncode is None:
            proc.kill()
        self.exits.append(await proc.wait())
