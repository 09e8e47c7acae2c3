"""Read what routing needs from the registry: the home of a gateway, its workstation,
subdistrict and district, its contacts, the webhooks of those regions, home overrides."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.alarms.routing import Contact, RoutingContext, Webhook
from hub.alarms.rules import NO_OVERRIDES, HomeOverrides
from hub.alarms.store.models import HomeOverride, WebhookSubscription
from hub.registry.models import District, Gateway, Home, Sensor, Subdistrict, Workstation

DEFAULT_TIMEZONE = "Asia/Shanghai"
_WEBHOOK_CACHE = "safehome_webhooks_of_transaction"


@dataclass(frozen=True, slots=True)
class Place:
    """Routing context plus what the alarm card shows about where it happened."""

    ctx: RoutingContext
    address: str = ""
    device_model: str | None = None
    location: str = ""
    overrides: HomeOverrides = NO_OVERRIDES


def _contacts(raw: list[dict[str, object]] | None) -> tuple[Contact, ...]:
    out = []
    for c in raw or []:
        phone = str(c.get("phone") or "")
        if phone:
            out.append(Contact(str(c.get("name", "")), phone, str(c.get("relation", ""))))
    return tuple(out)


def _webhooks(session: Session, regions: list[tuple[str, str | None]]) -> tuple[Webhook, ...]:
    wanted = {(k, i) for k, i in regions if i}
    if not wanted:
        return ()
    return tuple(w for w in _active_webhooks(session) if (w.region_kind, w.region_id) in wanted)


def _active_webhooks(session: Session) -> tuple[Webhook, ...]:
    """Every active subscription (few: one per region and subscriber), read once per
    transaction: a storm's batch routes 50 alarms of 50 workstations, and building a query
    for each alarm's regions (SQLAlchemy's statement coercion and cache key) cost ~0.5 ms
    of CPU per alarm, a fifth of a storm decision (``safehome bench storm``). Keyed by the
    transaction object, so a session used for several transactions never sees a stale list."""
    txn = session.get_transaction()
    held = session.info.get(_WEBHOOK_CACHE)
    if held is not None and held[0] is txn:
        return held[1]  # type: ignore[no-any-return]
    rows = session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.active.is_(True)).order_by(WebhookSubscription.id)
    ).all()
    found = tuple(Webhook(r.url, r.region_kind, r.region_id, r.name) for r in rows)
    if txn is not None:  # None: no transaction had begun (the read began one; not cached)
        session.info[_WEBHOOK_CACHE] = (txn, found)
    return found


def webhooks_of(session: Session, regions: list[tuple[str, str | None]]) -> tuple[Webhook, ...]:
    """Active webhook subscriptions of these (region kind, id) pairs."""
    return _webhooks(session, regions)


def overrides_of(session: Session, home_id: str | None) -> HomeOverrides:
    ov = session.get(HomeOverride, home_id) if home_id else None
    if ov is None:
        return NO_OVERRIDES
    return HomeOverrides(frozenset(map(str, ov.suppress)), frozenset(map(str, ov.frequent_false)), ov.note)


def place_of(
    session: Session, gateway_id: str, sensor_id: str | None, default_district: str | None = None
) -> Place:
    """Where an alarm of this gateway/sensor goes. Unknown gateways go to the district."""
    row = session.execute(
        select(Gateway, Home, Workstation, Subdistrict, District)
        .join(Home, Gateway.home_id == Home.id)
        .join(Workstation, Home.workstation_id == Workstation.id)
        .join(Subdistrict, Workstation.subdistrict_id == Subdistrict.id)
        .join(District, Subdistrict.district_id == District.id)
        .where(Gateway.id == gateway_id)
    ).first()
    if row is None:
        q = select(District).order_by(District.id)
        if default_district:
            q = q.where(District.id == default_district)
        d = session.scalars(q.limit(1)).first()
        ctx = RoutingContext(
            district_id=d.id if d else (default_district or "unknown"),
            district_phone=d.phone if d else None,
            timezone=d.timezone if d else DEFAULT_TIMEZONE,
            webhooks=_webhooks(session, [("district", d.id if d else None)]),
        )
        return Place(ctx)
    _gw, home, ws, sd, d = row
    sensor = session.get(Sensor, (gateway_id, sensor_id)) if sensor_id else None
    ctx = RoutingContext(
        district_id=d.id,
        district_phone=d.phone,
        timezone=d.timezone,
        subdistrict_id=sd.id,
        subdistrict_phone=sd.phone,
        workstation_id=ws.id,
        workstation_phone=ws.phone,
        workstation_oncall_phone=ws.oncall_phone,
        day_start=ws.day_start.strftime("%H:%M") if ws.day_start is not None else None,
        day_end=ws.day_end.strftime("%H:%M") if ws.day_end is not None else None,
        home_id=home.id,
        emergency_contacts=_contacts(home.emergency_contacts),
        webhooks=_webhooks(session, [("workstation", ws.id), ("subdistrict", sd.id), ("district", d.id)]),
    )
    overrides = overrides_of(session, home.id)
    return Place(
        ctx,
        address=home.address,
        device_model=sensor.model if sensor else None,
        location=sensor.location if sensor else "",
        overrides=overrides,
    )
