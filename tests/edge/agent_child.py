"""Child process for the kill -9 test: runs an agent on MockFactory pins, drives the smoke
contact low, and prints ``RECORDED <id> <seq>`` the instant the alarm is durably recorded
(from the agent's recorded hook, i.e. right after the fsynced commit returns).

Usage: python -m tests.edge.agent_child SETTINGS.toml
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from edge.agent import Agent
from edge.settings import load_settings
from protocols import Event


async def main(path: Path) -> None:
    factory = MockFactory()
    agent = Agent(load_settings(path), factory=factory)

    def recorded(ev: Event) -> None:
        sys.stdout.write(f"RECORDED {ev.id} {ev.seq}\n")
        sys.stdout.flush()

    agent.recorded_hooks.append(recorded)
    task = asyncio.create_task(agent.run())
    while not agent.link_up.is_set():  # noqa: ASYNC110 - a child helper, polling is fine
        await asyncio.sleep(0.01)
    factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
    await task


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
