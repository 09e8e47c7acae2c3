"""Apply lifecycle steps to stored alarms (inside the caller's transaction).

Both writers of an alarm (an operator's transition, the engine's repeat/restore) go through
the ORM, whose ``version_id_col`` makes every UPDATE conditional on the version that was
read: two operators acknowledging at once → one wins, the other gets
:class:`ConcurrentUpdate` naming the state the alarm is in now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from hub.alarms.classes import priority_of
from hub.alarms.errors import ConcurrentUpdate
from hub.alarms.escalation import TimerSpec
from hub.alarms.lifecycle import Action, Outcome, State, Transition, plan
from hub.alarms.store.models import Alarm, AlarmTimer, AlarmTransition
from hub.notify.enqueue import Outgoing, enqueue
from hub.notify.models import Notification
from hub.notify.names import ChannelName, NotificationStatus
from protocols import AckStatus

#: Lifecycle steps the home is told about (the gateway plays "help is on the way").
HOME_ACKS: dict[State, AckStatus] = {
    State.ACKNOWLEDGED: AckStatus.ACKNOWLEDGED,
    State.DISPATCHED: AckStatus.DISPATCHED,
    State.ON_SITE: AckStatus.ON_SITE,
    State.RESOLVED: AckStatus.RESOLVED,
}
_STAMP = {
    State.NOTIFIED: "notified_at",
    State.ACKNOWLEDGED: "acknowledged_at",
    State.DISPATCHED: "dispatched_at",
    State.ON_SITE: "on_site_at",
    State.RESOLVED: "resolved_at",
    State.REVIEWED: "reviewed_at",
}


def alarm_payload(alarm: Alarm, event: str, address: str = "") -> dict[str, Any]:
    """What notifications carry about an alarm (JSON-ready)."""
    return {
        "event": event,
        "alarm_id": alarm.id,
        "kind": alarm.kind,
        "class": alarm.alarm_class,
        "priority": alarm.priority,
        "state": alarm.state,
        "gateway_id": alarm.gateway_id,
        "sensor_id": alarm.sensor_id or None,
        "home_id": alarm.home_id,
        "workstation_id": alarm.workstation_id,
        "subdistrict_id": alarm.subdistrict_id,
        "district_id": alarm.district_id,
        "address": address,
        "location": alarm.location,
        "device_model": alarm.device_model,
        "raised_at": alarm.raised_at.isoformat(),
        "count": alarm.count,
        "flags": list(alarm.flags or []),
        "seq": alarm.event_seq,
    }


#: history action → the event name webhooks and the live stream carry
EVENT_OF_ACTION = {
    "raise": "alarm.raised",
    "notify": "alarm.notified",
    "acknowledge": "alarm.acknowledged",
    "dispatch": "alarm.dispatched",
    "arrive": "alarm.on_site",
    "resolve": "alarm.resolved",
    "review": "alarm.reviewed",
    "restore": "alarm.restored",
    "reactivate": "alarm.reactivated",
    "escalate": "alarm.escalated",
}


def event_name(action: str) -> str:
    return EVENT_OF_ACTION.get(action, f"alarm.{action}")


def event_payload(alarm: Alarm, line: AlarmTransition) -> dict[str, Any]:
    """One history line as an event: the alarm's summary (as it is after the line) plus
    what happened, with the line's per-alarm ``seq``."""
    return {
        **alarm_payload(alarm, event_name(line.action)),
        "state": line.to_state,  #: as of this line (the alarm may have moved on since)
        "seq": line.seq,
        "action": line.action,
        "at": line.at.isoformat(),
        "actor": line.actor,
        # a closed case's later lines (review) still say how it ended; earlier lines never do
        "outcome": line.outcome or (alarm.outcome if line.to_state in ("resolved", "reviewed") else None),
        "responder": line.responder,
    }


def _line(session: Session, alarm: Alarm, **columns: Any) -> AlarmTransition:
    """Add a history line with the alarm's next ``seq`` (the alarm row changes with it, so
    its version lock keeps the numbering gap-free and unique across workers)."""
    alarm.event_seq = (alarm.event_seq or 0) + 1
    row = AlarmTransition(alarm_id=alarm.id, seq=alarm.event_seq, **columns)
    session.add(row)
    return row


def announce(
    session: Session, alarm: Alarm, line: AlarmTransition, now: dt.datetime, skip: frozenset[str] = frozenset()
) -> list[str]:
    """Tell every webhook that already heard of this alarm about one more history line (in
    the caller's transaction, through the outbox: delivered at least once, retried)."""
    # no autoflush: the caller flushes the alarm where a lost race becomes ConcurrentUpdate
    with session.no_autoflush:
        heard = session.scalars(
            select(Notification.address)
            .where(
                Notification.alarm_id == alarm.id,
                Notification.channel == ChannelName.WEBHOOK,
                Notification.status != NotificationStatus.FOLDED,  # never sent: it did not hear
            )
            .distinct()
        )
        addresses = set(heard) - skip
    if not addresses:
        return []
    return enqueue(
        session,
        alarm.id,
        [Outgoing(ChannelName.WEBHOOK, a, "webhook", "update") for a in sorted(addresses)],
        event_payload(alarm, line),
        now,
        priority_of(alarm.kind),
    )


def record(session: Session, alarm: Alarm, t: Transition) -> AlarmTransition:
    """Write a planned transition onto the alarm and its history; the alarm's webhooks are
    told (``alarm.acknowledged``, ``alarm.resolved``…)."""
    alarm.state = t.to_state.value
    stamp = _STAMP.get(t.to_state)
    if stamp:
        setattr(alarm, stamp, t.at)
    if t.responder:
        alarm.responder = t.responder
    if t.outcome is not None:
        alarm.outcome = t.outcome.value
    if t.to_state.closed:
        alarm.open_key = None
        # The UPDATE below autoflushes the alarm first: flush it here, where a lost race
        # becomes ConcurrentUpdate (retried from a fresh read), not a bare StaleDataError
        # (which answered two operators resolving at once with HTTP 500 on PostgreSQL).
        flush_or_conflict(session, alarm)
        session.execute(
            update(AlarmTimer)
            .where(AlarmTimer.alarm_id == alarm.id, AlarmTimer.status == "pending")
            .values(status="cancelled")
        )
    line = _line(
        session,
        alarm,
        action=t.action.value,
        from_state=t.from_state.value,
        to_state=t.to_state.value,
        actor=t.actor,
        at=t.at,
        note=t.note,
        outcome=t.outcome.value if t.outcome else None,
        responder=t.responder,
    )
    announce(session, alarm, line, t.at)
    return line


def log_step(
    session: Session, alarm: Alarm, action: str, at: dt.datetime, note: str, actor: str = "system"
) -> AlarmTransition:
    """A history line that does not change the lifecycle state (raise, restore, reactivate,
    escalate…). Restore and reactivate are announced to the alarm's webhooks here; raise and
    escalate by their callers, who route them."""
    line = _line(
        session,
        alarm,
        action=action,
        from_state=None if action == "raise" else alarm.state,
        to_state=alarm.state,
        actor=actor,
        at=at,
        note=note,
    )
    if action in ("restore", "reactivate"):
        announce(session, alarm, line, at)
    return line


def add_timers(session: Session, alarm_id: str, specs: Iterable[TimerSpec]) -> None:
    """Store the escalation timers of a new alarm (inside the caller's transaction)."""
    for t in specs:
        session.add(
            AlarmTimer(
                alarm_id=alarm_id,
                step_index=t.step_index,
                step_name=t.step.name,
                tier=t.step.tier,
                awaits=t.step.awaits.value,
                due_at=t.due_at,
            )
        )


def flush_or_conflict(session: Session, alarm: Alarm) -> None:
    alarm_id = alarm.id  # read before the flush: after a failed flush the object is unusable
    try:
        session.flush()
    except StaleDataError as exc:
        raise ConcurrentUpdate(
            "concurrent_update", f"alarm {alarm_id} was changed by someone else; reload it", None
        ) from exc


def apply_action(
    session: Session,
    alarm: Alarm,
    action: Action,
    actor: str,
    now: dt.datetime,
    *,
    by: str,
    note: str = "",
    outcome: Outcome | None = None,
    responder: str | None = None,
) -> Transition:
    """Plan, record and flush one person's lifecycle step; tell the home when it matters.

    ``by`` is what the home is told acted (a region, never a person's name)."""
    t = plan(State(alarm.state), action, actor, now, note, outcome, responder)
    record(session, alarm, t)
    flush_or_conflict(session, alarm)
    status = HOME_ACKS.get(t.to_state)
    if status is not None and alarm.event_id:
        enqueue(
            session,
            alarm.id,
            [Outgoing(ChannelName.HOME, alarm.gateway_id, "home")],
            {"event_id": alarm.event_id, "status": status.value, "by": by, "alarm_id": alarm.id},
            now,
            priority_of(alarm.kind),
        )
    if alarm.workstation_id or alarm.district_id:
        region = (
            f"workstation:{alarm.workstation_id}" if alarm.workstation_id else f"district:{alarm.district_id}"
        )
        enqueue(
            session,
            alarm.id,
            [Outgoing(ChannelName.CONSOLE, region, "workstation")],
            alarm_payload(alarm, "alarm.updated"),
            now,
            priority_of(alarm.kind),
        )
    return t


def mark_notified(session: Session, notification: Notification, now: dt.datetime) -> None:
    """Outbox hook: the first delivery to a person moves a raised alarm to *notified*.

    Runs inside the outbox's recording transaction, in a savepoint: if an operator changed
    the alarm at the same moment, the alarm is already past *notified* and nothing is lost."""
    if notification.channel == ChannelName.HOME or not notification.alarm_id:
        return
    alarm = session.get(Alarm, notification.alarm_id)
    if alarm is None or alarm.state != State.RAISED.value:
        return
    try:
        with session.begin_nested():
            t = plan(
                State.RAISED,
                Action.NOTIFY,
                "system",
                now,
                f"first delivery: {notification.channel} to {notification.role}",
            )
            record(session, alarm, t)
    except StaleDataError:
        session.expire(alarm)
