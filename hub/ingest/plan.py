"""Plan one batch: which events to store, which readings to write, what each gateway and
sensor was last seen doing, and the ``rejected`` ack items of what failed validation
(built by ``hub/downlink.py``, like every message to a gateway). Pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hub.downlink import rejected_item
from hub.ingest.clock import ClockWatch, retimed
from hub.ingest.decode import Incoming, Rejected
from hub.timeseries import Point
from protocols import (
    AckItem,
    CommandResult,
    Event,
    GatewayState,
    Status,
    Telemetry,
)
from protocols.messages import AlarmClass


@dataclass
class GatewaySeen:
    last_seen: dt.datetime | None = None  #: None: only the broker spoke for it (Last-Will)
    #: set by status only (None: traffic, which never changes it: see hub.db.state.GatewayState)
    online: bool | None = None
    status: dict[str, Any] | None = None
    last_seq: int | None = None
    retained_only: bool = True  #: only replayed retained status: do not override newer state
    status_at: dt.datetime | None = None  #: hub receipt of the live status (orders status writes)
    clock_offset_s: float | None = None  #: device minus hub time, measured on a live status


@dataclass
class Plan:
    events: list[Event] = field(default_factory=list)
    telemetry: list[Telemetry] = field(default_factory=list)
    results: list[CommandResult] = field(default_factory=list)
    gateways: dict[str, GatewaySeen] = field(default_factory=dict)
    sensors: dict[tuple[str, str], dt.datetime] = field(default_factory=dict)
    rejected_acks: dict[str, list[AckItem]] = field(default_factory=dict)
    #: ids of events and telemetry whose synced device time is not trusted (hub.ingest.clock)
    clock_suspect: set[str] = field(default_factory=set)

    def points(self) -> list[Point]:
        out: list[Point] = []
        for t in self.telemetry:
            out += [
                Point(t.gw, r.sensor, r.metric, r.ts if r.ts is not None else t.ts, r.value)
                for r in t.readings
            ]
        return out


_PRIORITY = {AlarmClass.ALARM: 0, AlarmClass.SUPERVISORY: 1, AlarmClass.TROUBLE: 2, AlarmClass.TEST: 3}


def _seen(plan: Plan, gw: str, at: dt.datetime, seq: int | None) -> GatewaySeen:
    g = plan.gateways.setdefault(gw, GatewaySeen())
    if g.retained_only:  # a replayed retained status seeded it: live traffic is newer news
        g.online, g.status = None, None
    g.last_seen = at  # traffic says nothing of online: it may be older than a Last-Will
    g.retained_only = False
    if seq is not None:
        g.last_seq = seq if g.last_seq is None else max(g.last_seq, seq)
    return g


def _status(plan: Plan, s: Status, retained: bool, at: dt.datetime, clock: ClockWatch | None) -> None:
    g = plan.gateways.setdefault(s.gw, GatewaySeen())
    if retained:
        # A retained status replayed on subscribe says nothing about *now*: it only seeds
        # the state of a gateway the hub has no row for, and never refreshes last-seen.
        if g.retained_only:
            g.online = s.state is GatewayState.ONLINE
            g.status = s.model_dump(mode="json")
        return
    g.retained_only = False
    g.online = s.state is GatewayState.ONLINE
    g.status = s.model_dump(mode="json")
    g.status_at = at
    offset = clock.status_offset(s, at) if clock is not None else None
    if offset is not None:
        g.clock_offset_s = offset
    if s.reason != "lwt":  # the Last-Will is the broker speaking, not the gateway
        g.last_seen = at
        if s.seq is not None:
            g.last_seq = s.seq if g.last_seq is None else max(g.last_seq, s.seq)
        for h in s.sensors:
            if h.ok:
                plan.sensors[(s.gw, h.id)] = at


def make_plan(items: Iterable[Incoming | Rejected], clock: ClockWatch | None = None) -> Plan:
    """Group a batch. Events are ordered alarms first (then arrival order). ``clock``:
    measure device clocks (statuses) and flag messages whose synced time is not to be
    trusted; suspect telemetry is timed by the hub (:func:`hub.ingest.clock.retimed`)."""
    plan = Plan()
    for it in items:
        if isinstance(it, Rejected):
            if it.gateway_id and it.msg_id:
                item = rejected_item(it.msg_id, it.reason, it.field, it.detail)
                plan.rejected_acks.setdefault(it.gateway_id, []).append(item)
            continue
        m, at = it.msg, it.received_at
        if isinstance(m, Event):
            if clock is not None and clock.suspect(m, at):
                plan.clock_suspect.add(m.id)
            plan.events.append(m)
            _seen(plan, m.gw, at, m.seq)
            if m.sensor:
                plan.sensors[(m.gw, m.sensor)] = at
        elif isinstance(m, Telemetry):
            if clock is not None and clock.suspect(m, at):
                plan.clock_suspect.add(m.id)
                m = retimed(m, at)
            plan.telemetry.append(m)
            _seen(plan, m.gw, at, m.seq)
            for r in m.readings:
                plan.sensors[(m.gw, r.sensor)] = at
        elif isinstance(m, Status):
            _status(plan, m, it.retained, at, clock)
        else:
            plan.results.append(m)
            _seen(plan, m.gw, at, m.seq)
    plan.events.sort(key=lambda e: _PRIORITY[e.alarm_class])
    return plan


def _merge(old: GatewaySeen, new: GatewaySeen) -> GatewaySeen:
    """What the database holds after writing live state ``old`` and then live state ``new``."""
    seqs = [s for s in (old.last_seq, new.last_seq) if s is not None]
    return GatewaySeen(
        last_seen=new.last_seen if new.last_seen is not None else old.last_seen,
        online=new.online if new.online is not None else old.online,
        status=new.status if new.status is not None else old.status,
        last_seq=max(seqs) if seqs else None,
        retained_only=False,
        status_at=new.status_at if new.status_at is not None else old.status_at,
        clock_offset_s=new.clock_offset_s if new.clock_offset_s is not None else old.clock_offset_s,
    )


@dataclass
class StateBuffer:
    """Connectivity heard since the last flush (gateway and sensor last-seen, status), merged
    in arrival order. Writing it once a second instead of with every batch keeps the
    ingest's share of the database's single write lock small: a 5,000-gateway recovery
    sends ~25 batches a second, and an alarm transaction waits for each one's lock.

    Written as :func:`hub.ingest.store.store_state` does, the result equals writing every
    batch as it came (tests/hub/ingest/test_state_buffer.py checks this on SQLite).
    """

    #: replayed retained statuses: they only create a row that does not exist yet, so they
    #: are written first, and one that comes after live state of its gateway is moot
    seeds: dict[str, GatewaySeen] = field(default_factory=dict)
    gateways: dict[str, GatewaySeen] = field(default_factory=dict)
    sensors: dict[tuple[str, str], dt.datetime] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.seeds) + len(self.gateways) + len(self.sensors)

    def add(self, gateways: dict[str, GatewaySeen], sensors: dict[tuple[str, str], dt.datetime]) -> None:
        """Merge newer state (a batch's plan) over what is held."""
        for gw, seen in gateways.items():
            if seen.retained_only:
                if gw not in self.gateways and seen.online is not None:
                    self.seeds.setdefault(gw, seen)  # the first one creates the row
                continue
            old = self.gateways.get(gw)
            self.gateways[gw] = seen if old is None else _merge(old, seen)
        for key, at in sensors.items():
            held = self.sensors.get(key)
            if held is None or at > held:
                self.sensors[key] = at

    def take(self) -> StateBuffer:
        """Everything held, leaving the buffer empty."""
        out = StateBuffer(self.seeds, self.gateways, self.sensors)
        self.seeds, self.gateways, self.sensors = {}, {}, {}
        return out

    def put_back(self, older: StateBuffer) -> None:
        """Return a batch whose write failed: it is older than anything added since."""
        newer = self.take()
        for part in (older, newer):
            self.add(part.seeds, {})
            self.add(part.gateways, part.sensors)


@dataclass
class SeenGate:
    """Write a gateway's or sensor's *traffic* last-seen at most once per ``every_s``.

    Supervision only needs last-seen to within a fraction of its grace (a sensor is silent
    after its interval + ``sensor_grace_s``, 60 s by default; a gateway after its heartbeat
    misses + grace), but a recovering neighbourhood refreshes tens of thousands of sensors
    a second, and each flush holds SQLite's single write lock while it writes them. Status
    changes (online, offline, a heartbeat's sensor health) always pass, so does the first
    traffic after an offline. Keyed per gateway and sensor by the time last written, so the
    writes spread out with the traffic instead of coming all at once each window.
    """

    every_s: float
    gateways: dict[str, dt.datetime] = field(default_factory=dict)
    sensors: dict[tuple[str, str], dt.datetime] = field(default_factory=dict)
    _pruned: dt.datetime | None = None

    def admit(self, state: StateBuffer) -> StateBuffer:
        """What of ``state`` to write now (the rest is dropped: already written recently)."""
        every = dt.timedelta(seconds=self.every_s)
        gateways: dict[str, GatewaySeen] = {}
        for gw, g in state.gateways.items():
            traffic_only = g.status is None and g.last_seen is not None
            if traffic_only:
                assert g.last_seen is not None
                if self._recent(self.gateways.get(gw), g.last_seen, every):
                    continue
                self.gateways[gw] = g.last_seen
            elif g.online is True and g.last_seen is not None:
                self.gateways[gw] = g.last_seen
            else:
                self.gateways.pop(gw, None)  # offline (or the broker's word): next traffic passes
            gateways[gw] = g
        sensors: dict[tuple[str, str], dt.datetime] = {}
        for key, at in state.sensors.items():
            if self._recent(self.sensors.get(key), at, every):
                continue
            self.sensors[key] = at
            sensors[key] = at
        seen = [*sensors.values(), *(g.last_seen for g in gateways.values() if g.last_seen is not None)]
        self._prune(max(seen, default=None))
        return StateBuffer(state.seeds, gateways, sensors)

    @staticmethod
    def _recent(written: dt.datetime | None, at: dt.datetime, every: dt.timedelta) -> bool:
        # a clock stepped back (at < written) writes: never gate on a time from the future
        return written is not None and dt.timedelta(0) <= at - written < every

    def forget(self, state: StateBuffer) -> None:
        """``state`` (admitted) was not written after all: let it through next time."""
        for gw in state.gateways:
            self.gateways.pop(gw, None)
        for key in state.sensors:
            self.sensors.pop(key, None)

    def _prune(self, now: dt.datetime | None) -> None:
        """Drop entries older than the window (they gate nothing), once per window."""
        if now is None:
            return
        every = dt.timedelta(seconds=self.every_s)
        if self._pruned is not None and now - self._pruned < every:
            return
        self._pruned = now
        self.gateways = {k: v for k, v in self.gateways.items() if now - v < every}
        self.sensors = {k: v for k, v in self.sensors.items() if now - v < every}
