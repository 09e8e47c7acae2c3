"""The alarm event feed: the alarms' history table read in id order, for the live stream.

Every history line (raise, acknowledge, escalate, restore…) is a row of
``alarm_transitions`` with a global, increasing ``id``: the stream's event id. Any hub
worker can serve a stream from it, and a client that reconnects (to the same worker or
another) with ``Last-Event-ID`` gets every line after that id: the table, not a worker's
memory, is what makes the resume gap-free.

One subtlety: ids are drawn when a row is inserted, not when its transaction commits. On
SQLite there is one writer at a time, so a row with a higher id is never visible before a
lower one (a missing id was rolled back for good). On PostgreSQL two transactions can
commit out of id order, so a reader that sees ids 7 and 9 but not 8 must not move past 7
until 8's transaction has ended: :class:`Tail` holds at such a gap for at least
``GAP_MIN_S`` (the instant between a sequence value being drawn and its transaction
getting an id), then until every transaction *of this database* that was writing at that
moment has ended. Other databases on the same server do not count (a busy neighbour's
writer used to stall every console's feed). A writer of this database that stays open
longer than ``GAP_MAX_S`` (a bulk import in one transaction) does not stall the feed
either: the tail moves on, logs it, counts it in ``gaps_given_up``, and keeps looking for
the skipped ids for ``LATE_KEEP_S``; a line that commits late is delivered then, after
lines with higher ids (its id tells the client where it belongs).

Cheap under a storm: a poll reads the new ids only (the primary key index), then the new
rows of the reader's region, at most ``BATCH`` at a time; nothing is re-read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.orm import Session

from hub.alarms.engine.actions import event_payload
from hub.alarms.store.models import Alarm, AlarmTransition

BATCH = 500
#: a gap on PostgreSQL is held at least this long (covers the instant between a sequence
#: value being drawn and its transaction getting an id)
GAP_MIN_S = 1.0
#: ... and at most this long for a writer of this database that stays open
GAP_MAX_S = 5.0
#: ids skipped after GAP_MAX_S are looked for this long (a line committed later is delivered)
LATE_KEEP_S = 600.0

log = logging.getLogger(__name__)

#: transactions of this database (other than the reader's own) that hold a transaction id:
#: the writers that may still fill a gap. Rows of other roles' sessions show no xid to a
#: non-superuser; the hub's own workers share its role, and only they write history lines.
_WRITERS = text(
    "SELECT backend_xid::text FROM pg_stat_activity"
    " WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
)


def _writers(session: Session) -> frozenset[str]:
    return frozenset(str(x) for x in session.scalars(_WRITERS))


def head(session: Session) -> int:
    """The id of the newest line (0 for none): where a new stream without a resume starts."""
    return int(session.scalar(select(func.max(AlarmTransition.id))) or 0)


@dataclass
class Tail:
    """One reader's position in the feed (``position``: last id delivered or skipped)."""

    position: int
    monotonic: Callable[[], float] = time.monotonic
    #: gaps this tail gave up waiting for (a writer open longer than GAP_MAX_S)
    gaps_given_up: int = 0
    #: (first missing id, seen at, writers it waits for: None until GAP_MIN_S has passed)
    _gap: tuple[int, float, frozenset[str] | None] | None = field(default=None, repr=False)
    #: skipped ids still looked for → when they were skipped
    _late: dict[int, float] = field(default_factory=dict, repr=False)
    #: writers that outlived GAP_MAX_S: not waited for again
    _ignored: set[str] = field(default_factory=set, repr=False)

    def poll(self, session: Session, scope: ColumnElement[bool]) -> list[tuple[int, dict[str, Any]]]:
        """The next lines of ``scope`` (an alarm condition) as (id, event), in id order
        (a late line, see the module's docstring, comes first)."""
        late = self._late_lines(session, scope)
        ids = list(
            session.scalars(
                select(AlarmTransition.id)
                .where(AlarmTransition.id > self.position)
                .order_by(AlarmTransition.id)
                .limit(BATCH)
            )
        )
        if not ids:
            return late
        upto = self._safe_upto(session, ids)
        if upto <= self.position:
            return late
        rows = session.execute(
            select(AlarmTransition, Alarm)
            .join(Alarm, Alarm.id == AlarmTransition.alarm_id)
            .where(AlarmTransition.id > self.position, AlarmTransition.id <= upto, scope)
            .order_by(AlarmTransition.id)
        ).all()
        self.position = upto
        return late + [(line.id, event_payload(alarm, line)) for line, alarm in rows]

    def _late_lines(self, session: Session, scope: ColumnElement[bool]) -> list[tuple[int, dict[str, Any]]]:
        if not self._late:
            return []
        now = self.monotonic()
        for i in [i for i, at in self._late.items() if now - at > LATE_KEEP_S]:
            del self._late[i]
        committed = list(
            session.scalars(select(AlarmTransition.id).where(AlarmTransition.id.in_(list(self._late))))
        )
        for i in committed:  # delivered now if in scope, never looked for again
            del self._late[i]
        if not committed:
            return []
        rows = session.execute(
            select(AlarmTransition, Alarm)
            .join(Alarm, Alarm.id == AlarmTransition.alarm_id)
            .where(AlarmTransition.id.in_(committed), scope)
            .order_by(AlarmTransition.id)
        ).all()
        return [(line.id, event_payload(alarm, line)) for line, alarm in rows]

    def _safe_upto(self, session: Session, ids: list[int]) -> int:
        """The highest id up to which no line can still appear."""
        expected = self.position + 1
        for i in ids:
            if i != expected:
                settled = self._gap_settled(session, expected)
                if settled is None:
                    return expected - 1
                if not settled:  # given up: look for the skipped ids later
                    now = self.monotonic()
                    self._late.update((m, now) for m in range(expected, i))
                    self.gaps_given_up += 1
            expected = i + 1
        self._gap = None
        return ids[-1]

    def _gap_settled(self, session: Session, missing: int) -> bool | None:
        """True: the gap is for good; False: given up waiting; None: hold."""
        if session.get_bind().dialect.name != "postgresql":
            return True  # one writer at a time: a missing id was rolled back
        now = self.monotonic()
        if self._gap is None or self._gap[0] != missing:
            self._gap = (missing, now, None)
            return None
        _, seen, waiting = self._gap
        if now - seen < GAP_MIN_S:
            return None
        running = _writers(session)
        self._ignored &= running  # ended: forget them
        waiting = (running if waiting is None else waiting & running) - self._ignored
        if not waiting:
            self._gap = None
            return True
        if now - seen < GAP_MAX_S:
            self._gap = (missing, seen, waiting)
            return None
        log.warning(
            "event feed: id %d still missing after %.0f s: %d writer(s) of this database open"
            " that long; moving on, the line is delivered late if it commits",
            missing,
            now - seen,
            len(waiting),
        )
        self._ignored |= waiting
        self._gap = None
        return False
