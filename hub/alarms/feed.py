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
until 8's transaction has ended: :class:`Tail` holds at such a gap until every transaction
that was running when it saw the gap has finished (``txid_snapshot_xmin`` passed the
snapshot's ``xmax`` at that moment) and at least ``GAP_MIN_S`` has passed, then re-reads.

Cheap under a storm: a poll reads the new ids only (the primary key index), then the new
rows of the reader's region, at most ``BATCH`` at a time; nothing is re-read.
"""

from __future__ import annotations

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


def head(session: Session) -> int:
    """The id of the newest line (0 for none): where a new stream without a resume starts."""
    return int(session.scalar(select(func.max(AlarmTransition.id))) or 0)


@dataclass
class Tail:
    """One reader's position in the feed (``position``: last id delivered or skipped)."""

    position: int
    monotonic: Callable[[], float] = time.monotonic
    #: (first missing id, seen at, PostgreSQL xmax when seen) while holding at a gap
    _gap: tuple[int, float, int | None] | None = field(default=None, repr=False)

    def poll(self, session: Session, scope: ColumnElement[bool]) -> list[tuple[int, dict[str, Any]]]:
        """The next lines of ``scope`` (an alarm condition) as (id, event), in id order."""
        ids = list(
            session.scalars(
                select(AlarmTransition.id)
                .where(AlarmTransition.id > self.position)
                .order_by(AlarmTransition.id)
                .limit(BATCH)
            )
        )
        if not ids:
            return []
        upto = self._safe_upto(session, ids)
        if upto <= self.position:
            return []
        rows = session.execute(
            select(AlarmTransition, Alarm)
            .join(Alarm, Alarm.id == AlarmTransition.alarm_id)
            .where(AlarmTransition.id > self.position, AlarmTransition.id <= upto, scope)
            .order_by(AlarmTransition.id)
        ).all()
        self.position = upto
        return [(line.id, event_payload(alarm, line)) for line, alarm in rows]

    def _safe_upto(self, session: Session, ids: list[int]) -> int:
        """The highest id up to which no line can still appear."""
        expected = self.position + 1
        for i in ids:
            if i != expected and not self._gap_settled(session, expected):
                return expected - 1
            expected = i + 1
        self._gap = None
        return ids[-1]

    def _gap_settled(self, session: Session, missing: int) -> bool:
        if session.get_bind().dialect.name != "postgresql":
            return True  # one writer at a time: a missing id was rolled back
        now = self.monotonic()
        if self._gap is None or self._gap[0] != missing:
            xmax = session.scalar(text("SELECT txid_snapshot_xmax(txid_current_snapshot())"))
            self._gap = (missing, now, int(xmax))
            return False
        _, seen, xmax_then = self._gap
        if now - seen < GAP_MIN_S:
            return False
        xmin_now = int(session.scalar(text("SELECT txid_snapshot_xmin(txid_current_snapshot())")))
        if xmax_then is not None and xmin_now < xmax_then:
            return False  # a transaction running when the gap was seen may still fill it
        self._gap = None
        return True
