"""Blocking work (SQLAlchemy, time-series writes) run in threads, drained on stop.

Cancelling a task that awaits ``asyncio.to_thread`` does not stop the thread: it goes on
holding a database connection. A service runs its blocking calls through one
:class:`ThreadWork` and awaits :meth:`ThreadWork.drain` when it stops, so that no write
is still running (and no connection still checked out) once ``stop()`` returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ThreadWork:
    def __init__(self) -> None:
        self._running: set[asyncio.Future[Any]] = set()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        fut: asyncio.Future[T] = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        self._running.add(fut)
        fut.add_done_callback(self._running.discard)
        # shield: a cancelled caller stops waiting, the thread's result is still collected
        return await asyncio.shield(fut)

    async def drain(self, within: float = 30.0) -> None:
        """Wait (at most ``within`` s) for the threads started by :meth:`run` to finish."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=within)
