"""Console push: an in-process pub/sub that the console and the API's stream read from.

Subscribers pick the regions they watch (``"workstation:ws-0001"``, ``"district:pudong"``…).
Publishing never blocks: a subscriber that falls behind loses its oldest items (counted in
``dropped``) and re-reads the alarm list; the alarm record is the truth, this is a nudge.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from hub.notify.channel import Delivered, Message
from hub.notify.names import ChannelName


class Subscription:
    def __init__(self, bus: ConsoleBus, regions: frozenset[str] | None, maxsize: int) -> None:
        self._bus = bus
        self.regions = regions
        self.queue: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, item: Mapping[str, Any]) -> None:
        while True:
            try:
                self.queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()
                self.dropped += 1

    async def get(self) -> Mapping[str, Any]:
        return await self.queue.get()

    async def __aiter__(self) -> AsyncIterator[Mapping[str, Any]]:
        while True:
            yield await self.queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class ConsoleBus:
    name = ChannelName.CONSOLE

    def __init__(self) -> None:
        self._subs: list[Subscription] = []

    def subscribe(self, regions: Iterable[str] | None = None, maxsize: int = 1000) -> Subscription:
        sub = Subscription(self, frozenset(regions) if regions is not None else None, maxsize)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def publish(self, region: str, item: Mapping[str, Any]) -> int:
        """Hand ``item`` to every subscriber watching ``region``; returns how many."""
        n = 0
        for sub in list(self._subs):
            if sub.regions is None or region in sub.regions:
                sub.offer(item)
                n += 1
        return n

    async def send(self, message: Message) -> Delivered:
        n = self.publish(message.address, {**message.payload, "notification_id": message.notification_id})
        return Delivered(None, f"{n} console(s) watching", reached=n > 0)
