"""``gateway_flooding``: a gateway sending far more than a plausible home is a supervisory
condition, opened when its rate crosses ``[hub.ingest] flood_max_messages`` per
``flood_window_s`` and restored when it falls to half of that. The counting is
:class:`hub.ingest.fair.FloodWatch` (pure); this is its I/O shell: the condition rows and
the sinks (the alarm engine raises the supervisory alarm from them).

Each ingest process counts what it receives. A process restores only what its own lanes
could see: the condition's detail carries the lanes (``[lanes: priority]``), and at start a
process adopts the open conditions carrying its own, so that a restart mid-flood still
restores them once the gateway has calmed.

The broker's rate limit (hub/broker/plugin/safehome_ratelimit.c) refuses most of a flood
before the hub sees it; its notices (``{"gw": …, "shed": n}``) count here like received
messages, so the condition opens and restores the same way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.db.errors import StoreError
from hub.db.state import Condition, ConditionKind, ConditionState
from hub.ingest.fair import FloodWatch
from hub.metrics import HubMetrics
from hub.sinks import ConditionChange, EventSink
from hub.supervision.conditions import open_condition, restore_condition
from hub.threads import ThreadWork

log = logging.getLogger(__name__)
KIND = ConditionKind.GATEWAY_FLOODING
#: what a notice's gateway id may look like (ids are checked when issued; this only keeps a
#: malformed notice out of the counters and the condition's detail)
_GATEWAY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: more refused in one notice than this is malformed (the plugin sends one a second)
MAX_SHED_PER_NOTICE = 10_000_000


def parse_shed_notice(payload: bytes) -> tuple[str, int] | str:
    """``(gateway, refused)`` of a rate-limit notice, or what is wrong with it."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    if not isinstance(doc, dict):
        return "not a JSON object"
    gw, shed = doc.get("gw"), doc.get("shed")
    if not isinstance(gw, str) or not _GATEWAY_ID.fullmatch(gw):
        return f"gw {gw!r} is not a gateway id"
    if not isinstance(shed, int) or isinstance(shed, bool) or not 0 <= shed <= MAX_SHED_PER_NOTICE:
        return f"shed {shed!r} is not a count between 0 and {MAX_SHED_PER_NOTICE:,}"
    return gw, shed


class FloodAlarms:
    def __init__(
        self,
        watch: FloodWatch,
        lanes: Sequence[str],
        session_factory: sessionmaker[Session],
        metrics: HubMetrics,
        sinks: list[EventSink],
        threads: ThreadWork,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.watch = watch
        self.tag = f"[lanes: {'+'.join(sorted(lanes))}]"
        self.factory = session_factory
        self.metrics = metrics
        self.sinks = sinks  # shared with the ingest: sinks added later are seen
        self._threads = threads
        self.clock = clock
        self.wall = wall
        self._pending: set[asyncio.Task[None]] = set()

    def observe(self, gateway: str, n: int = 1) -> None:
        """Count ``n`` received (or broker-refused) messages of ``gateway`` (called for every
        message: cheap)."""
        now = self.clock()
        if self.watch.observe(gateway, now, n):
            rate = self.watch.rate(gateway, now)
            self._spawn(self._record(gateway, True, f"{rate:.0f} messages in {self.watch.window_s:g} s"))

    async def run(self) -> None:
        """Adopt this process's open conditions, then restore calmed gateways every second."""
        try:
            for gw in await self._threads.run(self._open_ones):
                self.watch.adopt(gw)
        except StoreError as exc:
            log.error(
                "open gateway_flooding conditions not read (they are restored by a later start): %s", exc
            )
        while True:
            await asyncio.sleep(min(1.0, self.watch.window_s / 10))
            now = self.clock()
            for gw in self.watch.calmed(now):
                rate = self.watch.rate(gw, now)
                await self._record(gw, False, f"calmed: {rate:.0f} messages in {self.watch.window_s:g} s")

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def _open_ones(self) -> list[str]:
        try:
            with self.factory() as session:
                rows = session.execute(
                    select(Condition.gateway_id, Condition.detail).where(
                        Condition.kind == KIND.value, Condition.state == ConditionState.OPEN.value
                    )
                ).all()
        except Exception as exc:
            raise StoreError(f"reading open {KIND.value} conditions failed: {exc}") from exc
        return [gw for gw, detail in rows if gw and (detail or "").endswith(self.tag)]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name="ingest-flooding")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _record(self, gateway: str, opening: bool, what: str) -> None:
        limit = f"limit {self.watch.limit} per {self.watch.window_s:g} s"
        detail = f"gateway {gateway} sent {what} ({limit}) {self.tag}"
        fn = open_condition if opening else restore_condition
        at = self.wall()

        def write() -> ConditionChange | None:
            with self.factory() as session, session.begin():
                return fn(session, KIND, gateway, None, at, detail)

        try:
            change = await self._threads.run(write)
        except Exception:
            # Not recorded: undo the watch's step so that the next message (or tick) tries again.
            self.metrics.store_errors.labels("condition").inc()
            log.exception(
                "condition gateway_flooding %s for %s not recorded", "open" if opening else "restore", gateway
            )
            if opening:
                self.watch.flooding.discard(gateway)
            else:
                self.watch.adopt(gateway)
            return
        log.warning("gateway_flooding %s: %s", "open" if opening else "restored", detail)
        if change is None:
            return  # another worker (or an earlier run) got there first
        self.metrics.conditions.labels(change.kind, change.state).inc()
        for sink in self.sinks:
            try:
                await sink.conditions_changed([change])
            except Exception:
                self.metrics.sink_errors.labels(type(sink).__name__).inc()
                log.exception("sink %s failed on gateway_flooding", type(sink).__name__)
