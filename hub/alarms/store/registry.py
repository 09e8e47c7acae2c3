"""Read what routing needs from the registry: the home of a gateway, its workstation,
subdistrict and district, its contacts, the webhooks of those regions, home overrides."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from hub.alarms.routing import Contact, RoutingContext, Webhook
from hub.alarms.rules import NO_OVERRIDES, HomeOverrides
from hub.alarms.store.models import HomeOverride, WebhookSubscription
from hub.registry.models import District, Gateway, Home, Sensor, Subdistrict, Workstation

DEFAULT_TIMEZONE = "Asia/Shanghai"
_WEBHOOK_CACHE = "safehome_webhooks_of_transaction"
_PLACE_CACHE = "safehome_places_of_transaction"
_OVERRIDE_CACHE = "safehome_overrides_of_transaction"
log = logging.getLogger(__name__)


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
    of CPU per alarm, a fifth of a storm decision (``safehome bench storm``)."""
    cache = _of_transaction(session, _WEBHOOK_CACHE)
    if "all" not in cache:
        rows = session.scalars(
            select(WebhookSubscription).where(WebhookSubscription.active.is_(True)).order_by(WebhookSubscription.id)
        ).all()
        cache["all"] = tuple(Webhook(r.url, r.region_kind, r.region_id, r.name) for r in rows)
    found: tuple[Webhook, ...] = cache["all"]
    return found


def _of_transaction(session: Session, name: str) -> dict[Any, Any]:
    """A cache that lives as long as the session's current transaction (keyed by the
    transaction object, so a session used for several transactions never sees a stale
    one); outside a transaction a throwaway dict."""
    txn = session.get_transaction()
    if txn is None:
        return {}
    held = session.info.get(name)
    if held is None or held[0] is not txn:
        held = session.info[name] = (txn, {})
    cache: dict[Any, Any] = held[1]
    return cache


def prefetch(session: Session, gateway_ids: Iterable[str]) -> None:
    """Read the registry rows and home overrides of many gateways at once (a batch of
    decisions): :func:`place_of` and :func:`overrides_of` then find them in this
    transaction's cache instead of one joined query and one lookup per alarm (~1 ms of CPU
    of a ~2 ms storm decision). Best effort: a failure leaves each decision to read its own
    (and to fail, if it must, with its fail-safe alarm)."""
    wanted = sorted(set(gateway_ids))
    places = _of_transaction(session, _PLACE_CACHE)
    overrides = _of_transaction(session, _OVERRIDE_CACHE)
    try:
        with session.begin_nested():
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                for row in session.execute(_place_query().where(Gateway.id.in_(chunk))):
                    places[row[0].id] = row
            homes = sorted({row[1].id for row in places.values()} - set(overrides))
            for start in range(0, len(homes), 500):
                chunk = homes[start : start + 500]
                found = {o.home_id: o for o in session.scalars(select(HomeOverride).where(HomeOverride.home_id.in_(chunk)))}
                overrides.update({h: found.get(h) for h in chunk})
    except Exception:  # an optimisation only: each decision reads its own
        log.exception("registry prefetch of %d gateways failed; each decision reads its own", len(wanted))
        places.clear()
        overrides.clear()


def _place_query() -> Select[Gateway, Home, Workstation, Subdistrict, District]:
    return (
        select(Gateway, Home, Workstation, Subdistrict, District)
        .join(Home, Gateway.home_id == Home.id)
        .join(Workstation, Home.workstation_id == Workstation.id)
        .join(Subdistrict, Workstation.subdistrict_id == Subdistrict.id)
        .join(District, Subdistrict.district_id == District.id)
    )


def webhooks_of(session: Session, regions: list[tuple[str, str | None]]) -> tuple[Webhook, ...]:
    """Active webhook subscriptions of these (region kind, id) pairs."""
    return _webhooks(session, regions)


def overrides_of(session: Session, home_id: str | None) -> HomeOverrides:
    cache = _of_transaction(session, _OVERRIDE_CACHE)
    ov = cache[home_id] if home_id in cache else (session.get(HomeOverride, home_id) if home_id else None)
    if ov is None:
        return NO_OVERRIDES
    return HomeOverrides(frozenset(map(str, ov.suppress)), frozenset(map(str, ov.frequent_false)), ov.note)


def place_of(
    session: Session, gateway_id: str, sensor_id: str | None, default_district: str | None = None
) -> Place:
    """Where an alarm of this gateway/sensor goes. Unknown gateways go to the district."""
    places = _of_transaction(session, _PLACE_CACHE)
    row = places.get(gateway_id) or session.execute(_place_query().where(Gateway.id == gateway_id)).first()
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
