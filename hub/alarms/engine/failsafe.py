"""The fail-safe alarm: what the engine stores when deciding or routing a signal failed.

An event the hub has acked must end as an alarm in front of a person. When a step of the
normal decision raises (a registry row the engine cannot use, a bug in rules, routing,
schedule or escalation), this path opens the alarm anyway, flagged ``routing_failed`` with
the error, and sends it to the home's 24-hour center: its subdistrict center, or the
district center when even the subdistrict cannot be read. It is deliberately small and
reads as little as possible (ids and phones, no hours, no timezone, no overrides), each
read in a savepoint of its own, so that it cannot fail the way the decision did. If its
own insert fails (the database is away), the caller leaves the signal undecided and
retries it: no processed-signal row is written without an alarm.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.alarms.classes import classify, priority_of
from hub.alarms.engine.actions import add_timers, alarm_payload, log_step
from hub.alarms.escalation import EscalationPolicy, timers_for
from hub.alarms.lifecycle import State
from hub.alarms.rules import Signal
from hub.alarms.store.models import Alarm, ProcessedSignal
from hub.notify.enqueue import Handover, Outgoing, enqueue
from hub.notify.names import ChannelName
from hub.registry.models import District, Gateway, Home, Subdistrict, Workstation
from protocols import AlarmClass, new_event_id

log = logging.getLogger(__name__)
FLAG = "routing_failed"


@dataclass(frozen=True, slots=True)
class Center:
    """The 24-hour center of a home, and the region columns known on the way to it."""

    district_id: str
    district_phone: str | None = None
    subdistrict_id: str | None = None
    subdistrict_phone: str | None = None
    workstation_id: str | None = None
    home_id: str | None = None

    def recipients(self, voice: bool = True) -> list[Outgoing]:
        """The subdistrict center's console and phone; the district's when the
        subdistrict is unknown."""
        if self.subdistrict_id:
            role, region, phone = "subdistrict", f"subdistrict:{self.subdistrict_id}", self.subdistrict_phone
        else:
            role, region, phone = "district", f"district:{self.district_id}", self.district_phone
        out = [Outgoing(ChannelName.CONSOLE, region, role)]
        if phone:
            out.append(Outgoing(ChannelName.SMS, phone, role))
            if voice:
                out.append(Outgoing(ChannelName.VOICE, phone, role))
        return out


def center_of(s: Session, gateway_id: str, default_district: str | None) -> Center:
    """The 24-hour center of a gateway's home. Every read is in a savepoint and may fail:
    what could not be read is left out, down to the district id alone."""
    sub = None
    try:
        with s.begin_nested():
            sub = s.execute(
                select(Home.id, Workstation.id, Subdistrict.id, Subdistrict.phone, Subdistrict.district_id)
                .select_from(Gateway)
                .join(Home, Gateway.home_id == Home.id)
                .join(Workstation, Home.workstation_id == Workstation.id)
                .join(Subdistrict, Workstation.subdistrict_id == Subdistrict.id)
                .where(Gateway.id == gateway_id)
            ).first()
    except Exception as exc:  # noqa: BLE001 - whatever broke the decision may break this read too
        log.warning("fail-safe: the home of gateway %s cannot be read: %s", gateway_id, exc)
        sub = None
    district_id = sub[4] if sub is not None else default_district
    district_phone = None
    try:
        with s.begin_nested():
            q = select(District.id, District.phone).order_by(District.id).limit(1)
            if district_id:
                q = q.where(District.id == district_id)
            row = s.execute(q).first()
        if row is not None:
            district_id, district_phone = row[0], row[1]
    except Exception as exc:  # noqa: BLE001 - the district id alone still names a console
        log.warning("fail-safe: district %s cannot be read: %s", district_id, exc)
    if sub is None:
        return Center(district_id or "unknown", district_phone)
    return Center(district_id or "unknown", district_phone, sub[2], sub[3], sub[1], sub[0])


def _class_of(kind: str) -> AlarmClass:
    try:
        return classify(kind)
    except Exception:  # noqa: BLE001 - the rules failed: treat it as life safety
        return AlarmClass.ALARM


def open_failsafe(
    s: Session,
    signal: Signal,
    key: str,
    okey: str,
    error: str,
    now: dt.datetime,
    default_district: str | None,
    escalation: EscalationPolicy,
    handover: Handover | None = None,
) -> tuple[str | None, int]:
    """Store the fail-safe alarm of ``signal`` (inside the caller's transaction) and its
    processed-signal row; returns (alarm id, notifications). An alarm already open for the
    signal's key is in front of a person already: the signal is recorded against it."""
    existing = s.scalars(select(Alarm.id).where(Alarm.open_key == okey)).first()
    if existing is not None:
        s.add(ProcessedSignal(key=key, processed_at=now, alarm_id=existing, decision="failsafe"))
        s.flush()
        return existing, 0
    center = center_of(s, signal.gateway_id, default_district)
    cls = _class_of(signal.kind)
    at = signal.at
    alarm = Alarm(
        id=new_event_id(int(at.timestamp() * 1000)),
        gateway_id=signal.gateway_id,
        sensor_id=signal.sensor_id or "",
        kind=signal.kind[:32],
        alarm_class=cls.value,
        priority=priority_of(signal.kind),
        state=State.RAISED.value,
        open_key=okey,
        home_id=center.home_id,
        workstation_id=center.workstation_id,
        subdistrict_id=center.subdistrict_id,
        district_id=center.district_id,
        shift="",
        raised_at=at,
        last_seen_at=at,
        count=1,
        event_id=signal.event_id,
        last_event_id=signal.event_id,
        flags=[FLAG],
    )
    s.add(alarm)
    s.flush()
    recipients = center.recipients()
    log_step(s, alarm, "raise", now, f"fail-safe to {recipients[0].address}: {error}"[:2000])
    try:
        timers = timers_for(cls, at, escalation)
    except Exception:  # noqa: BLE001 - the center has it; a broken policy must not stop that
        timers = []
    add_timers(s, alarm.id, timers)
    payload = {**alarm_payload(alarm, "alarm.raised"), "routing_error": error}
    ids = enqueue(s, alarm.id, recipients, payload, now, alarm.priority, handover)
    s.add(ProcessedSignal(key=key, processed_at=now, alarm_id=alarm.id, decision="failsafe"))
    s.flush()
    return alarm.id, len(ids)


def tier_fallback(alarm: Alarm, tier: str) -> list[Outgoing]:
    """Escalation recipients when the registry cannot be read for a tier: the consoles
    named by the alarm's own region columns (subdistrict tier → its subdistrict center if
    known; otherwise, and for the district tier, the district center)."""
    if tier == "subdistrict" and alarm.subdistrict_id:
        return [Outgoing(ChannelName.CONSOLE, f"subdistrict:{alarm.subdistrict_id}", "subdistrict", tier)]
    return [Outgoing(ChannelName.CONSOLE, f"district:{alarm.district_id or 'unknown'}", "district", tier)]
