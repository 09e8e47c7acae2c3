"""Wait for a condition by polling it with a deadline: the one way tests and benches wait
for something another thread, process or server does (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Between two looks at the condition.
INTERVAL_S = 0.01


def wait_for(cond: Callable[[], T], within: float = 10.0, what: str = "condition") -> T:
    """Poll ``cond`` until it returns something truthy (returned); AssertionError naming
    ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not (value := cond()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        time.sleep(INTERVAL_S)
    return value


async def until(cond: Callable[[], T], within: float = 10.0, what: str = "condition") -> T:
    """:func:`wait_for` for coroutines: yields to the event loop between looks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not (value := cond()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(INTERVAL_S)
    return value
