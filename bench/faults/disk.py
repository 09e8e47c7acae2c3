"""Disk full on the gateway: a REAL edge agent whose SD card (data and state directories) is
a small tmpfs, filled to the last byte while smoke alarms come and go, then freed.
The invariant: every smoke incident still reaches the hub as a stored alarm event, and
every event put on the wire is stored once. Needs root (mount)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from bench.faults.count import Tally
from bench.faults.harness import Harness, Raised
from bench.faults.power import Incident, Wire, agent_settings, stored_ids
from firmware_sim.firmware.models import Drive
from firmware_sim.firmware.pi import SimulatedPi


class DiskUnavailable(RuntimeError):
    """A small file system cannot be mounted here (not root)."""


@contextlib.contextmanager
def small_disk(path: Path, size: str = "4m") -> Iterator[Path]:
    if os.geteuid() != 0:
        raise DiskUnavailable("disk-full needs root (mount -t tmpfs)")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True, timeout=30)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=30)


def fill(path: Path) -> Path:
    """Write a file until the disk refuses more (ENOSPC); returns it (delete it to free)."""
    filler = path / "filler"
    with filler.open("wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):  # then the last partial blocks
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                continue
    return filler


async def run(
    h: Harness, gw: str, incidents_n: int, settle: Callable[[list[Raised]], Awaitable[Tally]]
) -> tuple[Tally, list[Incident], list[str]]:
    wire = Wire(h.broker.host, h.broker.port)
    incidents: list[Incident] = []
    with small_disk(h.workdir / "sd" / gw) as sd:
        pi = SimulatedPi(None, agent_settings(sd, gw, h.broker.host, h.broker.port))
        try:
            await pi.boot()
            filler = await asyncio.to_thread(fill, sd)
            for i in range(incidents_n):
                if i == incidents_n - 1:
                    filler.unlink()  # the last incident on a disk with room again
                start = time.time()
                await pi.apply(Drive(0, "smoke-1", "contact", 1.0, "smoke"))
                await asyncio.sleep(1.0)
                await pi.apply(Drive(0, "smoke-1", "contact", 0.0, "smoke cleared"))
                incidents.append(Incident(gw, start, time.time()))
                await asyncio.sleep(0.5)
            t = await settle(wire.raised([gw]))
            raised = wire.raised([gw])
            if len(raised) != t.raised:
                t = await settle(raised)
        finally:
            with contextlib.suppress(Exception):
                await pi.power_off()  # a clean stop would try to write to the full disk
            wire.close()
    stored = await asyncio.to_thread(stored_ids, h.db_url, [gw])
    alarms = [r for r in raised if r.state == "alarm" and r.id in stored]
    problems = [
        f"{i.gateway_id}: no smoke alarm stored for the incident at {time.strftime('%H:%M:%S', time.gmtime(i.start))}"
        for i in incidents
        if not any(i.start - 0.5 <= r.at <= i.end + 0.5 for r in alarms)
    ]
    return t, incidents, problems
