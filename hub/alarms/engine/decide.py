"""The alarm engine: turn a signal (a stored event, a supervisory condition, an analogue
crossing) into a stored alarm decision, routed and with its escalation timers, exactly once.

Each signal has a key (``ev:<event id>``, ``cond:<id>:<state>``); the key is stored with the
decision in one transaction, so a signal handed over twice changes nothing the second time.
Races between hub workers (the same key, two events of one open alarm) end in a unique or
version conflict and are retried from a fresh read. Any other failure of a decision step
(registry, rules, routing, escalation, notify) ends in the fail-safe alarm
(``failsafe.py``): never a traceback instead of a decision.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms.classes import priority_of
from hub.alarms.clock import Clock
from hub.alarms.engine.actions import add_timers, alarm_payload, flush_or_conflict, log_step, record
from hub.alarms.engine.failsafe import open_failsafe
from hub.alarms.engine.storms import StormDesk
from hub.alarms.errors import DecisionFailed, Undecided, database_away, error_text
from hub.alarms.escalation import DEFAULT_ESCALATION, EscalationPolicy, timers_for
from hub.alarms.lifecycle import State, auto_resolve
from hub.alarms.routing import DEFAULT_POLICY, Recipient, RoutingPolicy, plan_route
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
from hub.alarms.schedule import Shift
from hub.alarms.store.models import Alarm, AlarmTimer, ProcessedSignal
from hub.alarms.store.registry import Place, overrides_of, place_of, prefetch
from hub.alarms.storm import Join, OpenIncident
from hub.db.tx import RETRYABLE, in_transaction
from hub.notify.dispatch import Dispatch
from hub.notify.enqueue import Handover, Outgoing, enqueue
from hub.provision.service import in_test_mode
from protocols import AlarmClass, Event, EventState, new_event_id

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Retries of the fail-safe transaction itself (a lock held briefly by another worker).
FAILSAFE_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Steps:
    """The decision steps, as a seam: fault-injection tests replace one with a function
    that raises and check that the fail-safe alarm follows."""

    place: Callable[..., Place] = place_of  #: (session, gateway, sensor, default district)
    overrides: Callable[..., Any] = overrides_of  #: (session, home id) → HomeOverrides
    decide: Callable[..., Any] = decide  #: (signal, open alarm, overrides) → Decision
    route: Callable[..., Any] = plan_route  #: (class, context, at, policy) → (shift, recipients)
    timers: Callable[..., Any] = timers_for  #: (class, raised at, policy) → [TimerSpec]
    notify: Callable[..., list[str]] = enqueue  #: outbox.enqueue


def _step(name: str, fn: Callable[..., T], *args: Any) -> T:
    """Run one decision step; a lost race propagates (it is retried), anything else is
    the step's failure."""
    try:
        return fn(*args)
    except RETRYABLE:
        raise
    except Exception as exc:
        raise DecisionFailed(name, exc) from exc


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
    decision: str  #: open | fold (a mass-event member) | repeat | restore | ignore | duplicate | test | failsafe | restore_failed
    alarm_id: str | None = None
    notifications: int = 0
    detail: str = ""
    failed_step: str | None = None  #: the decision step that raised (failsafe, restore_failed)


class AlarmEngine:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        routing: RoutingPolicy = DEFAULT_POLICY,
        escalation: EscalationPolicy = DEFAULT_ESCALATION,
        default_district: str | None = None,
        dispatcher: Dispatch | None = None,
        retries: int = 8,
        steps: Steps | None = None,
        storms: StormDesk | None = None,
    ) -> None:
        """``dispatcher``: gives a :class:`Handover` per transaction (to claim the new alarm's
        notifications in its own transaction) and takes what was claimed and enqueued after
        the commit (None: the rows wait for any worker's outbox). ``steps``: the decision
        steps (tests inject failing ones). ``storms``: folds storm-kind alarms of one area
        into a mass-event incident (None: never)."""
        self.sessions = sessions
        self.clock = clock
        self.routing = routing
        self.escalation = escalation
        self.default_district = default_district
        self.dispatcher = dispatcher
        self.retries = retries
        self.steps = steps or Steps()
        self.storms = storms

    def decide(self, s: Session, signal: Signal, key: str, handover: Handover | None) -> Processed:
        """The decision of one signal, inside the caller's transaction (every path calls
        this: the ingest's transaction, the alarm queue, the re-check). In a SAVEPOINT of its
        own: a step that fails is rolled back and the fail-safe alarm is stored instead (a
        savepoint again). A lost race propagates (the caller retries from a fresh read), as
        does a failure of the fail-safe itself."""
        claimed, skipped = _marks(handover)
        try:
            with s.begin_nested():
                return self.process(s, signal, key, handover)
        except RETRYABLE:
            _rewind(handover, claimed, skipped)  # their rows went with the savepoint
            raise
        except Exception as exc:  # noqa: BLE001 - any failed decision: the fail-safe alarm, now
            _rewind(handover, claimed, skipped)
            with s.begin_nested():
                return self.process_failsafe(s, signal, key, exc, handover)

    def handle(self, signal: Signal, key: str) -> Processed:
        """Decide one signal in its own transaction (retried on races with other workers).
        A decision that fails ends in the fail-safe alarm; raises :class:`Undecided` only
        when that could not be stored either (the caller retries)."""

        def work(s: Session) -> tuple[Processed, Handover | None]:
            ho = self.new_handover()
            return self.decide(s, signal, key, ho), ho

        try:
            result, ho = in_transaction(self.sessions, work, self.retries)
        except Exception as exc:  # any failure of deciding: the fail-safe path decides
            if database_away(exc):  # nothing wrong with the decision: decide it again later
                raise Undecided(key, error_text(exc), exc) from exc
            return self.fail_safe(signal, key, exc)
        self.after_commit(result, ho)
        return result

    def handle_batch(self, items: Sequence[tuple[Signal, str]]) -> list[Processed | None]:
        """Decide several signals in one transaction (one commit, one wait for SQLite's write
        lock), each with :meth:`decide`. A signal that fails there (a race lost to another
        worker, even its fail-safe failing) is ``None`` in the result: the caller decides it
        alone with :meth:`handle`."""

        def work(s: Session) -> tuple[list[Processed | None], Handover | None]:
            ho = self.new_handover()
            prefetch(s, [signal.gateway_id for signal, _key in items])  # one read for the batch
            out: list[Processed | None] = []
            for signal, key in items:
                claimed, skipped = _marks(ho)
                try:
                    out.append(self.decide(s, signal, key, ho))
                except RETRYABLE as exc:  # rolled back to its savepoint: decided alone
                    log.info("signal %s left out of its batch (%s); decided alone", key, type(exc).__name__)
                    out.append(None)
                except Exception:
                    log.exception("signal %s failed in its batch; decided alone", key)
                    out.append(None)
                if out[-1] is None:
                    _rewind(ho, claimed, skipped)  # their rows went with the savepoint
            return out, ho

        results, ho = in_transaction(self.sessions, work, self.retries)
        done = [r for r in results if r is not None]
        total = Processed("batch", notifications=sum(r.notifications for r in done))
        self.after_commit(total, ho)
        return results

    def fail_safe(self, signal: Signal, key: str, exc: BaseException) -> Processed:
        """The decision of ``signal`` failed with ``exc``: store the fail-safe alarm in a
        transaction of its own (see ``failsafe.py``)."""

        def work(s: Session) -> tuple[Processed, Handover | None]:
            ho = self.new_handover()
            return self.process_failsafe(s, signal, key, exc, ho), ho

        try:
            result, ho = in_transaction(self.sessions, work, FAILSAFE_RETRIES)
        except Exception as again:
            raise Undecided(key, error_text(exc), again) from again
        self.after_commit(result, ho)
        return result

    def process_failsafe(
        self, s: Session, signal: Signal, key: str, exc: BaseException, handover: Handover | None = None
    ) -> Processed:
        """Inside the caller's transaction: the fail-safe decision of a signal whose
        decision raised ``exc``. A failed restore opens nothing (the alarm stays open: the
        safe side) and is recorded, so that it is not retried forever."""
        step = exc.step if isinstance(exc, DecisionFailed) else "engine"
        error = error_text(exc)
        if s.get(ProcessedSignal, key) is not None:
            return Processed("duplicate", detail=f"{key} already processed")
        now = self.clock.now()
        if signal.state is EventState.RESTORE:
            s.add(ProcessedSignal(key=key, processed_at=now, alarm_id=None, decision="restore_failed"))
            s.flush()
            return Processed("restore_failed", None, 0, error, step)
        alarm_id, n = open_failsafe(
            s, signal, key, open_key(signal.key), error, now, self.default_district, self.escalation, handover
        )
        return Processed("failsafe", alarm_id, n, error, step)

    def new_handover(self) -> Handover | None:
        return self.dispatcher.handover() if self.dispatcher is not None else None

    def after_commit(self, result: Processed, handover: Handover | None) -> None:
        """Give the dispatcher what the committed transaction claimed and enqueued. A
        fail-safe decision is logged here, once, at ERROR, with its alarm id."""
        if result.decision == "failsafe":
            log.error(
                "alarm %s raised fail-safe (flag routing_failed) to the 24-hour center: %s",
                result.alarm_id,
                result.detail,
            )
        elif result.decision == "restore_failed":
            log.error("restore not applied, the alarm stays open: %s", result.detail)
        if self.dispatcher is not None:
            self.dispatcher.committed(handover, result.notifications)

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

        try:
            result, ho = in_transaction(self.sessions, work, self.retries)
        except Exception as exc:
            if reading.value < th.raise_at:  # only a raise is life safety; a restore waits
                raise
            signal = analogue_signal(reading, active=False)
            assert signal is not None
            return self.fail_safe(signal, key, exc)
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
        st = self.steps
        place = (
            _step("registry", st.place, s, signal.gateway_id, signal.sensor_id, self.default_district)
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
            place.overrides
            if place is not None
            else _step("registry", st.overrides, s, current.home_id if current else None)
        )
        decision = _step("rules", st.decide, signal, snapshot, overrides)
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
        st = self.steps
        shift, recipients = _step("routing", st.route, d.alarm_class, ctx, d.at, self.routing)
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
        # a storm of one area (a power cut): the alarm is stored, routed with its incident
        folded = self.storms.fold_new(s, alarm, ctx) if self.storms is not None else None
        if isinstance(folded, Join | OpenIncident):  # its history line in the INSERT's flush, no UPDATE after
            log_step(s, alarm, "raise", now, f"{signal.kind} at {_where(alarm)}: member of a mass event")
        s.add(alarm)
        s.flush()  # the unique open_key: a second worker opening the same alarm fails here
        if self.storms is not None and isinstance(folded, Join | OpenIncident):
            return Processed("fold", alarm.id, self.storms.apply(s, folded, alarm, ctx, now, handover))
        hold = self.storms.hold(folded, now) if self.storms is not None else None  # a mass event may take it
        n = self._route(s, alarm, d.alarm_class, shift, recipients, place.address, now, handover, hold)
        return Processed("open", alarm.id, n)

    def _route(
        self,
        s: Session,
        alarm: Alarm,
        cls: AlarmClass,
        shift: Shift,
        recipients: list[Recipient],
        address: str,
        now: dt.datetime,
        handover: Handover | None,
        hold: dt.datetime | None = None,
    ) -> int:
        """Route a stored alarm on its own: history line, escalation timers, notifications
        (held until ``hold``, if given)."""
        st = self.steps
        log_step(
            s, alarm, "raise", now, f"{alarm.kind} at {_where(alarm)} ({shift.value}): {len(recipients)} recipients"
        )
        add_timers(s, alarm.id, _step("escalation", st.timers, cls, alarm.raised_at, self.escalation))
        ids = _step(
            "notify",
            st.notify,
            s,
            alarm.id,
            [Outgoing(r.channel, r.address, r.role, r.tier) for r in recipients],
            alarm_payload(alarm, "alarm.raised", address),
            now,
            priority_of(alarm.kind),
            handover,
            hold,
        )
        return len(ids)

    def route_unfolded(self, s: Session, alarm: Alarm, now: dt.datetime) -> int:
        """A member still open when its incident closed: routed on its own now (its escalation
        timers, cancelled when it joined the incident, start over from its raise)."""
        st = self.steps
        cls = AlarmClass(alarm.alarm_class)
        place = _step("registry", st.place, s, alarm.gateway_id, alarm.sensor_id or None, self.default_district)
        shift, recipients = _step("routing", st.route, cls, place.ctx, alarm.raised_at, self.routing)
        s.execute(delete(AlarmTimer).where(AlarmTimer.alarm_id == alarm.id, AlarmTimer.status == "cancelled"))
        return self._route(s, alarm, cls, shift, recipients, place.address, now, None)


def _marks(handover: Handover | None) -> tuple[int, int]:
    """How much a handover holds now (to forget what a rolled-back savepoint added)."""
    return (len(handover.messages), len(handover.skipped)) if handover is not None else (0, 0)


def _rewind(handover: Handover | None, claimed: int, skipped: int) -> None:
    if handover is not None:
        del handover.messages[claimed:]
        del handover.skipped[skipped:]


def _where(alarm: Alarm) -> str:
    return f"{alarm.gateway_id}/{alarm.sensor_id or '-'}"

