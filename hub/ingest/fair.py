"""Which received message the ingest stores next, and which it sheds. Pure: no I/O, no clock.

One gateway's flood must cost only that gateway (DESIGN.md rule 10). Before this, the hub
served everything first come, first served: a gateway publishing 20,000 QoS 1 events put
every other home's alarm behind them (stored-ack p50 from ~10 ms to 0.4-1.3 s, max
7.6-8.8 s). Now:

* **Classes first.** Life safety, then supervisory (and status: heartbeats feed
  supervision), trouble (and command results), test, telemetry.
* **Round-robin within a class.** Each gateway with something waiting gives one message
  per turn, in a rotating order that carries over from batch to batch.
* **A bound per gateway per batch** (``per_gateway``): however much one gateway has
  waiting, a batch holds at most that many of its messages, and only one of a gateway
  holding more than ``heavy_at`` (far more than the edge keeps in flight), and none of a
  rank in which another gateway has something waiting. A flood, even of smoke events
  (which are never shed), is cut into single messages in batches of their own: another
  home's first alarm is in the very next batch, among its first entries (the alarm
  engine decides the first 16 life-safety events of a batch inside its transaction), and
  that batch holds none of the flood's messages (each life-safety event is decided in its
  batch's transaction: the flooder's share of a batch would be the other homes' wait).
* **Shedding under memory pressure, never life safety.** Past ``max_pending`` messages
  held, what is not life safety is refused (``shed_overload``); from ``pressure_at`` on,
  a gateway already holding ``gateway_pending`` messages has more refused
  (``shed_gateway``): the flooding gateway pays first. A shed message is not acked, so the
  gateway resends it later: deferred, not lost.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

import orjson

from protocols import AlarmClass, Channel, EventKind, class_of
from protocols.codec import LIMITS

T = TypeVar("T")


class Rank(enum.IntEnum):
    """Lower is served first."""

    LIFE_SAFETY = 0
    SUPERVISORY = 1
    TROUBLE = 2
    TEST = 3
    TELEMETRY = 4


_OF_CLASS = {
    AlarmClass.ALARM: Rank.LIFE_SAFETY,
    AlarmClass.SUPERVISORY: Rank.SUPERVISORY,
    AlarmClass.TROUBLE: Rank.TROUBLE,
    AlarmClass.TEST: Rank.TEST,
}
_OF_CHANNEL = {"status": Rank.SUPERVISORY, "result": Rank.TROUBLE, "telemetry": Rank.TELEMETRY}
_EVENT_LIMIT = LIMITS[Channel.EVENT]


def rank_of(channel: str, payload: bytes) -> Rank:
    """The rank of a received message, from its channel and, for an event, its ``kind``.

    A peek, not validation (that comes later, in a batch): an event whose kind cannot be
    read here ranks as *test*, the last of the events. It will be rejected anyway, and a
    payload that merely claims a life-safety kind gains nothing its gateway could not have
    by sending real smoke events, which the per-gateway bound already holds in check."""
    if channel != "event":
        return _OF_CHANNEL.get(channel, Rank.TEST)
    if len(payload) > _EVENT_LIMIT:
        return Rank.TEST
    try:
        kind = orjson.loads(payload).get("kind")
        return _OF_CLASS[class_of(EventKind(kind))]
    except (orjson.JSONDecodeError, AttributeError, ValueError):
        return Rank.TEST


def gateway_of(topic: str) -> str:
    """The gateway id of an uplink topic ``safehome/v1/gw/{gw}/{channel}`` ("" if none).
    The broker's ACL lets a gateway publish only under its own id, so this is who sent it."""
    parts = topic.split("/")
    return parts[3] if len(parts) == 5 else ""


class Admit(enum.Enum):
    ADMITTED = "admitted"
    SHED_OVERLOAD = "shed_overload"  #: the queue holds max_pending messages
    SHED_GATEWAY = "shed_gateway"  #: under pressure, and this gateway holds its share


@dataclass(frozen=True)
class Bounds:
    #: messages held at most, apart from life safety (which is never shed)
    max_pending: int
    #: from this many held on, a gateway holding ``gateway_pending`` gets no more in
    pressure_at: int
    gateway_pending: int

    @classmethod
    def of(cls, max_pending: int, gateway_pending: int) -> Bounds:
        return cls(max_pending, max_pending // 2, gateway_pending)


class FairQueue(Generic[T]):
    """Messages waiting to be stored, per rank and per gateway (see the module docstring)."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self._queues: list[dict[str, deque[T]]] = [{} for _ in Rank]
        #: per rank, the gateways with messages of that rank, in their round-robin order
        self._rings: list[deque[str]] = [deque() for _ in Rank]
        self._held: dict[str, int] = {}
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def held(self, gateway: str) -> int:
        """Messages of ``gateway`` waiting."""
        return self._held.get(gateway, 0)

    def admit(self, gateway: str, rank: Rank) -> Admit:
        """Would a message of ``gateway`` of ``rank`` be taken in now?"""
        if rank is Rank.LIFE_SAFETY:
            return Admit.ADMITTED
        b = self.bounds
        if self._len >= b.max_pending:
            return Admit.SHED_OVERLOAD
        if self._len >= b.pressure_at and self._held.get(gateway, 0) >= b.gateway_pending:
            return Admit.SHED_GATEWAY
        return Admit.ADMITTED

    def offer(self, gateway: str, rank: Rank, item: T) -> Admit:
        """Queue ``item`` unless it is to be shed; what was decided."""
        verdict = self.admit(gateway, rank)
        if verdict is Admit.ADMITTED:
            q = self._queues[rank].get(gateway)
            if q is None:
                q = self._queues[rank][gateway] = deque()
                self._rings[rank].append(gateway)
            q.append(item)
            self._held[gateway] = self._held.get(gateway, 0) + 1
            self._len += 1
        return verdict

    def head_rank(self) -> Rank | None:
        """The most urgent rank waiting."""
        for rank in Rank:
            if self._rings[rank]:
                return rank
        return None

    def take(
        self,
        limit: int,
        per_gateway: int,
        ranks: tuple[Rank, ...] = tuple(Rank),
        heavy_at: int | None = None,
    ) -> list[T]:
        """Up to ``limit`` messages of ``ranks``, most urgent rank first, round-robin across
        gateways within a rank, at most ``per_gateway`` of any one gateway. A gateway holding
        more than ``heavy_at`` (None: no such gateway) is *heavy*: it gives at most one
        message per batch, and none of a rank in which another gateway has a message
        waiting (that batch, and the alarm in it, does not wait for the flood's message to
        be stored and decided)."""
        out: list[T] = []
        taken: dict[str, int] = {}
        for rank in ranks:
            ring, queues = self._rings[rank], self._queues[rank]
            heavy = {g for g in ring if heavy_at is not None and self._held[g] > heavy_at}
            light_waiting = len(heavy) < len(ring)
            served: list[str] = []  #: reached their bound: back at the end of the ring
            while ring and len(out) < limit:
                gw = ring.popleft()
                n = taken.get(gw, 0)
                bound = (0 if light_waiting else 1) if gw in heavy else per_gateway
                if n >= bound:
                    served.append(gw)
                    continue
                q = queues[gw]
                out.append(q.popleft())
                taken[gw] = n + 1
                if q:
                    ring.append(gw)
                else:
                    del queues[gw]
            ring.extend(served)
            if len(out) >= limit:
                break
        for gw, n in taken.items():
            left = self._held[gw] - n
            if left:
                self._held[gw] = left
            else:
                del self._held[gw]
        self._len -= len(out)
        return out


class FloodWatch:
    """Which gateways send more than a plausible home: more than ``limit`` messages in any
    ``window_s`` (a sliding-window counter: the previous window weighted by how much of it
    still overlaps, plus the current one). A gateway that was flooding has calmed once the
    count is at most half the limit (hysteresis: a rate hovering at the limit does not flap).

    A home sends a heartbeat every 30 s and a telemetry batch a minute, about 0.05
    messages/s; after an outage it replays its backlog as fast as the hub acks (16 in
    flight), a day's telemetry being 1,440 messages. The default limit (6,000 a minute)
    is far above both; a 20,000-event flood crosses it within a second."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        #: gateway -> [start of its current window, count in the previous one, in this one]
        self._counts: dict[str, list[float]] = {}
        self.flooding: set[str] = set()
        self._pruned = 0.0

    def rate(self, gateway: str, now: float) -> float:
        """Messages counted in the sliding window that ends ``now``."""
        c = self._counts.get(gateway)
        if c is None:
            return 0.0
        self._roll(c, now)
        overlap = max(0.0, 1.0 - (now - c[0]) / self.window_s)
        return c[1] * overlap + c[2]

    def observe(self, gateway: str, now: float, n: int = 1) -> bool:
        """Count ``n`` messages of ``gateway``; True if this makes it a flooding gateway."""
        c = self._counts.get(gateway)
        if c is None:
            c = self._counts[gateway] = [now, 0.0, 0.0]
        elif now - c[0] >= self.window_s:
            self._roll(c, now)
        c[2] += n
        if gateway in self.flooding:
            return False
        if c[1] * max(0.0, 1.0 - (now - c[0]) / self.window_s) + c[2] > self.limit:
            self.flooding.add(gateway)
            return True
        return False

    def adopt(self, gateway: str) -> None:
        """Treat ``gateway`` as flooding (an open condition found at start): restored once calm."""
        self.flooding.add(gateway)

    def calmed(self, now: float) -> list[str]:
        """Flooding gateways whose rate fell to half the limit: no longer flooding."""
        out = sorted(g for g in self.flooding if self.rate(g, now) <= self.limit / 2)
        self.flooding.difference_update(out)
        if now - self._pruned >= self.window_s:  # forget the quiet ones, once a window
            self._pruned = now
            self._counts = {
                g: c for g, c in self._counts.items() if g in self.flooding or now - c[0] < 2 * self.window_s
            }
        return out

    def _roll(self, c: list[float], now: float) -> None:
        if now - c[0] < self.window_s:
            return
        windows = int((now - c[0]) // self.window_s)
        c[1] = c[2] if windows == 1 else 0.0
        c[2] = 0.0
        c[0] += windows * self.window_s
