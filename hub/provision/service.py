"""Provisioning steps on the hub's database. Each function runs in the caller's
transaction and takes ``now`` (tests pass their clock); errors name what is wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.events import StoredEvent
from hub.db.state import GatewayState
from hub.provision.errors import GatewayMismatch, NotReady, ProvisionError, UnknownHome
from hub.provision.models import ProvisionedGateway
from hub.provision.outcome import Outcome, outcome
from hub.provision.plan import GatewayPlan, PlannedSensor, Scalar
from hub.provision.walktest import Seen, WalkResult, evaluate
from hub.registry.models import Gateway, Home, Sensor

#: Test mode ends by itself this long after it was switched on, whatever the installer does.
TEST_MODE_MAX_S = 3600
#: After a walk test, test mode stays on this long: the restores of the sensors just
#: triggered (a smoke contact opening again, mains back) still arrive as tests.
SETTLE_S = 120


def choose_gateway(session: Session, home_id: str, gateway_id: str | None) -> tuple[Home, str, bool]:
    """The home and its gateway id; ``True`` when that gateway is not registered yet."""
    home = session.get(Home, home_id)
    if home is None:
        raise UnknownHome(f"home {home_id!r} is not in the registry (import it first: safehome hub import)")
    existing = sorted(session.scalars(select(Gateway.id).where(Gateway.home_id == home_id)))
    if gateway_id is None:
        if len(existing) == 1:
            return home, existing[0], False
        if not existing:
            raise GatewayMismatch(f"home {home_id!r} has no gateway in the registry: give its id (--gateway)")
        raise GatewayMismatch(f"home {home_id!r} has {len(existing)} gateways ({', '.join(existing)}): choose one (--gateway)")
    gw = session.get(Gateway, gateway_id)
    if gw is not None and gw.home_id != home_id:
        raise GatewayMismatch(f"gateway {gateway_id!r} belongs to home {gw.home_id!r}, not {home_id!r}")
    return home, gateway_id, gw is None


def provision(
    session: Session,
    home_id: str,
    gateway_id: str | None,
    now: dt.datetime,
    *,
    wiring: Mapping[str, Mapping[str, Scalar]] | None = None,
    credential: str = "password",
    by: str = "",
) -> GatewayPlan:
    """Register (or check) the home's gateway and record its provisioning: a new config
    revision, the wiring overrides, test mode and sign-off reset (a re-provisioned gateway
    needs a new walk test)."""
    home, gw_id, created = choose_gateway(session, home_id, gateway_id)
    if created:
        session.add(Gateway(id=gw_id, home_id=home_id))
        session.flush()
    sensors = list(session.scalars(select(Sensor).where(Sensor.gateway_id == gw_id).order_by(Sensor.id)))
    if not sensors:
        raise ProvisionError(
            f"gateway {gw_id!r} of home {home_id!r} has no sensors in the registry: add them to the "
            "register (sensors table) and import it"
        )
    wiring = dict(wiring or {})
    unknown = sorted(set(wiring) - {s.id for s in sensors})
    if unknown:
        raise ProvisionError(f"wiring given for {', '.join(unknown)}: not a sensor of gateway {gw_id!r} in the registry")
    rec = session.get(ProvisionedGateway, gw_id)
    if rec is None:
        rec = ProvisionedGateway(gateway_id=gw_id, home_id=home_id, revision=1, provisioned_at=now)
        session.add(rec)
    else:
        rec.revision += 1
    rec.home_id, rec.provisioned_at, rec.provisioned_by, rec.credential = home_id, now, by, credential
    rec.wiring = {k: dict(v) for k, v in wiring.items()}
    rec.test_mode_until = None
    rec.walktest_passed = None
    rec.walktest_result = None
    rec.walktest_started_at = rec.walktest_ended_at = None
    rec.signed_off_at, rec.signed_off_by = None, ""
    session.flush()
    return _plan(home, gw_id, rec, sensors, created)


def plan_of(session: Session, gateway_id: str) -> GatewayPlan:
    """The plan of an already provisioned gateway (for a config push)."""
    rec = _record(session, gateway_id)
    home = session.get(Home, rec.home_id)
    if home is None:
        raise UnknownHome(f"home {rec.home_id!r} of gateway {gateway_id!r} is no longer in the registry")
    sensors = list(session.scalars(select(Sensor).where(Sensor.gateway_id == gateway_id).order_by(Sensor.id)))
    return _plan(home, gateway_id, rec, sensors, False)


def bump_revision(session: Session, gateway_id: str) -> GatewayPlan:
    """A new config revision from the registry as it is now (sensors changed)."""
    _record(session, gateway_id).revision += 1
    session.flush()
    return plan_of(session, gateway_id)


def config_outcome(session: Session, gateway_id: str) -> Outcome:
    """Whether the gateway applied or refused the hub's current config revision, from the
    status it last sent (stored by ingest in gateway state)."""
    rec = _record(session, gateway_id)
    status = session.scalars(select(GatewayState.last_status).where(GatewayState.gateway_id == gateway_id)).first()
    return outcome(status, rec.revision)


def _plan(home: Home, gw_id: str, rec: ProvisionedGateway, sensors: Sequence[Sensor], created: bool) -> GatewayPlan:
    wiring = rec.wiring or {}
    return GatewayPlan(
        gateway_id=gw_id,
        home_id=home.id,
        address=home.address,
        revision=rec.revision,
        sensors=tuple(
            PlannedSensor(s.id, s.model, s.kind, s.location, s.interval_s, dict(wiring.get(s.id, {})))
            for s in sensors
        ),
        created=created,
    )


def _record(session: Session, gateway_id: str) -> ProvisionedGateway:
    rec = session.get(ProvisionedGateway, gateway_id)
    if rec is None:
        raise NotReady(f"gateway {gateway_id!r} was never provisioned (safehome provision gateway --home …)")
    return rec


# --- test mode -----------------------------------------------------------------------


def in_test_mode(session: Session, gateway_id: str, now: dt.datetime) -> bool:
    """Whether the gateway's events are tests now (never routed to people)."""
    until = session.scalars(
        select(ProvisionedGateway.test_mode_until).where(ProvisionedGateway.gateway_id == gateway_id)
    ).first()
    return until is not None and now < until


def start_test_mode(session: Session, gateway_id: str, now: dt.datetime, for_s: float) -> dt.datetime:
    rec = _record(session, gateway_id)
    until = now + dt.timedelta(seconds=min(for_s, TEST_MODE_MAX_S))
    rec.test_mode_until = until
    rec.walktest_started_at, rec.walktest_ended_at = now, None
    rec.walktest_passed, rec.walktest_result = None, None
    session.flush()
    return until


def end_test_mode(session: Session, gateway_id: str, now: dt.datetime, settle_s: float = SETTLE_S) -> None:
    rec = _record(session, gateway_id)
    if rec.test_mode_until is not None:
        rec.test_mode_until = min(rec.test_mode_until, now + dt.timedelta(seconds=settle_s))
    session.flush()


# --- walk test -----------------------------------------------------------------------


def home_sensors(session: Session, gateway_id: str) -> dict[str, list[str]]:
    """Every gateway of this gateway's home -> its sensor ids (the walk test's checklist)."""
    rec = _record(session, gateway_id)
    rows = session.execute(
        select(Gateway.id, Sensor.id)
        .outerjoin(Sensor, Sensor.gateway_id == Gateway.id)
        .where(Gateway.home_id == rec.home_id)
        .order_by(Gateway.id, Sensor.id)
    ).all()
    out: dict[str, list[str]] = {gateway_id: []}
    for gw, sensor in rows:
        out.setdefault(gw, [])
        if sensor is not None:
            out[gw].append(sensor)
    return out


def events_since(session: Session, gateway_ids: Sequence[str], since: dt.datetime) -> list[Seen]:
    """Sensor events in alarm state from these gateways received since ``since``."""
    rows = session.execute(
        select(StoredEvent.gateway_id, StoredEvent.sensor_id, StoredEvent.kind, StoredEvent.received_at)
        .where(
            StoredEvent.gateway_id.in_(list(gateway_ids)),
            StoredEvent.received_at >= since,
            StoredEvent.sensor_id.is_not(None),
            StoredEvent.state == "alarm",
        )
        .order_by(StoredEvent.received_at)
    ).all()
    return [Seen(gw, s, kind, at) for gw, s, kind, at in rows if s is not None]


def walktest_started(session: Session, gateway_id: str) -> dt.datetime:
    started = _record(session, gateway_id).walktest_started_at
    if started is None:
        raise NotReady(f"no walk test is running for gateway {gateway_id!r}")
    return started


def record_walktest(session: Session, result: WalkResult, now: dt.datetime) -> None:
    rec = _record(session, result.gateway_id)
    rec.walktest_ended_at = now
    rec.walktest_passed = result.passed
    rec.walktest_result = result.to_json()
    session.flush()
    end_test_mode(session, result.gateway_id, now)


def signoff(session: Session, gateway_id: str, now: dt.datetime, by: str = "") -> ProvisionedGateway:
    """Complete the install: only after a passed walk test of the current provisioning.
    Test mode ends now: from here on every alarm goes to people."""
    rec = _record(session, gateway_id)
    if rec.walktest_passed is not True:
        state = "has not been run" if rec.walktest_passed is None else "failed"
        detail = ""
        if rec.walktest_result and rec.walktest_result.get("problems"):
            detail = ": " + "; ".join(rec.walktest_result["problems"])
        raise NotReady(f"gateway {gateway_id!r}: the walk test {state}{detail}; run safehome provision walktest {gateway_id}")
    rec.signed_off_at, rec.signed_off_by = now, by
    rec.test_mode_until = None
    session.flush()
    return rec


def record_of(session: Session, gateway_id: str) -> ProvisionedGateway:
    return _record(session, gateway_id)


def walktest_status(session: Session, gateway_id: str) -> WalkResult:
    """The running (or last) walk test as it stands: what reported, what is missing."""
    started = walktest_started(session, gateway_id)
    sensors = home_sensors(session, gateway_id)
    return evaluate(gateway_id, sensors, events_since(session, list(sensors), started))


def finish_walktest(session: Session, gateway_id: str, now: dt.datetime) -> WalkResult:
    """Evaluate and record the walk test; test mode ends after :data:`SETTLE_S`."""
    result = walktest_status(session, gateway_id)
    record_walktest(session, result, now)
    return result
