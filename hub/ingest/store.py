"""The ingest's writes: events in one transaction, buffered connectivity state in another,
telemetry to the time-series store. Synchronous (SQLAlchemy); the service runs them in a worker thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.conditions import dialect_insert
from hub.db.errors import StoreError
from hub.db.events import store_events
from hub.db.state import GatewayState, SensorState
from hub.ingest.plan import GatewaySeen, Plan, StateBuffer
from hub.sinks import AfterCommit, NewEvent
from hub.timeseries import TimeSeriesStore
from protocols import Event


def _write_gateways(session: Session, gateways: dict[str, GatewaySeen]) -> None:
    # Sorted keys: two workers upserting overlapping gateways lock rows in the same order.
    live = [(gw, g) for gw, g in sorted(gateways.items()) if not g.retained_only]
    seeded = [(gw, g) for gw, g in sorted(gateways.items()) if g.retained_only and g.online is not None]
    with_status = [
        {
            "gateway_id": gw,
            "online": bool(g.online),
            "last_seen_at": g.last_seen,
            "last_status": g.status,
            "last_seq": g.last_seq,
        }
        for gw, g in live
        if g.status is not None
    ]
    traffic = [
        {"gateway_id": gw, "online": bool(g.online), "last_seen_at": g.last_seen, "last_seq": g.last_seq}
        for gw, g in live
        if g.status is None
    ]
    if with_status:
        stmt = dialect_insert(session, GatewayState)
        ex = stmt.excluded
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["gateway_id"],
                set_={
                    "online": ex.online,
                    "last_status": ex.last_status,
                    "last_seen_at": func.coalesce(ex.last_seen_at, GatewayState.last_seen_at),
                    "last_seq": func.coalesce(ex.last_seq, GatewayState.last_seq),
                },
            ),
            with_status,
        )
    if traffic:
        stmt = dialect_insert(session, GatewayState)
        ex = stmt.excluded
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["gateway_id"],
                set_={
                    "online": ex.online,
                    "last_seen_at": ex.last_seen_at,
                    "last_seq": func.coalesce(ex.last_seq, GatewayState.last_seq),
                },
            ),
            traffic,
        )
    if seeded:
        rows = [{"gateway_id": gw, "online": bool(g.online), "last_status": g.status} for gw, g in seeded]
        session.execute(dialect_insert(session, GatewayState).on_conflict_do_nothing(), rows)


def _write_sensors(session: Session, sensors: dict[tuple[str, str], dt.datetime]) -> None:
    if not sensors:
        return
    rows = [{"gateway_id": g, "sensor_id": s, "last_seen_at": at} for (g, s), at in sorted(sensors.items())]
    stmt = dialect_insert(session, SensorState)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["gateway_id", "sensor_id"], set_={"last_seen_at": stmt.excluded.last_seen_at}
        ),
        rows,
    )


#: Decides new events inside the storing transaction (a guarded :class:`hub.sinks.TransactionalSink`).
Decider = Callable[[Session, Sequence[NewEvent]], AfterCommit | None]


def store_event_batch(
    factory: sessionmaker[Session],
    events: list[Event],
    received_at: dt.datetime,
    deciders: Sequence[Decider] = (),
) -> tuple[list[bool], list[AfterCommit]]:
    """Store events in one transaction; True per new event. ``deciders`` see the new events
    inside that transaction; what they return is to be run after the commit.

    Raises :class:`StoreError`; nothing is committed then, and nothing must be acked.
    """
    try:
        with factory() as session, session.begin():
            answers = store_events(session, events, received_at)
            after: list[AfterCommit] = []
            new = [NewEvent(e, received_at) for e, is_new in zip(events, answers, strict=True) if is_new]
            for decide in deciders if new else ():
                cb = decide(session, new)
                if cb is not None:
                    after.append(cb)
            return answers, after
    except SQLAlchemyError as exc:
        raise StoreError(f"storing a batch of {len(events)} events failed: {exc}") from exc


def store_state(factory: sessionmaker[Session], state: StateBuffer) -> None:
    """Write buffered connectivity (gateway and sensor last-seen, status) in one transaction.
    Raises :class:`StoreError`; nothing is committed then."""
    try:
        with factory() as session, session.begin():
            _write_gateways(session, state.seeds)  # first: they only create missing rows
            _write_gateways(session, state.gateways)
            _write_sensors(session, state.sensors)
    except SQLAlchemyError as exc:
        raise StoreError(
            f"storing the state of {len(state.gateways)} gateways, {len(state.sensors)} sensors failed: {exc}"
        ) from exc


def store_telemetry(ts: TimeSeriesStore, plan: Plan) -> int:
    """Write the plan's readings; returns how many. Raises :class:`StoreError` on failure."""
    points = plan.points()
    if not points:
        return 0
    try:
        ts.write(points)
    except Exception as exc:
        # any backend failure (SQL, InfluxDB HTTP, …) means: not stored, do not ack, retry
        raise StoreError(f"writing {len(points)} readings failed: {exc}") from exc
    return len(points)
