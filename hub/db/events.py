"""The event store: every event a gateway sent, stored exactly once by its id.

:func:`store_events` is idempotent: the same event id stored twice (a resend, a second
hub worker racing the first) is inserted once. It uses ``INSERT … ON CONFLICT DO NOTHING
RETURNING id`` on both SQLite and PostgreSQL, so the answer "was this new?" comes from
the database itself, under concurrency, in one round trip per chunk. Out-of-order or
repeated ``seq`` values are stored as they come (seq is informative, the id is the key).

The answers are only true once the caller's transaction commits: commit first, then ack.
On :class:`StoreError` (database down, a deadlock with a transaction that locks other rows
first, …) roll back and do not ack: the gateway resends and the next attempt decides.
Events carry no foreign key to the registry, so an alarm from an unregistered gateway is
still stored (and can be surfaced as such) instead of being refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence, Set
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Insert, String, false
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.db.base import Base
from hub.db.dialect import dialect_insert
from hub.db.errors import StoreError
from protocols import Event

#: Rows per INSERT statement (13 parameters each; SQLite allows 32,766 per statement).
CHUNK = 500


class StoredEvent(Base):
    """One row per distinct event id. ``device_ts`` is the gateway's clock (trust it only
    when ``synced`` and not ``clock_suspect``); ``received_at`` the hub's. ``clock_suspect``:
    the device said its clock was synced, but it was far from the hub's (stored as sent,
    flagged; see :mod:`hub.ingest.clock`)."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger())
    sensor_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    alarm_class: Mapped[str] = mapped_column(String(16))
    device_ts: Mapped[dt.datetime]
    synced: Mapped[bool] = mapped_column(Boolean())
    received_at: Mapped[dt.datetime]
    clock_suspect: Mapped[bool] = mapped_column(Boolean(), default=False, server_default=false())
    values: Mapped[dict[str, Any] | None]
    payload: Mapped[dict[str, Any]]

    __table_args__ = (
        Index("ix_events_gateway_id_seq", "gateway_id", "seq"),
        Index("ix_events_gateway_id_received_at", "gateway_id", "received_at"),
        Index("ix_events_received_at", "received_at"),
    )


def event_row(event: Event, received_at: dt.datetime, clock_suspect: bool = False) -> dict[str, Any]:
    """The ``events`` row of a protocol event (plain data, no I/O)."""
    return {
        "id": event.id,
        "gateway_id": event.gw,
        "seq": event.seq,
        "sensor_id": event.sensor,
        "kind": event.kind.value,
        "state": event.state.value,
        "alarm_class": event.alarm_class.value,
        "device_ts": dt.datetime.fromtimestamp(event.ts / 1000, dt.UTC),
        "synced": event.synced,
        "received_at": received_at,
        "clock_suspect": clock_suspect,
        "values": event.values.model_dump(mode="json", exclude_none=True) if event.values else None,
        "payload": event.model_dump(mode="json"),
    }


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> Insert:
    return dialect_insert(session, StoredEvent).values(rows).on_conflict_do_nothing(index_elements=["id"])


def store_events(
    session: Session, events: Sequence[Event], received_at: dt.datetime, clock_suspect: Set[str] = frozenset()
) -> list[bool]:
    """Insert ``events``; for each, True if it was stored now, False if its id was
    already stored (earlier, by another worker, or earlier in this same batch).
    ``clock_suspect``: ids of events whose synced device time is not to be trusted.

    Runs inside the caller's transaction; raises :class:`StoreError` on database errors.
    """
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    new_ids: set[str] = set()
    seen: set[str] = set()
    unique_rows: list[dict[str, Any]] = []
    for ev in events:
        if ev.id not in seen:
            seen.add(ev.id)
            unique_rows.append(event_row(ev, received_at, ev.id in clock_suspect))
    # Insert in id order: two workers storing overlapping batches then take the row locks
    # of conflicting ids in the same order and wait for each other instead of deadlocking.
    unique_rows.sort(key=lambda r: r["id"])
    try:
        for start in range(0, len(unique_rows), CHUNK):
            chunk = unique_rows[start : start + CHUNK]
            stmt = _insert_ignoring_duplicates(session, chunk).returning(StoredEvent.id)
            new_ids.update(session.execute(stmt).scalars())
    except SQLAlchemyError as exc:
        raise StoreError(f"storing {len(unique_rows)} events failed: {exc}") from exc
    answers: list[bool] = []
    for ev in events:
        is_new = ev.id in new_ids
        answers.append(is_new)
        new_ids.discard(ev.id)  # a second copy in the same batch is a duplicate
    return answers
