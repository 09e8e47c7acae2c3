"""Blocking work (SQLAlchemy, time-series writes) run in threads, drained on stop.

Cancelling a task that awaits ``asyncio.to_thread`` does not stop the thread: it goes on
holding a database connection. A service runs its blocking calls through one
:class:`ThreadWork` and awaits :meth:`ThreadWork.drain` when it stops, so that no write
is still running (and no connection still checked out) once ``stop()`` returns.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class ThreadWork:
    def __init__(self, threads: int | None = None, name: str = "work") -> None:
        """``threads``: run in a pool of this many threads of its own instead of asyncio's
        default one. The default pool (a few threads per core) is shared by every part of
        the process; in a storm its threads all waited for SQLite's write lock (outbox,
        storm decisions, flushes) and a smoke alarm's store waited for a free thread."""
        self._running: set[asyncio.Future[Any]] = set()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=name) if threads else None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            fut: asyncio.Future[T] = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        else:  # as asyncio.to_thread: the caller's context (hub.db.gate's urgency) goes along
            ctx = contextvars.copy_context()
            call = functools.partial(ctx.run, fn, *args)
            fut = asyncio.ensure_future(asyncio.get_running_loop().run_in_executor(self._pool, call))
        self._running.add(fut)
        fut.add_done_callback(self._running.discard)
        # shield: a cancelled caller stops waiting, the thread's result is still collected
        return await asyncio.shield(fut)

    async def drain(self, within: float = 30.0) -> None:
        """Wait (at most ``within`` s) for the threads started by :meth:`run` to finish."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=within)
