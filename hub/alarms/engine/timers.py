"""Escalation timers: stored with the alarm, fired exactly once by whichever worker gets there.

One transaction per batch claims due timers with a conditional ``UPDATE … RETURNING``
(``FOR UPDATE SKIP LOCKED`` in the picking subquery on PostgreSQL, so workers take
different rows instead of waiting; on SQLite the write lock serialises workers) and in the
same transaction enqueues the escalation's notifications. Crash before commit → nothing
happened and the timer is still pending; after commit → it fired once. A hub restart just
finds the stored timers again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms.classes import priority_of
from hub.alarms.clock import Clock
from hub.alarms.engine.actions import alarm_payload, announce, log_step
from hub.alarms.engine.failsafe import tier_fallback
from hub.alarms.errors import AlarmError
from hub.alarms.escalation import Step, should_fire
from hub.alarms.lifecycle import State
from hub.alarms.metrics import AlarmMetrics
from hub.alarms.routing import DEFAULT_POLICY, RoutingPolicy, dedupe_against, tier_recipients
from hub.alarms.store.models import Alarm, AlarmTimer
from hub.alarms.store.registry import Place, place_of
from hub.db.engine import read_only
from hub.db.errors import RetriesExhausted
from hub.db.tx import RETRYABLE, in_transaction
from hub.notify.dispatch import Dispatch
from hub.notify.enqueue import Outgoing, enqueue
from hub.notify.models import Notification
from protocols import AlarmClass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fired:
    timer_id: int
    alarm_id: str
    step_name: str
    fired: bool  #: False: the alarm had reached the awaited state, the step was skipped
    notifications: int


class TimerWorker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        worker_id: str,
        routing: RoutingPolicy = DEFAULT_POLICY,
        default_district: str | None = None,
        dispatcher: Dispatch | None = None,
        batch: int = 50,
        metrics: AlarmMetrics | None = None,
        place: Callable[..., Place] = place_of,
    ) -> None:
        """``dispatcher``: woken when a step enqueued notifications. ``place``: the registry
        lookup (a seam: tests make it fail)."""
        self.sessions = sessions
        self.clock = clock
        self.worker_id = worker_id
        self.routing = routing
        self.default_district = default_district
        self.dispatcher = dispatcher
        self.batch = batch
        self.metrics = metrics
        self.place = place

    def fire_due(self) -> list[Fired]:
        """Fire every timer due now (in batches); returns what this worker fired."""
        out: list[Fired] = []
        while self._any_due():
            got = self._fire_batch()
            out += got
            if len(got) < self.batch:
                break
        if any(f.notifications for f in out) and self.dispatcher is not None:
            self.dispatcher.wake()
        if self.metrics is not None:
            for f in out:
                self.metrics.timers.labels("fired" if f.fired else "skipped").inc()
        return out

    def _any_due(self) -> bool:
        """A look without the write lock: an idle tick (nearly all of them) then neither
        queues for SQLite's single write lock nor holds it while its process is busy."""
        with self.sessions() as s:
            due = and_(AlarmTimer.status == "pending", AlarmTimer.due_at <= self.clock.now())
            return read_only(s).scalars(select(AlarmTimer.id).where(due).limit(1)).first() is not None

    def _fire_batch(self) -> list[Fired]:
        return in_transaction(self.sessions, self._claim_and_fire)

    def _claim_and_fire(self, s: Session) -> list[Fired]:
        now = self.clock.now()
        due = and_(AlarmTimer.status == "pending", AlarmTimer.due_at <= now)
        pick = select(AlarmTimer.id).where(due).order_by(AlarmTimer.due_at).limit(self.batch)
        if s.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        claimed = (
            s.execute(
                update(AlarmTimer)
                .where(AlarmTimer.id.in_(pick.scalar_subquery()), due)
                .values(status="fired", fired_at=now, fired_by=self.worker_id)
                .returning(AlarmTimer.id)
            )
            .scalars()
            .all()
        )
        fired = []
        for tid in claimed:
            timer = s.get(AlarmTimer, tid)
            assert timer is not None
            fired.append(self._fire(s, timer, now))
        return fired

    def _fire(self, s: Session, timer: AlarmTimer, now: dt.datetime) -> Fired:
        alarm = s.get(Alarm, timer.alarm_id)
        assert alarm is not None
        step = Step(timer.step_name, 1, State(timer.awaits), timer.tier)
        if not should_fire(step, State(alarm.state)):
            timer.status = "skipped"
            return Fired(timer.id, alarm.id, timer.step_name, False, 0)
        # People already told of this alarm are not told again; a webhook subscriber is
        # (the payload differs: alarm.escalated is what it subscribed to learn, once per step)
        already = {
            (c, a)
            for c, a in s.execute(
                select(Notification.channel, Notification.address).where(
                    Notification.alarm_id == alarm.id, Notification.channel != "webhook"
                )
            )
        }
        payload = alarm_payload(alarm, "alarm.escalated")
        try:
            with s.begin_nested():
                place = self.place(s, alarm.gateway_id, alarm.sensor_id or None, self.default_district)
                voice = self.routing.for_class(AlarmClass(alarm.alarm_class)).voice
                tier = dedupe_against(tier_recipients(place.ctx, timer.tier, voice), already)
            payload["address"] = place.address
            outgoing = [Outgoing(r.channel, r.address, r.role, r.tier) for r in tier]
        except RETRYABLE:
            raise
        except Exception as exc:  # noqa: BLE001 - the step still reaches the tier's center, flagged
            error = f"escalation: {type(exc).__name__}: {exc}"[:500]
            outgoing = [o for o in tier_fallback(alarm, timer.tier) if (o.channel, o.address) not in already]
            payload["routing_error"] = error
            log.error(
                "alarm %s escalation %s: registry unusable, fail-safe to the %s center: %s",
                alarm.id,
                timer.step_name,
                timer.tier,
                error,
            )
        line = log_step(s, alarm, "escalate", now, "")
        payload["seq"] = line.seq  # the escalation's own line, written first for its number
        ids = enqueue(s, alarm.id, outgoing, payload, now, priority_of(alarm.kind))
        line.note = f"{timer.step_name}: not {timer.awaits} in time → {timer.tier} ({len(ids)} notified)"
        # webhooks told of this alarm before but not in this tier hear of the step too:
        # their per-alarm sequence stays gap-free
        announce(s, alarm, line, now, skip=frozenset(o.address for o in outgoing if o.channel == "webhook"))
        log.warning("alarm %s escalated to %s (%s)", alarm.id, timer.tier, timer.step_name)
        return Fired(timer.id, alarm.id, timer.step_name, True, len(ids))

    async def run(self, interval_s: float = 1.0) -> None:
        """Fire due timers until :meth:`stop`. A DB hiccup is logged and retried next round."""
        self._stop = asyncio.Event()
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.fire_due)
            except (OperationalError, AlarmError, RetriesExhausted) as exc:
                log.warning("timer worker %s: %s (retrying)", self.worker_id, exc)
            except Exception:  # escalation must outlive any bug: next tick retries
                log.exception("timer worker %s: firing failed (retrying)", self.worker_id)
            try:
                await asyncio.wait_for(self._stop.wait(), interval_s)
            except TimeoutError:
                pass

    def stop(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
