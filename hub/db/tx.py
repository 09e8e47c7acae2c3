"""Run a unit of work in its own transaction, retried from a fresh read when another
worker won a race: the one retry-in-transaction helper of the hub."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from hub.db.errors import Conflict, RetriesExhausted

T = TypeVar("T")

#: Races that a fresh read resolves: a version conflict (:class:`Conflict`, e.g. someone
#: changed the alarm; a StaleDataError is one that an autoflush hit before the caller's own
#: conflict handling), a unique conflict (someone inserted the same key), SQLite's "database
#: is locked" (only after the busy timeout now: hub transactions begin IMMEDIATE, see
#: hub/db/engine.py).
RETRYABLE = (Conflict, StaleDataError, IntegrityError, OperationalError)


def in_transaction(sessions: sessionmaker[Session], work: Callable[[Session], T], retries: int = 12) -> T:
    """``work(session)`` inside ``BEGIN … COMMIT``; retried from scratch on a lost race.

    ``work`` must decide from what it reads in the session, so that a retry after losing the
    race decides again (and, e.g., refuses "already acknowledged" with a clear reason). After
    ``retries`` lost races: the last :class:`Conflict` itself, or :class:`RetriesExhausted`."""
    last: Exception | None = None
    for attempt in range(retries):
        try:
            with sessions() as s, s.begin():
                return work(s)
        except RETRYABLE as exc:
            last = exc
            # back off before re-reading
            time.sleep(random.uniform(0, min(1.0, 0.005 * 2**attempt)))
    if isinstance(last, Conflict):
        raise last
    raise RetriesExhausted(f"gave up after {retries} conflicting attempts: {last}") from last
