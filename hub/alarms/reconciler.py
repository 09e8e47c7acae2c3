"""The re-check: stored events and conditions of the window without a decision are decided
(at start and every ``reconcile_every_s``), so that a crash between the ingest's commit and
the sink call loses nothing; and the periodic check of open mass-event incidents.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms.analogue import AnalogueWatch
from hub.alarms.classes import is_life_safety
from hub.alarms.clock import Clock
from hub.alarms.engine.decide import AlarmEngine, condition_signal, event_signal
from hub.alarms.errors import AlarmError
from hub.alarms.rules import Signal
from hub.alarms.settings import AlarmSettings
from hub.alarms.sink import AlarmSink
from hub.alarms.store.models import ProcessedSignal
from hub.db.engine import read_only
from hub.db.errors import DatabaseError, RetriesExhausted
from hub.db.events import StoredEvent
from hub.db.state import Condition
from hub.db.tx import in_transaction
from hub.notify.dispatch import Dispatcher
from protocols import Event, ProtocolError

log = logging.getLogger(__name__)

#: How many periodic re-check rounds in a row may leave the trouble signals to a later round
#: while this worker's inbox is busy: then one decides everything, however busy (with the
#: default 60 s, a trouble signal lost with a crashed worker waits 5 min at most).
MAX_DEFERRED_ROUNDS = 4


class Reconciler:
    def __init__(
        self,
        settings: AlarmSettings,
        sessions: sessionmaker[Session],
        clock: Clock,
        engine: AlarmEngine,
        sink: AlarmSink,
        watch: AnalogueWatch,
        dispatcher: Dispatcher,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.engine = engine
        self.sink = sink
        self.watch = watch
        self.dispatcher = dispatcher

    def reconcile(self, min_age_s: float = 0.0, life_safety_only: bool = False) -> int:
        """Process stored events and conditions of the window that have no decision yet,
        ``batch_max`` per transaction. ``min_age_s``: leave younger signals to the live path
        (the periodic re-check; at start nothing is in flight, so everything counts).
        ``life_safety_only``: decide smoke, gas, panic … and leave the trouble signals (a
        gateway silent, mains lost …) to a later round (see :meth:`run`)."""
        now = self.clock.now()
        since = now - dt.timedelta(seconds=self.settings.reconcile_window_s)
        # A signal stored moments ago is in this or another worker's inbox: in a storm that
        # is thousands (4,000 at 10,000 homes, ``safehome bench storm``). The re-check used
        # to decide each of them again, one transaction and one fsync apiece, in both lane
        # processes, racing the inbox for SQLite's write lock: a round landing mid-storm
        # delayed the storm's decisions by seconds (and more the later it landed).
        until = now - dt.timedelta(seconds=min_age_s)
        todo: list[tuple[Signal, str]] = []
        with self.sessions() as s:
            processed = set(
                read_only(s).scalars(select(ProcessedSignal.key).where(ProcessedSignal.processed_at >= since))
            )
            events = s.execute(
                select(StoredEvent.id, StoredEvent.payload, StoredEvent.received_at)
                .where(StoredEvent.received_at >= since, StoredEvent.received_at <= until)
                .order_by(StoredEvent.received_at)
            ).all()
            conds = s.scalars(
                select(Condition).where((Condition.opened_at >= since) | (Condition.restored_at >= since))
            ).all()
        for eid, payload, received_at in events:
            if f"ev:{eid}" in processed:
                continue
            try:
                ev = Event.model_validate_json(orjson.dumps(payload))
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                log.error(
                    "stored event %s cannot be decoded: %s",
                    eid,
                    ProtocolError("bad_stored_event", str(exc)[:200]),
                )
                continue
            todo.append(event_signal(ev, received_at))
        for c in conds:
            steps = [(False, c.opened_at)] + ([(True, c.restored_at)] if c.restored_at else [])
            for restored, at in steps:
                sig, key = condition_signal(c.id, c.gateway_id, c.sensor_id, c.kind, restored, at)
                if key not in processed and at <= until:
                    todo.append((sig, key))
        if life_safety_only:
            left = len(todo)
            todo = [t for t in todo if is_life_safety(t[0].kind)]
            if left - len(todo):
                log.info("re-check: %d trouble signals left to a later round (this worker is busy)", left - len(todo))
        done = 0
        size = self.settings.batch_max
        for start in range(0, len(todo), size):
            done += self._recheck(todo[start : start + size])
        if done:
            log.warning("re-check turned %d stored signals into alarm decisions", done)
        self.dispatcher.settle_unconfigured(self.sessions)
        return done

    def _recheck(self, batch: list[tuple[Signal, str]]) -> int:
        """One batch of the re-check (one transaction); returns how many were decided. One
        left undecided does not stop the others (the next re-check retries it)."""
        try:
            return len(batch) - len(self.sink.handle_batch(batch))
        except (AlarmError, DatabaseError):
            log.exception("%d stored signals not decided by the re-check; the next one retries", len(batch))
            return 0

    def settle_storms(self) -> int:
        """One check of every open mass-event incident (each in its own transaction): push
        the running count, close the quiet ones. Returns the notifications enqueued."""
        storms = self.engine.storms
        if storms is None:
            return 0
        with self.sessions() as s:
            ids = storms.open_incidents(read_only(s))
        total = 0
        for incident_id in ids:
            now = self.clock.now()

            def work(s: Session, i: str = incident_id, t: dt.datetime = now) -> tuple[str, int]:
                return storms.settle_one(s, i, t, self.engine.route_unfolded)

            total += in_transaction(self.sessions, work)[1]
        if total:
            self.dispatcher.wake()
        return total

    async def run(self, stopping: asyncio.Event) -> None:
        """The periodic re-check. While this worker's own inbox holds signals it is busy
        deciding (after a district-wide outage, thousands of ``gateway_silent`` conditions
        and restores), a round decides only the life-safety signals and leaves the trouble
        ones, at most ``MAX_DEFERRED_ROUNDS`` rounds in a row: deciding those again in every
        worker, while their inboxes still held them, met the district's smoke alarms at the
        database (``safehome bench cluster``: in one of 4 runs of 11 with an alarm p99 of
        8-12 s, the re-checks of both workers decided ~3,300 signals each meanwhile;
        docs/alarms.md, "Exactly once")."""
        deferred = 0
        while True:
            try:
                await asyncio.wait_for(stopping.wait(), self.settings.reconcile_every_s)
                return
            except TimeoutError:
                pass
            busy = not self.sink.inbox.empty() and deferred < MAX_DEFERRED_ROUNDS
            deferred = deferred + 1 if busy else 0
            try:
                await asyncio.to_thread(self.reconcile, self.settings.reconcile_min_age_s, busy)
                await asyncio.to_thread(self.watch.refresh)
            except Exception:  # a database blip must not end the re-check for good
                log.exception("alarm re-check failed; next round retries")

    async def run_storms(self, stopping: asyncio.Event) -> None:
        every = self.settings.storm.update_every_s
        while True:
            try:
                await asyncio.wait_for(stopping.wait(), every)
                return
            except TimeoutError:
                pass
            try:
                await asyncio.to_thread(self.settle_storms)
            except (AlarmError, RetriesExhausted):
                log.exception("mass-event check failed; next round retries")
