"""The SQL behind ``/api/v1/webhooks``: which subscriptions a caller may see (those of its
region and of the regions inside it), their delivery log, a test delivery, a replay.

Deliveries are the outbox's ``notifications`` rows of the ``webhook`` channel addressed
to the subscription's URL (the hub signs by URL, so a URL has one active subscription);
a caller sees only those of alarms in its own region, plus pings and mass-event
notifications (no alarm) to that URL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, or_, select, update
from sqlalchemy.orm import Session

from hub.alarms.store.models import Alarm, WebhookSubscription
from hub.api.auth import alarm_scope
from hub.api.tokens import Principal
from hub.notify.enqueue import Outgoing, enqueue
from hub.notify.models import DeliveryAttempt, Notification
from hub.registry.models import District, Subdistrict, Workstation

W = WebhookSubscription
#: The tier a test delivery is sent with (``X-Safehome-Event: ping``).
PING_TIER = "test"


def regions_within(p: Principal) -> dict[str, Select[str]]:
    """Per region kind, the ids of the regions inside ``p``'s region (its own included)."""
    rid = p.region_id
    if p.region_kind == "workstation":
        return {"workstation": select(Workstation.id).where(Workstation.id == rid)}
    if p.region_kind == "subdistrict":
        return {
            "subdistrict": select(Subdistrict.id).where(Subdistrict.id == rid),
            "workstation": select(Workstation.id).where(Workstation.subdistrict_id == rid),
        }
    if p.region_kind == "district":
        return {
            "district": select(District.id).where(District.id == rid),
            "subdistrict": select(Subdistrict.id).where(Subdistrict.district_id == rid),
            "workstation": select(Workstation.id)
            .join(Subdistrict, Subdistrict.id == Workstation.subdistrict_id)
            .where(Subdistrict.district_id == rid),
        }
    return {}


def webhook_scope(p: Principal) -> ColumnElement[bool]:
    """The condition of every subscription query made for ``p``."""
    inside = regions_within(p)
    if not inside:
        return false()
    return or_(*(and_(W.region_kind == kind, W.region_id.in_(ids)) for kind, ids in inside.items()))


def region_is_within(s: Session, p: Principal, kind: str, rid: str) -> bool:
    ids = regions_within(p).get(kind)
    return ids is not None and s.scalars(ids.where(ids.selected_columns[0] == rid)).first() is not None


def scoped_webhook(s: Session, p: Principal, webhook_id: int) -> W | None:
    return s.scalars(select(W).where(W.id == webhook_id, webhook_scope(p))).first()


def url_in_use(s: Session, url: str, but: int | None = None) -> bool:
    """Another active subscription has this URL (whose secret would sign for both)."""
    q = select(W.id).where(W.url == url, W.active.is_(True))
    if but is not None:
        q = q.where(W.id != but)
    return s.scalars(q.limit(1)).first() is not None


def deliveries_of(p: Principal, w: W) -> Select[Notification]:
    """The delivery log of ``w`` as ``p`` may see it, newest first."""
    seen = or_(
        Notification.alarm_id.is_(None),
        exists().where(Alarm.id == Notification.alarm_id, alarm_scope(p)),
    )
    return (
        select(Notification)
        .where(Notification.channel == "webhook", Notification.address == w.url, seen)
        .order_by(Notification.id.desc())
    )


def attempts_of(s: Session, delivery_id: str) -> list[DeliveryAttempt]:
    q = select(DeliveryAttempt).where(DeliveryAttempt.notification_id == delivery_id)
    return list(s.scalars(q.order_by(DeliveryAttempt.id)))


def ping(s: Session, w: W, actor: str, now: dt.datetime) -> str:
    """Queue a test delivery (event ``ping``) to ``w``; returns its delivery id."""
    body: dict[str, Any] = {"event": "ping", "webhook_id": w.id, "at": now.isoformat(), "by": actor}
    (nid,) = enqueue(s, None, [Outgoing("webhook", w.url, "webhook", PING_TIER)], body, now)
    return nid


def replay(s: Session, delivery_id: str, now: dt.datetime) -> bool:
    """Put a dead delivery back in the outbox, due now, for one more attempt (the same
    delivery id, so a receiver that did get it deduplicates). False: it is not dead."""
    done = s.execute(
        update(Notification)
        .where(Notification.id == delivery_id, Notification.status == "dead")
        .values(status="pending", next_attempt_at=now, lease_owner=None, lease_until=None)
        .returning(Notification.id)
    ).first()
    return done is not None
