"""The downlink handler keeps the tasks it starts (a voice prompt on 'help is on the way')
until they end: the event loop holds only a weak reference, and an unreferenced task can
be garbage-collected before it finishes."""

from __future__ import annotations

import asyncio
import gc
from typing import cast

from edge.commands import AgentPort, Downlink


async def test_a_started_task_is_kept_until_it_ends() -> None:
    downlink = Downlink(cast(AgentPort, object()))
    gate = asyncio.Event()
    finished: list[str] = []

    async def prompt() -> None:
        await gate.wait()
        finished.append("said")

    downlink.spawn(prompt())
    gc.collect()
    assert len(downlink.tasks) == 1  # held while it runs
    (task,) = downlink.tasks
    gate.set()
    await task
    assert finished == ["said"]
    assert downlink.tasks == set()
