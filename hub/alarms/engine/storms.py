"""Storms, the I/O shell around :mod:`hub.alarms.storm`: read what the pure core needs, write
what it decides, inside the caller's transaction.

- :meth:`StormDesk.fold_new` — called by the engine for every alarm it opens: on its own,
  or a member of its area's incident (opening it, with the area's recent storm alarms).
- :meth:`StormDesk.settle_all` — the periodic check: push the running count
  (``incident.updated``), close a quiet incident (``incident.closed``) and route the few
  members still open one by one.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.alarms.classes import priority_of
from hub.alarms.routing import RoutingContext
from hub.alarms.store.incidents import Incident
from hub.alarms.store.models import Alarm, AlarmTimer
from hub.alarms.store.registry import webhooks_of
from hub.alarms.storm import (
    Candidate,
    Close,
    Fold,
    IncidentState,
    IncidentView,
    Join,
    OpenIncident,
    Single,
    StormPolicy,
    fold,
    foldable,
    held_until,
    settle,
)
from hub.notify.enqueue import Handover, Outgoing, enqueue
from hub.notify.models import Notification
from hub.notify.names import ChannelName, NotificationStatus
from protocols import new_event_id

log = logging.getLogger(__name__)

#: Flag on every member alarm (the console shows it under the incident, not on its own).
MEMBER_FLAG = "mass_event"
#: Flag on a member routed on its own when its incident closed while it was still open.
UNFOLDED_FLAG = "unfolded_from_mass_event"
#: Incidents are routed as supervisory (after life safety, before trouble).
INCIDENT_PRIORITY = priority_of("gateway_offline")


def _area_column(policy: StormPolicy) -> Any:
    return Alarm.subdistrict_id if policy.area == "subdistrict" else Alarm.workstation_id


def recipients(area: str, ctx: RoutingContext) -> list[Outgoing]:
    """The area's console, and the webhooks of the area and of every region enclosing it."""
    kind, _, area_id = area.partition(":")
    regions = {("district", ctx.district_id), ("subdistrict", ctx.subdistrict_id)}
    if kind == "workstation":
        regions.add(("workstation", area_id))
    out = [Outgoing(ChannelName.CONSOLE, area, kind)]
    out += [
        Outgoing(ChannelName.WEBHOOK, w.url, "webhook")
        for w in ctx.webhooks
        if (w.region_kind, w.region_id) in regions
    ]
    return out


def payload(s: Session, inc: Incident, event: str) -> dict[str, Any]:
    """What incident notifications carry (JSON-ready): the running count, by kind and state."""
    rows = s.execute(
        select(Alarm.kind, Alarm.restored_at.is_(None), func.count())
        .where(Alarm.incident_id == inc.id)
        .group_by(Alarm.kind, Alarm.restored_at.is_(None))
    ).all()
    by_kind: dict[str, int] = {}
    still = 0
    for kind, unrestored, n in rows:
        by_kind[kind] = by_kind.get(kind, 0) + n
        still += n if unrestored else 0
    area_kind, _, area_id = inc.area.partition(":")
    return {
        "event": event,
        "incident_id": inc.id,
        "kind": inc.kind,
        "state": inc.state,
        "area": inc.area,
        "area_kind": area_kind,
        "area_id": area_id,
        "workstation_id": inc.workstation_id,
        "subdistrict_id": inc.subdistrict_id,
        "district_id": inc.district_id,
        "members": sum(by_kind.values()),
        "members_by_kind": by_kind,
        "still_active": still,
        "opened_at": inc.opened_at.isoformat(),
        "last_member_at": inc.last_member_at.isoformat(),
        "closed_at": inc.closed_at.isoformat() if inc.closed_at else None,
    }


class StormDesk:
    def __init__(self, policy: StormPolicy) -> None:
        self.policy = policy

    # --- a new alarm ------------------------------------------------------------------

    def fold_new(self, s: Session, alarm: Alarm, ctx: RoutingContext) -> Fold:
        """The pure decision for a new alarm (not added yet), fed from the database: a
        member is marked (flag, and a Join's incident) before its INSERT, not by an UPDATE
        after it (one statement and one flush less per member of a storm)."""
        d = self._fold(s, alarm.kind, ctx, alarm.raised_at)
        if isinstance(d, Join | OpenIncident):
            alarm.flags = [*(alarm.flags or []), MEMBER_FLAG]
        if isinstance(d, Join):
            alarm.incident_id = d.incident_id
        return d

    def hold(self, d: Fold | None, now: dt.datetime) -> dt.datetime | None:
        """Until when the notifications of an alarm routed on its own wait (see
        :attr:`StormPolicy.hold_s`); None: sent at once."""
        return held_until(d, now, self.policy) if d is not None else None

    def _fold(self, s: Session, kind: str, ctx: RoutingContext, at: dt.datetime) -> Fold:
        if not foldable(self.policy, kind):
            return Single("not_storm_kind")
        c = Candidate(kind, ctx.workstation_id, ctx.subdistrict_id, at)
        area_id = ctx.subdistrict_id if self.policy.area == "subdistrict" else ctx.workstation_id
        if area_id is None or not ctx.registered:
            return Single("no_area")
        area = f"{self.policy.area}:{area_id}"
        row = s.execute(
            select(Incident.id, Incident.last_member_at).where(Incident.open_key == area)
        ).first()
        incident = IncidentView(row[0], row[1]) if row is not None else None
        recent = 0
        if incident is None or (at - incident.last_member_at).total_seconds() > self.policy.quiet_s:
            since = at - dt.timedelta(seconds=self.policy.window_s)
            recent = s.scalar(
                select(func.count())
                .select_from(Alarm)
                .where(
                    _area_column(self.policy) == area_id,
                    Alarm.raised_at > since,
                    Alarm.kind.in_(sorted(self.policy.kinds)),
                    Alarm.incident_id.is_(None),
                    Alarm.alarm_class != "alarm",
                )
            ) or 0
        return fold(c, recent, incident, self.policy)

    def apply(
        self,
        s: Session,
        d: Join | OpenIncident,
        alarm: Alarm,
        ctx: RoutingContext,
        now: dt.datetime,
        handover: Handover | None,
    ) -> int:
        """Make ``alarm`` (marked by :meth:`fold_new`, added, not routed) a member of its
        incident; returns notifications enqueued."""
        if isinstance(d, Join):
            s.execute(
                update(Incident)
                .where(Incident.id == d.incident_id)
                .values(members=Incident.members + 1, last_member_at=func.max(Incident.last_member_at, alarm.raised_at)
                        if s.get_bind().dialect.name == "sqlite"
                        else func.greatest(Incident.last_member_at, alarm.raised_at))
                # not synchronised into loaded Incident objects: SQLAlchemy's default
                # ("auto": evaluate, else fetch) cost ~1 ms of CPU per member in a storm
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            return 0
        inc = self._open(s, d, alarm, ctx, now)
        # The incident's first notifications are claimed for this worker like an alarm's.
        ids = enqueue(s, None, recipients(d.area, ctx), payload(s, inc, "incident.opened"), now,
                      INCIDENT_PRIORITY, handover)  # fmt: skip
        log.warning("mass event %s opened in %s with %d members", inc.id, d.area, inc.members)
        return len(ids)

    def _open(self, s: Session, d: OpenIncident, alarm: Alarm, ctx: RoutingContext, now: dt.datetime) -> Incident:
        inc = Incident(
            id=new_event_id(int(alarm.raised_at.timestamp() * 1000)),
            area=d.area,
            open_key=d.area,
            state="open",
            workstation_id=ctx.workstation_id if self.policy.area == "workstation" else None,
            subdistrict_id=ctx.subdistrict_id,
            district_id=ctx.district_id,
            opened_at=alarm.raised_at,
            last_member_at=alarm.raised_at,
            members=1,
            pushed_members=0,
            pushed_at=now,
        )
        s.add(inc)
        s.flush()  # the unique open_key: a second worker opening the same area's fails here
        alarm.incident_id = inc.id
        # the area's recent storm alarms, routed on their own before the threshold, join it:
        # their escalation stops here (the incident is what a person handles now)
        _kind, _, area_id = d.area.partition(":")
        earlier = list(
            s.scalars(
                update(Alarm)
                .where(
                    _area_column(self.policy) == area_id,
                    Alarm.raised_at > d.since,
                    Alarm.kind.in_(sorted(self.policy.kinds)),
                    Alarm.incident_id.is_(None),
                    Alarm.alarm_class != "alarm",
                    Alarm.id != alarm.id,
                )
                .values(incident_id=inc.id)
                .returning(Alarm.id)
                .execution_options(synchronize_session=False)
            )
        )
        if earlier:
            s.execute(
                update(AlarmTimer)
                .where(AlarmTimer.alarm_id.in_(earlier), AlarmTimer.status == "pending")
                .values(status="cancelled")
            )
            inc.members += len(earlier)
            # their notifications still held (or never tried) are folded: never sent, the
            # incident's tell it (hold_s; the ones already out stay in the delivery log)
            s.execute(
                update(Notification)
                .where(Notification.alarm_id.in_(earlier), Notification.status == NotificationStatus.PENDING,
                       Notification.attempts == 0)
                .values(status=NotificationStatus.FOLDED, last_error=f"member of mass event {inc.id}")
                .execution_options(synchronize_session=False)
            )  # fmt: skip
        inc.pushed_members = inc.members  # incident.opened tells this count
        s.flush()
        return inc

    # --- the periodic check -----------------------------------------------------------

    def open_incidents(self, s: Session) -> list[str]:
        return list(s.scalars(select(Incident.id).where(Incident.state == "open")))

    def settle_one(
        self, s: Session, incident_id: str, now: dt.datetime, route_alone: Any
    ) -> tuple[str, int]:
        """Check one open incident (in the caller's transaction): push its running count or
        close it. ``route_alone(session, alarm, now)`` routes an unfolded member and returns
        how many notifications it enqueued. Returns (what was done, notifications)."""
        inc = s.get(Incident, incident_id)
        if inc is None or inc.state != "open":
            return "gone", 0
        members = s.scalar(select(func.count()).select_from(Alarm).where(Alarm.incident_id == inc.id)) or 0
        still = list(
            s.scalars(
                select(Alarm.id).where(
                    Alarm.incident_id == inc.id, Alarm.restored_at.is_(None), Alarm.open_key.is_not(None)
                )
            )
        )
        view = IncidentState(inc.last_member_at, members, inc.pushed_members, inc.pushed_at, tuple(still))
        d = settle(view, now, self.policy)
        ctx = self._ctx(s, inc)
        if isinstance(d, Close):
            done = s.execute(
                update(Incident)
                .where(Incident.id == inc.id, Incident.state == "open")
                .values(state="closed", open_key=None, closed_at=now, members=members, pushed_members=members,
                        pushed_at=now)
                .returning(Incident.id)
            ).first()  # fmt: skip
            if done is None:  # another worker closed it
                return "gone", 0
            s.refresh(inc)
            n = 0
            for alarm_id in d.unfold:
                alarm = s.get(Alarm, alarm_id)
                if alarm is not None:
                    alarm.flags = [*(alarm.flags or []), UNFOLDED_FLAG]
                    n += route_alone(s, alarm, now)
            n += len(enqueue(s, None, recipients(inc.area, ctx), payload(s, inc, "incident.closed"), now,
                             INCIDENT_PRIORITY))  # fmt: skip
            log.warning("mass event %s in %s closed: %d members, %d unfolded", inc.id, inc.area, members,
                        len(d.unfold))  # fmt: skip
            return "closed", n
        if not d.push_count:
            return "kept", 0
        done = s.execute(
            update(Incident)
            .where(Incident.id == inc.id, Incident.pushed_at == inc.pushed_at)
            .values(pushed_members=members, pushed_at=now, members=members)
            .returning(Incident.id)
        ).first()
        if done is None:  # another worker pushed it just now
            return "kept", 0
        s.refresh(inc)
        ids = enqueue(s, None, recipients(inc.area, ctx), payload(s, inc, "incident.updated"), now, INCIDENT_PRIORITY)
        return "pushed", len(ids)

    @staticmethod
    def _ctx(s: Session, inc: Incident) -> RoutingContext:
        """The routing context of the incident's area: the webhooks subscribed to it."""
        regions = [("district", inc.district_id), ("subdistrict", inc.subdistrict_id),
                   ("workstation", inc.workstation_id)]  # fmt: skip
        return RoutingContext(
            district_id=inc.district_id or "",
            district_phone=None,
            timezone="UTC",
            subdistrict_id=inc.subdistrict_id,
            workstation_id=inc.workstation_id,
            webhooks=webhooks_of(s, regions),
        )
