"""The ingest's writes: events in one transaction, buffered connectivity state in another,
telemetry to the time-series store. Synchronous (SQLAlchemy); the service runs them in a worker thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence, Set
from typing import Any

import orjson
from sqlalchemy import TextClause, case, func, or_, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.db.dialect import dialect_insert
from hub.db.errors import StoreError
from hub.db.events import store_events
from hub.db.state import GatewayState, SensorState
from hub.ingest.plan import GatewaySeen, Plan, StateBuffer
from hub.sinks import Decided, NewEvent
from hub.timeseries import TimeSeriesStore
from protocols import Event

# Several lanes and workers flush gateway state, each once a second, in no particular
# order: a flush may carry state older than what another one wrote already. So status
# (online, last status, clock offset) is written only over an older one (hub receipt,
# ``status_at``), and traffic never changes ``online`` (it may have been heard before a
# Last-Will that another lane wrote first; a gateway says it is back with its birth
# status, and every heartbeat says it again). Traffic makes a new row online: there is no
# status to contradict. tests/hub/ingest/test_state_order.py replays the races.


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
            "status_at": g.status_at,
            "clock_offset_s": g.clock_offset_s,
        }
        for gw, g in live
        if g.status is not None
    ]
    traffic = [
        {"gateway_id": gw, "online": True, "last_seen_at": g.last_seen, "last_seq": g.last_seq}
        for gw, g in live
        if g.status is None
    ]
    if with_status:
        stmt = dialect_insert(session, GatewayState)
        ex = stmt.excluded
        newer = or_(GatewayState.status_at.is_(None), ex.status_at >= GatewayState.status_at)

        def if_newer(value: Any, column: Any) -> Any:
            return case((newer, value), else_=column)

        offset = func.coalesce(ex.clock_offset_s, GatewayState.clock_offset_s)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["gateway_id"],
                set_={
                    "online": if_newer(ex.online, GatewayState.online),
                    "last_status": if_newer(ex.last_status, GatewayState.last_status),
                    "status_at": if_newer(ex.status_at, GatewayState.status_at),
                    "clock_offset_s": if_newer(offset, GatewayState.clock_offset_s),
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
Decider = Callable[[Session, Sequence[NewEvent]], Decided | None]


def store_event_batch(
    factory: sessionmaker[Session],
    events: list[Event],
    received_at: dt.datetime,
    deciders: Sequence[Decider] = (),
    clock_suspect: Set[str] = frozenset(),
) -> tuple[list[bool], list[Decided]]:
    """Store events in one transaction; True per new event. ``deciders`` see the new events
    inside that transaction; what they decided is returned (to be run after the commit).
    ``clock_suspect``: ids of events stored flagged (their synced device time is not trusted).

    Raises :class:`StoreError`; nothing is committed then, and nothing must be acked.
    """
    try:
        with factory() as session, session.begin():
            answers = store_events(session, events, received_at, clock_suspect)
            after: list[Decided] = []
            new = [NewEvent(e, received_at) for e, is_new in zip(events, answers, strict=True) if is_new]
            for decide in deciders if new else ():
                decided = decide(session, new)
                if decided is not None:
                    after.append(decided)
            return answers, after
    except SQLAlchemyError as exc:
        raise StoreError(f"storing a batch of {len(events)} events failed: {exc}") from exc


# --- SQLite: each upsert is one statement over a JSON array of rows -----------------------
# A row-by-row executemany re-takes Python's GIL after every row (SQLite steps without it);
# in a busy hub process each re-take waits, while the single write lock is held: a
# telemetry worker's flush held it 100-450 ms during a recovery (safehome bench recovery
# with lock tracing). One statement runs all rows inside SQLite. Same results as the
# generic path (tests/hub/ingest/test_state_buffer.py compares them).

#: SQLAlchemy's SQLite DATETIME text format (UtcDateTime stores naive UTC)
_SQLITE_TS = "%Y-%m-%d %H:%M:%S.%f"
_GW, _SENSOR = GatewayState.__tablename__, SensorState.__tablename__


def _rows_sql(table: str, columns: list[str], conflict: str, action: str) -> TextClause:
    picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
    return text(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {picks} FROM json_each(:rows) WHERE true "
        f"ON CONFLICT ({conflict}) {action}"
    )


_NEWER = f"({_GW}.status_at IS NULL OR excluded.status_at >= {_GW}.status_at)"


def _if_newer(value: str, column: str) -> str:
    return f"{column} = CASE WHEN {_NEWER} THEN {value} ELSE {_GW}.{column} END"


_SQLITE_STATUS = _rows_sql(
    _GW,
    ["gateway_id", "online", "last_seen_at", "last_status", "last_seq", "status_at", "clock_offset_s"],
    "gateway_id",
    f"DO UPDATE SET {_if_newer('excluded.online', 'online')}, "
    f"{_if_newer('excluded.last_status', 'last_status')}, {_if_newer('excluded.status_at', 'status_at')}, "
    f"{_if_newer(f'coalesce(excluded.clock_offset_s, {_GW}.clock_offset_s)', 'clock_offset_s')}, "
    f"last_seen_at = coalesce(excluded.last_seen_at, {_GW}.last_seen_at), "
    f"last_seq = coalesce(excluded.last_seq, {_GW}.last_seq)",
)  # fmt: skip
_SQLITE_TRAFFIC = _rows_sql(
    _GW, ["gateway_id", "online", "last_seen_at", "last_seq"], "gateway_id",
    f"DO UPDATE SET last_seen_at = excluded.last_seen_at, "
    f"last_seq = coalesce(excluded.last_seq, {_GW}.last_seq)",
)  # fmt: skip
_SQLITE_SEEDS = _rows_sql(_GW, ["gateway_id", "online", "last_status"], "gateway_id", "DO NOTHING")
_SQLITE_SENSORS = _rows_sql(
    _SENSOR, ["gateway_id", "sensor_id", "last_seen_at"], "gateway_id, sensor_id",
    "DO UPDATE SET last_seen_at = excluded.last_seen_at",
)  # fmt: skip


class _Stamps(dict[dt.datetime, str]):
    """SQLite text of each time, formatted once: a flush's thousands of rows share the few
    receive times of the batches it merged (formatting each was ~15 % of a status flush)."""

    def __call__(self, v: dt.datetime | None) -> str | None:
        if v is None:
            return None
        text = self.get(v)
        if text is None:
            text = self[v] = v.astimezone(dt.UTC).strftime(_SQLITE_TS)
        return text


def _sqlite_write(session: Session, stmt: TextClause, rows: list[list[Any]]) -> None:
    if rows:
        session.execute(stmt, {"rows": orjson.dumps(rows).decode()})


def _sqlite_gateways(session: Session, gateways: dict[str, GatewaySeen], _ts: _Stamps) -> None:
    """What :func:`_write_gateways` does, in three statements."""
    ordered = sorted(gateways.items())
    live = [(gw, g) for gw, g in ordered if not g.retained_only]
    _sqlite_write(session, _SQLITE_STATUS, [
        [gw, bool(g.online), _ts(g.last_seen), g.status, g.last_seq, _ts(g.status_at), g.clock_offset_s]
        for gw, g in live if g.status is not None
    ])  # fmt: skip
    _sqlite_write(session, _SQLITE_TRAFFIC, [
        [gw, True, _ts(g.last_seen), g.last_seq] for gw, g in live if g.status is None
    ])  # fmt: skip
    _sqlite_write(session, _SQLITE_SEEDS, [
        [gw, bool(g.online), g.status] for gw, g in ordered if g.retained_only and g.online is not None
    ])  # fmt: skip


def _sqlite_state(session: Session, state: StateBuffer) -> None:
    ts = _Stamps()
    _sqlite_gateways(session, state.seeds, ts)  # first: they only create missing rows
    _sqlite_gateways(session, state.gateways, ts)
    _sqlite_write(session, _SQLITE_SENSORS, [[g, s, ts(at)] for (g, s), at in sorted(state.sensors.items())])


def store_state(factory: sessionmaker[Session], state: StateBuffer, generic: bool = False) -> None:
    """Write buffered connectivity (gateway and sensor last-seen, status) in one transaction.
    Raises :class:`StoreError`; nothing is committed then. ``generic``: the portable path
    even on SQLite (for tests comparing the two)."""
    try:
        with factory() as session, session.begin():
            if session.get_bind().dialect.name == "sqlite" and not generic:
                _sqlite_state(session, state)
                return
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
