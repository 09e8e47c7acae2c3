"""Child process for the kill -9 tests: runs an agent on MockFactory pins and prints
``RECORDED <id> <seq> <kind>`` the instant each event is durably recorded (from the
agent's recorded hook, i.e. right after the fsynced commit returns, or after the store
refused it and it went to RAM).

Usage: python -m tests.edge.agent_child SETTINGS.toml            # drives the smoke contact
       python -m tests.edge.agent_child SETTINGS.toml --presses N
           prints LINKED once the uplink is up, waits for a line on stdin (the test fills
           the disk meanwhile), then presses the panic button N times
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from edge.agent import Agent
from edge.settings import load_settings
from protocols import Event


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(path: Path, presses: int | None) -> None:
    factory = MockFactory()
    agent = Agent(load_settings(path), factory=factory)

    def recorded(ev: Event) -> None:
        say(f"RECORDED {ev.id} {ev.seq} {ev.kind.value}")

    agent.recorded_hooks.append(recorded)
    task = asyncio.create_task(agent.run())
    while not agent.link_up.is_set():  # noqa: ASYNC110 - a child helper, polling is fine
        await asyncio.sleep(0.01)
    if presses is None:
        factory.pin(agent.sensor("smoke-1").pins["contact"]).drive_low()
    else:
        say("LINKED")
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        button = factory.pin(agent.sensor("panic-1").pins["button"])
        for _ in range(presses):  # short presses (debounce 50 ms): one panic alarm each
            button.drive_low()
            await asyncio.sleep(0.2)
            button.drive_high()
            await asyncio.sleep(0.2)
    await task


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(Path(args[0]), int(args[2]) if args[1:2] == ["--presses"] else None))
