"""Everything waiting for the hub's Ack: events on disk, telemetry in memory then on disk.

Telemetry is kept in memory first and written to the SD card only when it is still
unacked at the next flush (``telemetry_flush_s``): with a healthy link it is acked within
milliseconds and never touches the disk. A crash loses at most one flush interval of
telemetry; events are on disk (fsynced) before :meth:`add_event` returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from edge.errors import StoreError
from edge.policy import Flight, next_due, plan
from edge.store import LANE_ALARM, LANE_EVENT, LANE_TELEMETRY, Entry, Store

log = logging.getLogger(__name__)

#: unflushed telemetry beyond this is flushed at once (bounds RAM while the link is down)
MEMORY_LIMIT = 500


class Outbox:
    def __init__(
        self, store: Store, *, window: int, newest_first: bool, ack_timeout_s: float, resend_max_s: float
    ) -> None:
        self.store = store
        self.window = window
        self.newest_first = newest_first
        self.ack_timeout_s = ack_timeout_s
        self.resend_max_s = resend_max_s
        self.memory: dict[str, Entry] = {}
        self.flights: dict[str, Flight] = {}
        self.volatile: dict[str, Entry] = {}  #: events the store refused (disk failing)
        #: acked ids whose delete the store refused: kept out of every plan until the delete
        #: goes through (at a flush); resent, they would only be acked again, in a loop
        self.undeleted: set[str] = set()
        self.changed = asyncio.Event()  #: set when something new may be sent
        self.urgent = False  #: an alarm is waiting: the sender should re-plan at once
        self.sent = 0
        self.resent = 0
        self.acked = 0
        #: smoothed send → ack time of messages acked after their first send (Karn: the
        #: ack of a resent message could belong to either copy, so it is not sampled)
        self.srtt_s: float | None = None

    def add_event(self, entry: Entry) -> bool:
        """Record an event durably (fsynced). If the store fails, the event is kept in RAM
        and still delivered (and written again at each flush): never dropped. Returns
        whether it is on disk."""
        durable = True
        try:
            self.store.add_events([entry])  # fsync: durable before anything else happens
        except StoreError as exc:
            log.error("event %s kept in RAM only: %s", entry.id, exc)
            self.volatile[entry.id] = entry
            durable = False
        if entry.lane == LANE_ALARM:
            self.urgent = True
        self.changed.set()
        return durable

    def add_telemetry(self, entry: Entry) -> None:
        self.memory[entry.id] = entry
        if len(self.memory) >= MEMORY_LIMIT:
            self.flush()
        self.changed.set()

    def flush(self) -> int:
        """Write unacked in-memory telemetry (and events the store refused) to disk.

        Returns telemetry rows evicted."""
        if self.undeleted:
            try:
                self.store.remove(sorted(self.undeleted))
                self.undeleted.clear()
            except StoreError as exc:
                log.error("%d acked entries still not deleted: %s", len(self.undeleted), exc)
        if self.volatile:
            try:
                self.store.add_events(list(self.volatile.values()))
                self.volatile.clear()
            except StoreError as exc:
                log.error("%d events still in RAM only: %s", len(self.volatile), exc)
        if not self.memory:
            return 0
        try:
            evicted = self.store.add_telemetry(list(self.memory.values()))
        except StoreError as exc:
            log.error("telemetry flush failed, kept in RAM: %s", exc)
            excess = len(self.memory) - 2 * MEMORY_LIMIT
            for key in sorted(self.memory, key=lambda k: self.memory[k].seq)[: max(0, excess)]:
                del self.memory[key]  # same policy as on disk: oldest telemetry goes first
            return max(0, excess)
        self.memory.clear()
        return evicted

    def ack(self, ids: Iterable[str], now: float | None = None) -> list[str]:
        """The hub stored (or rejected) these ids: forget them. Returns the ids known here.
        With ``now`` (the sender's clock), first-send acks update the ack-time estimate."""
        known: list[str] = []
        on_disk: list[str] = []
        for i in ids:
            f = self.flights.pop(i, None)
            if f is not None and f.attempts == 1 and now is not None:
                sample = max(0.0, now - f.sent)
                self.srtt_s = sample if self.srtt_s is None else 0.8 * self.srtt_s + 0.2 * sample
            if self.memory.pop(i, None) is not None or self.volatile.pop(i, None) is not None:
                known.append(i)
            else:
                on_disk.append(i)
        if on_disk:
            try:
                removed = self.store.remove(on_disk)
            except StoreError as exc:
                log.error("acked entries not deleted (retried at the next flush): %s", exc)
                self.undeleted.update(on_disk)
                removed = len(on_disk)
            if removed:
                known += on_disk  # approximate when some were unknown; used for counting only
        self.acked += len(known)
        if known:
            self.changed.set()
        return known

    def link_down(self) -> None:
        """Forget what is in flight: on reconnect everything is re-planned by priority."""
        self.flights.clear()

    def candidates(self) -> list[Entry]:
        n = self.window + len(self.undeleted)
        try:
            out = self.store.top(LANE_ALARM, n) + self.store.top(LANE_EVENT, n)
            out += self.store.top(LANE_TELEMETRY, n, self.newest_first)
        except StoreError as exc:  # what is in RAM still goes out
            log.error("buffer unreadable, sending from RAM only: %s", exc)
            out = []
        out += list(self.memory.values()) + list(self.volatile.values())
        return [e for e in out if e.id not in self.undeleted] if self.undeleted else out

    def unsend(self, ids: Iterable[str]) -> None:
        """Planned but not published (the sender re-planned for an alarm): not in flight."""
        for i in ids:
            self.flights.pop(i, None)

    def plan(self, now: float) -> list[Entry]:
        self.urgent = False
        before = {fid: f.attempts for fid, f in self.flights.items()}
        out = plan(
            self.candidates(),
            self.flights,
            window=self.window,
            now=now,
            newest_first=self.newest_first,
            base_s=self.ack_timeout_s,
            cap_s=self.resend_max_s,
            floor_s=4 * self.srtt_s if self.srtt_s is not None else 0.0,
        )
        for e in out:
            if e.id in before:
                self.resent += 1
            else:
                self.sent += 1
        return out

    def next_due(self) -> float | None:
        return next_due(self.flights)

    def depth(self) -> int:
        on_disk = max(0, sum(self.store.depth().values()) - len(self.undeleted))
        return on_disk + len(self.memory) + len(self.volatile)

    def alarms_pending(self) -> int:
        in_ram = sum(1 for e in self.volatile.values() if e.lane == LANE_ALARM)
        return self.store.depth().get(LANE_ALARM, 0) + in_ram

    def oldest_created_ms(self) -> int | None:
        values = [e.created_ms for e in self.memory.values()]
        disk = self.store.oldest_created_ms()
        if disk is not None:
            values.append(disk)
        return min(values, default=None)
