"""The alarm engine: turn a signal (a stored event, a supervisory condition, an analogue
crossing) into a stored alarm decision, routed and with its escalation timers, exactly once.

Each signal has a key (``ev:<event id>``, ``cond:<id>:<state>``); the key is stored with the
decision in one transaction, so a signal handed over twice changes nothing the second time.
Races between hub workers (the same key, two events of one open alarm) end in a unique or
version conflict and are retried from a fresh read.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms.classes import priority_of
from hub.alarms.clock import Clock
from hub.alarms.escalation import DEFAULT_ESCALATION, EscalationPolicy, timers_for
from hub.alarms.lifecycle import State, auto_resolve
from hub.alarms.routing import DEFAULT_POLICY, RoutingPolicy, plan_route
from hub.alarms.rules import (
    AlarmKey,
    Ignore,
    Open,
    OpenAlarm,
    Reading,
    Repeat,
    Restore,
    Signal,
    analogue_signal,
    decide,
)
from hub.alarms.store.actions import alarm_payload, flush_or_conflict, log_step, record
from hub.alarms.store.models import Alarm, AlarmTimer, ProcessedSignal
from hub.alarms.store.registry import Place, overrides_of, place_of
from hub.alarms.store.tx import in_transaction
from hub.notify.channel import Message
from hub.notify.outbox import Handover, Outgoing, enqueue
from hub.provision.service import in_test_mode
from protocols import Event, EventState, new_event_id

log = logging.getLogger(__name__)


def open_key(key: AlarmKey) -> str:
    return "/".join(key)


def event_signal(event: Event, received_at: dt.datetime) -> tuple[Signal, str]:
    """The signal of a stored protocol event, timed by the hub's clock (device clocks drift)."""
    return Signal(
        event.gw, event.sensor, event.kind.value, event.state, received_at, event.id
    ), f"ev:{event.id}"


def condition_signal(
    condition_id: int,
    gateway_id: str | None,
    sensor_id: str | None,
    kind: str,
    restored: bool,
    at: dt.datetime,
) -> tuple[Signal, str]:
    """The signal of a supervisory condition opened or restored by ingest's supervision."""
    state = EventState.RESTORE if restored else EventState.ALARM
    return (
        Signal(gateway_id or "", sensor_id, kind, state, at, None, source="condition"),
        f"cond:{condition_id}:{state.value}",
    )


@dataclass(frozen=True, slots=True)
class Processed:
    decision: str  #: open | repeat | restore | ignore | duplicate | test
    alarm_id: str | None = None
    notifications: int = 0
    detail: str = ""


class AlarmEngine:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        routing: RoutingPolicy = DEFAULT_POLICY,
        escalation: EscalationPolicy = DEFAULT_ESCALATION,
        default_district: str | None = None,
        on_enqueued: Callable[[], None] | None = None,
        retries: int = 8,
        handover: Callable[[], Handover | None] | None = None,
        on_claimed: Callable[[list[Message]], None] | None = None,
    ) -> None:
        """``handover``: a new :class:`Handover` per transaction (or None) to claim the new
        alarm's notifications in its own transaction; ``on_claimed`` gets them after commit."""
        self.sessions = sessions
        self.clock = clock
        self.routing = routing
        self.escalation = escalation
        self.default_district = default_district
        self.on_enqueued = on_enqueued
        self.retries = retries
        self.handover = handover
        self.on_claimed = on_claimed

    def handle(self, signal: Signal, key: str) -> Processed:
        """Process one signal in its own transaction (retried on races with other workers)."""

        def work(s: Session) -> tuple[Processed, Handover | None]:
            ho = self.new_handover()
            return self.process(s, signal, key, ho), ho

        result, ho = in_transaction(self.sessions, work, self.retries)
        self.after_commit(result, ho)
        return result

    def new_handover(self) -> Handover | None:
        return self.handover() if self.handover is not None else None

    def after_commit(self, result: Processed, handover: Handover | None) -> None:
        """Hand over what the committed transaction claimed; wake the outbox for the rest."""
        claimed = handover.messages if handover is not None else []
        if claimed and self.on_claimed is not None:
            self.on_claimed(claimed)
        if result.notifications > len(claimed) and self.on_enqueued is not None:
            self.on_enqueued()

    def handle_reading(self, reading: Reading) -> Processed:
        """An analogue reading (gas %LEL, CO ppm): raise or restore when it crosses its
        threshold with hysteresis; anything else is ignored without touching the database."""
        th = reading.thresholds.get(reading.metric)
        if th is None:
            return Processed("ignore", detail=f"no threshold for {reading.metric}")
        key = f"rd:{reading.gateway_id}:{reading.sensor_id}:{reading.metric}:{int(reading.at.timestamp() * 1000)}"

        def work(s: Session) -> tuple[Processed, Handover | None]:
            current = s.scalars(
                select(Alarm).where(
                    Alarm.open_key == open_key((reading.gateway_id, reading.sensor_id, th.kind))
                )
            ).first()
            signal = analogue_signal(reading, active=current is not None and current.restored_at is None)
            if signal is None:
                return Processed("ignore", current.id if current else None, detail="no threshold crossed"), None
            ho = self.new_handover()
            return self.process(s, signal, key, ho), ho

        result, ho = in_transaction(self.sessions, work, self.retries)
        self.after_commit(result, ho)
        return result

    def process(self, s: Session, signal: Signal, key: str, handover: Handover | None = None) -> Processed:
        """Process one signal inside the caller's transaction (does not commit); a new
        alarm's notifications of the ``handover``'s channels are claimed in it."""
        if s.get(ProcessedSignal, key) is not None:
            return Processed("duplicate", detail=f"{key} already processed")
        now = self.clock.now()
        if signal.state is EventState.ALARM and in_test_mode(s, signal.gateway_id, now):
            # an installer's walk test: the event is stored and shown, never routed to people
            s.add(ProcessedSignal(key=key, processed_at=now, alarm_id=None, decision="test"))
            s.flush()
            return Processed("test", detail=f"gateway {signal.gateway_id} is in test mode")
        current = s.scalars(select(Alarm).where(Alarm.open_key == open_key(signal.key))).first()
        # the full registry lookup only for a new alarm; a repeat or restore needs the overrides
        place = (
            place_of(s, signal.gateway_id, signal.sensor_id, self.default_district)
            if current is None
            else None
        )
        snapshot = (
            OpenAlarm(
                current.id, State(current.state), current.count, current.last_seen_at, current.restored_at
            )
            if current
            else None
        )
        overrides = (
            place.overrides if place is not None else overrides_of(s, current.home_id if current else None)
        )
        decision = decide(signal, snapshot, overrides)
        result: Processed
        if isinstance(decision, Open):
            assert place is not None
            result = self._open(s, signal, decision, place, now, handover)
        elif isinstance(decision, Repeat):
            assert current is not None
            current.count = decision.count
            current.last_seen_at = decision.at
            current.last_event_id = decision.event_id or current.last_event_id
            if decision.reactivated:
                current.restored_at = None
                log_step(s, current, "reactivate", now, f"{signal.kind} active again (#{decision.count})")
            flush_or_conflict(s, current)
            result = Processed("repeat", current.id)
        elif isinstance(decision, Restore):
            assert current is not None
            current.restored_at = decision.at
            log_step(s, current, "restore", now, f"{signal.kind} restored at the {signal.source}")
            if decision.auto_resolve:
                record(
                    s,
                    current,
                    auto_resolve(State(current.state), now, "condition ended before anyone took it"),
                )
            flush_or_conflict(s, current)
            result = Processed("restore", current.id)
        else:
            assert isinstance(decision, Ignore)
            result = Processed(
                "ignore", current.id if current else None, detail=f"{decision.reason}: {decision.detail}"
            )
            log.info("signal %s ignored: %s", key, result.detail)
        s.add(ProcessedSignal(key=key, processed_at=now, alarm_id=result.alarm_id, decision=result.decision))
        s.flush()
        return result

    def _open(
        self, s: Session, signal: Signal, d: Open, place: Place, now: dt.datetime, handover: Handover | None
    ) -> Processed:
        ctx = place.ctx
        shift, recipients = plan_route(d.alarm_class, ctx, d.at, self.routing)
        alarm = Alarm(
            id=new_event_id(int(d.at.timestamp() * 1000)),
            gateway_id=signal.gateway_id,
            sensor_id=signal.sensor_id or "",
            kind=signal.kind,
            alarm_class=d.alarm_class.value,
            priority=d.priority,
            state=State.RAISED.value,
            open_key=open_key(d.key),
            home_id=ctx.home_id,
            workstation_id=ctx.workstation_id,
            subdistrict_id=ctx.subdistrict_id,
            district_id=ctx.district_id,
            device_model=place.device_model,
            location=place.location,
            shift=shift.value,
            raised_at=d.at,
            last_seen_at=d.at,
            count=1,
            event_id=d.event_id,
            last_event_id=d.event_id,
            flags=list(d.flags) + ([] if ctx.registered else ["unregistered_gateway"]),
        )
        s.add(alarm)
        s.flush()  # the unique open_key: a second worker opening the same alarm fails here
        where = f"{signal.gateway_id}/{signal.sensor_id or '-'}"
        log_step(
            s, alarm, "raise", now, f"{signal.kind} at {where} ({shift.value}): {len(recipients)} recipients"
        )
        for t in timers_for(d.alarm_class, d.at, self.escalation):
            s.add(
                AlarmTimer(
                    alarm_id=alarm.id,
                    step_index=t.step_index,
                    step_name=t.step.name,
                    tier=t.step.tier,
                    awaits=t.step.awaits.value,
                    due_at=t.due_at,
                )
            )
        ids = enqueue(
            s,
            alarm.id,
            [Outgoing(r.channel, r.address, r.role, r.tier) for r in recipients],
            alarm_payload(alarm, "alarm.raised", place.address),
            now,
            priority_of(alarm.kind),
            handover,
        )
        return Processed("open", alarm.id, len(ids))
