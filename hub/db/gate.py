"""SQLite's one write lock, handed out by urgency inside one process.

SQLite lets one transaction write at a time; a writer that finds the lock taken sleeps in
its busy handler (1, 2, 5 … 100 ms) and looks again. Between two of its looks, any other
thread that begins just after a commit takes the lock first: under a storm (the alarm
engine deciding thousands of supervisory alarms in back-to-back batches, the outbox
recording their webhooks, the connectivity flush) the transaction storing a smoke alarm
lost that race for seconds (``safehome bench storm``: "hub batch → webhook queued" p99
2.9 s on a quiet machine).

So every write transaction of one engine first passes this gate (:func:`hub.db.engine.
make_engine` wires it into ``BEGIN``): one writer at a time, and when it commits, the
most urgent waiter goes next, first come first served within an urgency (a background
waiter older than :data:`AGING_S` counts as ingest: never starved). Urgency travels
with the code that writes (:func:`writing_as`, a context variable, so it follows
``asyncio.to_thread``): :data:`LIFE_SAFETY` (a batch storing a smoke, gas or panic event,
its decision), :data:`INGEST` (storing and acking what gateways sent), :data:`BACKGROUND`
(everything else: storm decisions, outbox records, timers, re-checks). The gate only
orders this process's writers; other processes (the telemetry lane's) still meet in
SQLite's busy handler. A holder that keeps the gate longer than :data:`STALE_S` (a
connection lost without its rollback) is presumed gone: the next waiter goes ahead and
SQLite's own lock still keeps writes one at a time.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import threading
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

LIFE_SAFETY = 0
INGEST = 1
BACKGROUND = 2
#: A holder older than this is presumed gone (its waiters go ahead; SQLite still locks).
STALE_S = 10.0
#: A background waiter older than this counts as an ingest one (first come, first served
#: among them; never before life safety): ingest batches that never stop coming must not
#: starve the alarm decisions of a storm. Measured before (``safehome bench storm`` on a
#: loaded host, every supervisory decision in the alarm process): the storm's decisions
#: waited 70 s behind the heartbeat flushes, and the re-check of the other process decided
#: them instead.
AGING_S = 1.0
#: How often a waiter looks whether the holder went stale.
_POLL_S = 0.5

_priority: contextvars.ContextVar[int] = contextvars.ContextVar("safehome_write_priority", default=BACKGROUND)


@contextlib.contextmanager
def writing_as(priority: int) -> Iterator[None]:
    """Write transactions begun inside (this thread or task, and the threads it starts with
    ``asyncio.to_thread``) pass the gate with ``priority`` (lower goes first). An outer,
    more urgent priority is kept."""
    token = _priority.set(min(priority, _priority.get()))
    try:
        yield
    finally:
        _priority.reset(token)


def current_priority() -> int:
    return _priority.get()


class WriteGate:
    """A lock handed to the most urgent waiter (then the earliest); re-entrant per thread."""

    def __init__(self, stale_s: float = STALE_S, aging_s: float = AGING_S) -> None:
        self.stale_s = stale_s
        self.aging_s = aging_s
        self._lock = threading.Lock()
        self._holder: int | None = None  #: thread ident
        self._depth = 0
        self._since = 0.0
        #: (priority, seq, event, thread, since): a few dozen at most (one per thread)
        self._waiting: list[tuple[int, int, threading.Event, int, float]] = []
        self._seq = itertools.count()
        self.granted: list[int] = []  #: tests: the priorities granted after a wait, in order

    def acquire(self, priority: int | None = None) -> int:
        """Wait for the gate; returns the token to :meth:`release` it with."""
        me = threading.get_ident()
        prio = current_priority() if priority is None else priority
        with self._lock:
            if self._holder is None:
                self._grant(me)
                return me
            if self._holder == me:
                self._depth += 1
                return me
            event = threading.Event()
            self._waiting.append((prio, next(self._seq), event, me, time.monotonic()))
        while not event.wait(_POLL_S):
            with self._lock:
                if event.is_set():
                    break
                if self._holder is not None and time.monotonic() - self._since > self.stale_s:
                    log.error("SQLite write gate held for over %.0f s by thread %s: presumed gone, "
                              "the next writer goes ahead", self.stale_s, self._holder)  # fmt: skip
                    self._holder = None
                    self._grant_next()
        return me

    def release(self, token: int) -> None:
        with self._lock:
            if self._holder != token:
                return  # taken over as stale meanwhile
            self._depth -= 1
            if self._depth > 0:
                return
            self._holder = None
            self._grant_next()

    def _grant(self, who: int) -> None:
        self._holder, self._depth, self._since = who, 1, time.monotonic()

    def _grant_next(self) -> None:
        if self._waiting:
            now = time.monotonic()

            def urgency(w: tuple[int, int, threading.Event, int, float]) -> tuple[int, int]:
                aged = w[0] == BACKGROUND and now - w[4] >= self.aging_s
                return (INGEST if aged else w[0], w[1])

            nxt = min(self._waiting, key=urgency)
            self._waiting.remove(nxt)
            prio, _seq, event, who, _since = nxt
            self._grant(who)
            self.granted.append(prio)
            del self.granted[:-100]
            event.set()
