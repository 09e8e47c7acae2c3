"""Several broker addresses and failing over between them (docs/protocol.md §1.1): pure, no I/O.

A client (the edge agent, a simulated gateway, a hub stand-in) knows the addresses of every
node of a clustered broker. It stays on a node while that node works. When an established
link is lost it goes to the next address after a random spread (so that the thousands of
gateways of a dead node do not all land on the next one in the same millisecond), when a
connect fails to the next address within 0.5-2 s, and it backs off only when a whole round
of addresses has failed.

Each client walks the addresses in an order of its own (a permutation seeded by its id):
a district spreads evenly over the nodes, and the gateways of a dead node spread evenly
over the remaining ones, with no coordination and the same order after every restart.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: More addresses than this is a configuration mistake (a cluster has 3 to 7 nodes).
MAX_SERVERS = 16
#: Default delay before the next address of a round: uniform in [0, this] seconds. A gateway
#: whose node died is back on another one within ~2 s plus a connect, well inside the hub's
#: offline_grace_s (10 s) after which its Last-Will would raise ``gateway_offline``.
FAILOVER_SPREAD_S = 2.0
#: The spread a NATS cluster needs (the bundle says it: docs/broker.md section 6). There each
#: login loads and stores the gateway's MQTT session through a replicated JetStream stream,
#: and nats-server 2.9 answers those requests on the client's read loop: the 3,333 gateways of
#: a 10,000-home district's dead node coming back within 2 s on 3 nodes sharing 2 cores timed
#: out their session requests, the two survivors lost quorum, and every gateway fell off
#: (safehome bench cluster --homes 10000 --only nats: 0 of 10,000 connected 60 s after the
#: kill). Within 10 s (~330 logins/s) all were back in 29 s. A gateway with an alarm waiting
#: does not wait for the spread (ALARM_RECONNECT_S).
NATS_FAILOVER_SPREAD_S = 10.0
#: While an alarm waits in the gateway's buffer it reconnects after this many seconds
#: (uniform) instead of the spread or the wide backoff: few gateways have an alarm waiting,
#: and the alarm matters more than the spread.
ALARM_RECONNECT_S = (0.5, 2.0)
#: After a failed connect (nothing listens, the SYNs go unanswered, the TLS handshake or the
#: login fails, no CONNACK in time) the next address of the round is tried after this many
#: seconds (uniform), not after the spread. The spread is for leaving a node that worked: all
#: its gateways lose it in the same instant. Failed connects are already spread out (each
#: ends when its own attempt does), and waiting a spread before each made the tail: on a NATS
#: cluster the survivors fail every login while they elect a new ``$MQTT_sess`` leader
#: (~4-9 s after a node's death), and their login rate guard drops the SYNs above its rate so
#: that many connects time out; with a spread before each next try the last gateways of a
#: dead node came back 20-25 s after the rest (docs/broker.md, "Logins after a node dies").
NEXT_TRY_S = (0.5, 2.0)


@dataclass(frozen=True, slots=True, order=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, default_port: int) -> Address:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; a missing port is ``default_port``.

    Raises ValueError saying what is wrong with ``text``."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty broker address (expected host or host:port)")
    if any(c.isspace() for c in raw) or "/" in raw:
        raise ValueError(f"{text!r} is not host or host:port (no scheme, path or spaces)")
    port_text: str | None = None
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or not host or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r}: an IPv6 address is written [address] or [address]:port")
        port_text = rest[1:] if rest else None
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
    elif ":" in raw:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, e.g. [{raw}]:8883")
    else:
        host = raw
    if not host:
        raise ValueError(f"{text!r}: the host is missing")
    if port_text is None:
        port = default_port
    else:
        if not port_text.isdigit():
            raise ValueError(f"{text!r}: port {port_text!r} is not a number")
        port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is outside 1..65535")
    return Address(host, port)


def parse_servers(texts: Sequence[str], default_port: int) -> tuple[Address, ...]:
    """Every address of the list, checked: 1 to ``MAX_SERVERS`` of them, no repeats.
    ValueError names the entry (by its index) and the limit."""
    if not texts:
        raise ValueError("the list of broker addresses is empty (give at least one host:port)")
    if len(texts) > MAX_SERVERS:
        raise ValueError(f"{len(texts)} broker addresses, at most {MAX_SERVERS}")
    out: list[Address] = []
    for i, t in enumerate(texts):
        try:
            a = parse_address(t, default_port)
        except ValueError as exc:
            raise ValueError(f"[{i}]: {exc}") from None
        if a in out:
            raise ValueError(f"[{i}]: {a} is listed twice")
        out.append(a)
    return tuple(out)


class Rotation:
    """Which address to try next, and how long to wait before trying it.

    ``backoff(rounds)`` is the caller's delay after ``rounds + 1`` full rounds failed in a
    row (0 for the first): the same curve as with one address, where every failure is a
    full round. Call :meth:`up` when a connection is established (the client stays on that
    address) and :meth:`down` when an established link was lost or
    (``connect_failed=True``) a connect attempt failed.
    """

    def __init__(
        self,
        addresses: Sequence[Address],
        key: str,
        backoff: Callable[[int], float],
        *,
        spread_s: float = FAILOVER_SPREAD_S,
        rng: random.Random | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("a rotation needs at least one address")
        self.addresses = tuple(addresses)
        order = list(self.addresses)
        random.Random(key).shuffle(order)  # str seed: the same order in every process
        self.order = tuple(order)
        self.backoff = backoff
        self.spread_s = spread_s
        self.rng = rng or random.Random()
        self.pos = 0
        self.failures = 0  #: connects failed or links lost since the last connection

    @property
    def current(self) -> Address:
        return self.order[self.pos]

    def where(self) -> str:
        """The current address and its place in the list, for logs: ``b:1883 (2 of 3)``."""
        return f"{self.current} ({self.addresses.index(self.current) + 1} of {len(self.addresses)})"

    def up(self) -> None:
        self.failures = 0

    def down(self, *, connect_failed: bool = False) -> float:
        """Move to the next address; returns the delay (seconds) before trying it: after a
        lost link the spread, after a failed connect NEXT_TRY_S, after a full round of
        failures the backoff."""
        n = len(self.order)
        self.failures += 1
        self.pos = (self.pos + 1) % n
        if self.failures % n:  # addresses left to try in this round: go on quickly
            if connect_failed:
                return self.rng.uniform(*NEXT_TRY_S)
            return self.rng.uniform(0.0, self.spread_s)
        return self.backoff(self.failures // n - 1)


def reconnect_delay(attempt: int, min_s: float, max_s: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [min_s, min(max_s, min_s * 2**attempt)]."""
    ceiling = min(max_s, min_s * 2 ** min(attempt, 20))
    return rng.uniform(min_s, max(min_s, ceiling))


#: An alarm in flight on a link this long without its ack: hang up, the link is presumed
#: half-open (docs/protocol.md §1.1). The keep-alive would take 1.5 x 30 s to notice.
ALARM_LINK_TIMEOUT_S = 15.0
#: ... doubled after each such hang-up until an alarm is acked, up to this
ALARM_LINK_TIMEOUT_MAX_S = 120.0


def alarm_link_timeout(base_s: float, hangups: int) -> float:
    """The limit of a link after ``hangups`` hang-ups for an unacked alarm since an alarm was
    last acked: ``base_s`` doubled per hang-up, at most ALARM_LINK_TIMEOUT_MAX_S (or
    ``base_s`` when that is larger)."""
    return float(min(max(base_s, ALARM_LINK_TIMEOUT_MAX_S), base_s * 2.0 ** min(hangups, 10)))


def alarm_reconnect_delay(rng: random.Random) -> float:
    """The reconnect delay while an alarm waits: short, with a small jitter."""
    return rng.uniform(*ALARM_RECONNECT_S)
