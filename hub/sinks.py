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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from hub.db.state import ConditionKind, ConditionState
from protocols import Event, Telemetry

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: What a :class:`TransactionalSink` wants run once the ingest's transaction committed.
AfterCommit = Callable[[], None]


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event stored for the first time."""

    event: Event
    received_at: dt.datetime
    #: already decided in the transaction that stored it (by the transactional sink): the
    #: sinks are told of it all the same, the alarm engine does not decide it again
    decided: bool = False


@dataclass(frozen=True, slots=True)
class Decided:
    """What a :class:`TransactionalSink` decided inside the storing transaction."""

    event_ids: frozenset[str]  #: these reach ``events_stored`` with ``decided=True``
    after_commit: AfterCommit  #: run once the transaction committed, before the acks


@dataclass(frozen=True, slots=True)
class ConditionChange:
    """A condition (``hub.db.state.Condition`` row) that was opened or restored just now."""

    condition_id: int
    kind: ConditionKind
    state: ConditionState
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


@runtime_checkable
class TelemetrySink(Protocol):
    """Optional second face of a sink: told of telemetry after it was stored and acked."""

    async def telemetry_stored(self, batches: Sequence[tuple[Telemetry, dt.datetime]]) -> None:
        """Stored telemetry messages with their receive time. Must return quickly."""
        ...


@runtime_checkable
class TransactionalSink(Protocol):
    """Optional third face of a sink: decide some newly stored events inside the very
    transaction that stores them (the alarm engine does so for life-safety events, so that
    receipt, decision, routing and the claim of the first notifications take one write
    transaction instead of three). The ingest runs it in a SAVEPOINT and counts and logs
    a failure: the events are committed and acked whatever it does. It returns which events
    it decided and what to run after the commit, before the acks go out; the events it
    decided are still passed to ``events_stored`` afterwards, marked ``decided``."""

    def decide_in_transaction(self, session: Session, events: Sequence[NewEvent]) -> Decided | None: ...
