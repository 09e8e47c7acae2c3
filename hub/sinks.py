"""The hook through which other hub features (the alarm engine) hear what ingest and
supervision just recorded.

Sinks are called *after* the database commit and after the gateway's ``stored`` ack, once
per newly stored event (never for a duplicate) and once per condition opened or restored
by this worker (the worker whose INSERT/UPDATE won; another worker racing it is not told).
A sink that raises is logged and counted and does not stop the ingest; because a crash
between commit and notification is possible, a sink's owner should also reconcile from
the database when it starts (events and conditions are durable; notification is not).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from protocols import Event


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event stored for the first time."""

    event: Event
    received_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ConditionChange:
    """A condition (``hub.db.state.Condition`` row) that was opened or restored just now."""

    condition_id: int
    kind: str  #: a ``hub.db.state.ConditionKind`` value
    state: str  #: ``open`` or ``restored``
    gateway_id: str | None
    sensor_id: str | None
    at: dt.datetime
    detail: str = ""


@runtime_checkable
class EventSink(Protocol):
    async def events_stored(self, events: Sequence[NewEvent]) -> None:
        """Newly stored events of one batch, alarms first, in arrival order otherwise."""
        ...

    async def conditions_changed(self, changes: Sequence[ConditionChange]) -> None:
        """Conditions opened or restored by this worker."""
        ...
