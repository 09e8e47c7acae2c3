"""The sender stops when cancelled, even if the outbox changes in the same loop step.

Python 3.11's ``asyncio.wait_for`` returns the inner result instead of raising when the
awaited future completes in the step that delivers the cancellation; the sender then
looped back into an unbounded wait and the agent never stopped.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from edge.outbox import Outbox
from edge.session import Link, sender
from edge.settings import EdgeSettings


class _IdleOutbox:
    """Nothing to send now, a resend due in a minute: the sender waits for ``changed``
    with a timeout (the case where ``wait_for`` could swallow the cancel)."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()
        self.urgent = False

    def plan(self, now: float) -> list[Any]:
        return []

    def next_due(self) -> float | None:
        return asyncio.get_running_loop().time() + 60


async def test_sender_honours_a_cancel_that_coincides_with_an_outbox_change() -> None:
    outbox = _IdleOutbox()
    settings = cast(EdgeSettings, SimpleNamespace(mqtt=SimpleNamespace(connect_timeout_s=5)))

    async def no_downlink(*_: object) -> None:
        pass

    link = Link(
        gw="gw-1",
        settings=lambda: settings,
        outbox=cast(Outbox, outbox),
        status=lambda state, reason: b"",
        heartbeat_s=lambda: 30.0,
        on_downlink=no_downlink,
        count_reject=lambda reason: None,
    )
    task = asyncio.create_task(sender(link, None))  # type: ignore[arg-type]
    for _ in range(5):  # let it reach its wait
        await asyncio.sleep(0)
    outbox.changed.set()  # an ack or a new event …
    task.cancel()  # … in the very step the agent stops
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
