"""The process of a simulated Raspberry Pi: the REAL edge agent on mock pins, driven over stdin.

Started by :class:`firmware_sim.firmware.pi.SimulatedPi` as ``python -m
firmware_sim.firmware.pi_main BOOT_JSON``, where the JSON holds the agent's settings (file
and overrides) and the state of every input at boot. It puts the inputs in that state
before the agent's first poll, starts the agent and says ``READY`` on stdout; then every
stdin line is a drive (JSON) applied at once. At end of stdin it says ``STATE {json}`` and
stops the agent cleanly. A power cut is a SIGKILL from the parent: no goodbye, no flush.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from devices.errors import DeviceError
from edge.agent import Agent
from edge.errors import EdgeError
from edge.settings import EdgeSettings, load_settings
from firmware_sim.errors import SimError
from firmware_sim.firmware.driver import PinDriver
from firmware_sim.firmware.models import Drive
from protocols.logs import configure_logging


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _stdin() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run(settings: EdgeSettings, wiring: list[Drive]) -> int:
    try:
        agent = Agent(settings)
    except (EdgeError, DeviceError) as exc:
        print(f"simulated gateway: {exc}", file=sys.stderr)
        return 2
    driver = PinDriver(agent)
    try:
        driver.settle()  # contacts open, NC loops closed, power good ...
        for d in wiring:  # ... then as the house left them (mains still lost, a lid open ...)
            driver.apply(d)
    except SimError as exc:
        agent.close()
        print(f"simulated gateway: {exc}", file=sys.stderr)
        return 2
    task = asyncio.create_task(agent.run())
    code = 0
    try:
        reader = await _stdin()
        _say("READY")
        while line := await reader.readline():
            try:
                driver.apply(Drive(**json.loads(line)))
            except SimError as exc:
                print(f"simulated gateway: {exc}", file=sys.stderr)
                code = 2
                break
        _say("STATE " + json.dumps(agent.state(), default=str))
    finally:
        agent.stop()
        await task
    return code


def main(argv: list[str]) -> int:
    # The parent decides when this Pi stops (end of stdin) or loses power (SIGKILL); a
    # Ctrl-C in its terminal reaches this process group too and must not stop it first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(logging.WARNING)
    boot: dict[str, Any] = json.loads(argv[1])
    try:
        config = Path(boot["config"]) if boot.get("config") else None
        settings = load_settings(config, **boot["overrides"])
    except EdgeError as exc:
        print(f"simulated gateway: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run(settings, [Drive(**d) for d in boot["wiring"]]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
