"""SQL time-series backend: write, idempotent resend, range + downsample queries, retention."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, select

from hub.timeseries import Point, TimeSeriesStore
from hub.timeseries.errors import QueryError, WriteError
from hub.timeseries.models import ReadingRow, RollupRow
from hub.timeseries.retention import RetentionPolicy, apply_retention
from hub.timeseries.sql import SqlTimeSeriesStore
from safehome.testing.poll import until

T0 = dt.datetime(2026, 11, 28, 0, 0, tzinfo=dt.UTC)
MS0 = int(T0.timestamp() * 1000)
MIN = dt.timedelta(minutes=1)


def minute_points(n: int, gw: str = "gw-1", sensor: str = "gas-1", metric: str = "gas_lel") -> list[Point]:
    """One point per minute from T0, value = minute index."""
    return [Point(gw, sensor, metric, MS0 + i * 60_000, float(i)) for i in range(n)]


def rows(engine: Engine, model: type[ReadingRow] | type[RollupRow]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar() or 0)


def test_is_a_time_series_store(engine: Engine) -> None:
    assert isinstance(SqlTimeSeriesStore(engine), TimeSeriesStore)


def test_write_and_query_raw(engine: Engine) -> None:
    store = SqlTimeSeriesStore(engine)
    store.write(minute_points(10))
    store.write([Point("gw-1", "gas-1", "gas_ppm", T0, 99.0), Point("gw-2", "gas-1", "gas_lel", T0, 50.0)])
    got = store.query("gw-1", "gas-1", "gas_lel", T0 + 2 * MIN, T0 + 5 * MIN)
    assert got == [(T0 + 2 * MIN, 2.0), (T0 + 3 * MIN, 3.0), (T0 + 4 * MIN, 4.0)]  # end exclusive
    assert store.query("gw-1", "gas-1", "gas_ppm", T0, T0 + MIN) == [(T0, 99.0)]
    assert store.query("gw-1", "smoke-1", "gas_lel", T0, T0 + MIN) == []


def test_datetime_and_ms_timestamps_are_equivalent(engine: Engine) -> None:
    store = SqlTimeSeriesStore(engine)
    store.write([Point("gw-1", "s", "m", T0 + MIN, 1.5)])
    store.write([Point("gw-1", "s", "m", MS0 + 60_000, 1.5)])  # the same point again
    assert store.query("gw-1", "s", "m", T0, T0 + 2 * MIN) == [(T0 + MIN, 1.5)]
    with pytest.raises(ValueError, match="naive"):
        store.write([Point("gw-1", "s", "m", dt.datetime(2026, 1, 1), 1.0)])


def test_resent_batch_is_stored_once(engine: Engine) -> None:
    store = SqlTimeSeriesStore(engine, batch_size=7)
    points = minute_points(30)
    store.write(points)
    store.write(points[10:20] + minute_points(35)[30:])
    assert rows(engine, ReadingRow) == 35


def test_duplicates_within_one_write_are_stored_once(engine: Engine) -> None:
    store = SqlTimeSeriesStore(engine)
    p = Point("gw-1", "s", "m", MS0, 1.0)
    store.write([p, p, Point("gw-1", "s", "m", MS0, 2.0), Point("gw-1", "s", "m", MS0 + 1, 3.0)])
    assert store.query("gw-1", "s", "m", T0, T0 + MIN) == [
        (T0, 1.0),
        (T0 + dt.timedelta(milliseconds=1), 3.0),
    ]


def test_non_finite_values_are_skipped_not_fatal(engine: Engine) -> None:
    store = SqlTimeSeriesStore(engine)
    store.write([Point("gw-1", "s", "m", MS0, float("nan")), Point("gw-1", "s", "m", MS0 + 1, 2.0)])
    store.write([Point("gw-1", "s", "m", MS0 + 2, float("inf"))])
    assert store.query("gw-1", "s", "m", T0, T0 + MIN) == [(T0 + dt.timedelta(milliseconds=1), 2.0)]
    assert store.invalid == 2


def test_downsampled_query_averages_per_bucket(engine: Engine) -> None:
    store = SqlTimeSeriesStore(engine)
    store.write(minute_points(25))
    got = store.query("gw-1", "gas-1", "gas_lel", T0, T0 + 25 * MIN, every=dt.timedelta(minutes=10))
    assert got == [(T0, 4.5), (T0 + 10 * MIN, 14.5), (T0 + 20 * MIN, 22.0)]
    # Empty buckets are left out.
    store.write([Point("gw-1", "gas-1", "gas_lel", T0 + 60 * MIN, 7.0)])
    got = store.query("gw-1", "gas-1", "gas_lel", T0, T0 + 2 * 60 * MIN, every=dt.timedelta(minutes=30))
    assert got == [(T0, 12.0), (T0 + 60 * MIN, 7.0)]


def test_bad_queries(engine: Engine) -> None:
    store = SqlTimeSeriesStore(engine)
    with pytest.raises(QueryError, match="before start"):
        store.query("gw-1", "s", "m", T0, T0 - MIN)
    with pytest.raises(QueryError, match="positive"):
        store.query("gw-1", "s", "m", T0, T0 + MIN, every=dt.timedelta(0))


def test_write_failure_is_a_write_error(tmp_path: object) -> None:
    from hub.db.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")  # no tables
    try:
        with pytest.raises(WriteError, match="storing 3 readings failed"):
            SqlTimeSeriesStore(engine).write(minute_points(3))
    finally:
        engine.dispose()


def test_retention_folds_old_readings_into_rollups(engine: Engine) -> None:
    store = SqlTimeSeriesStore(engine)
    store.write(minute_points(180))  # 3 h, values 0..179
    policy = RetentionPolicy(
        raw_retention=dt.timedelta(hours=1), bucket=dt.timedelta(hours=1), rollup_retention=None
    )
    now = T0 + dt.timedelta(hours=2, minutes=30)  # cutoff 01:30 → complete buckets before 01:00
    report = apply_retention(engine, now, policy)
    assert report.raw_deleted == 60
    assert rows(engine, RollupRow) == 1
    assert rows(engine, ReadingRow) == 120
    # The query result is the same as before folding, at bucket resolution.
    hourly = store.query("gw-1", "gas-1", "gas_lel", T0, T0 + 3 * 60 * MIN, every=dt.timedelta(hours=1))
    assert hourly == [(T0, 29.5), (T0 + 60 * MIN, 89.5), (T0 + 120 * MIN, 149.5)]
    # The raw query now shows the rollup point at its bucket start.
    raw = store.query("gw-1", "gas-1", "gas_lel", T0, T0 + 61 * MIN)
    assert raw == [(T0, 29.5), (T0 + 60 * MIN, 60.0)]
    # Running again changes nothing.
    again = apply_retention(engine, now, policy)
    assert again.raw_deleted == 0 and rows(engine, RollupRow) == 1


def test_late_readings_merge_into_existing_rollup(engine: Engine) -> None:
    store = SqlTimeSeriesStore(engine)
    policy = RetentionPolicy(
        raw_retention=dt.timedelta(hours=1), bucket=dt.timedelta(hours=1), rollup_retention=None
    )
    store.write([Point("gw-1", "s", "m", MS0 + i * 60_000, 10.0) for i in range(3)])
    apply_retention(engine, T0 + dt.timedelta(hours=3), policy)
    store.write([Point("gw-1", "s", "m", MS0 + 30 * 60_000, 40.0)])  # arrives late
    apply_retention(engine, T0 + dt.timedelta(hours=3), policy)
    with engine.connect() as conn:
        row = conn.execute(select(RollupRow.value, RollupRow.min, RollupRow.max, RollupRow.n)).one()
    assert tuple(row) == (17.5, 10.0, 40.0, 4)


def test_rollups_expire(engine: Engine) -> None:
    store = SqlTimeSeriesStore(engine)
    store.write(minute_points(120))
    policy = RetentionPolicy(
        raw_retention=dt.timedelta(minutes=1),
        bucket=dt.timedelta(hours=1),
        rollup_retention=dt.timedelta(days=1),
    )
    apply_retention(engine, T0 + dt.timedelta(hours=3), policy)
    assert rows(engine, RollupRow) == 2
    report = apply_retention(engine, T0 + dt.timedelta(days=1, hours=1, minutes=30), policy)
    assert report.rollups_deleted == 1
    assert rows(engine, RollupRow) == 1


def test_factory_opens_the_configured_backend(engine: Engine) -> None:
    from hub.timeseries.factory import open_store

    assert isinstance(open_store("sql", engine=engine), SqlTimeSeriesStore)
    with pytest.raises(ValueError, match="needs the hub database"):
        open_store("sql")
    with pytest.raises(ValueError, match="needs InfluxSettings"):
        open_store("influx")


def test_concurrent_retention_runs_fold_each_reading_once(engine: Engine, db_url: str) -> None:
    import threading

    from hub.db.engine import make_engine

    store = SqlTimeSeriesStore(engine)
    for gw in range(20):
        store.write([Point(f"gw-{gw}", "s", "m", MS0 + i * 60_000, 1.0) for i in range(240)])
    policy = RetentionPolicy(
        raw_retention=dt.timedelta(hours=1), bucket=dt.timedelta(hours=1), rollup_retention=None
    )
    now = T0 + dt.timedelta(hours=5)
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        eng = make_engine(db_url)
        try:
            barrier.wait()
            apply_retention(eng, now, policy)
        except BaseException as exc:
            errors.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    with engine.connect() as conn:
        assert conn.execute(select(func.sum(RollupRow.n))).scalar() == 20 * 240
    assert rows(engine, ReadingRow) == 0


async def test_retention_service_runs_and_stops(engine: Engine) -> None:

    from hub.timeseries.retention import RetentionService

    SqlTimeSeriesStore(engine).write(minute_points(120))
    policy = RetentionPolicy(raw_retention=dt.timedelta(minutes=1), bucket=dt.timedelta(hours=1))
    svc = RetentionService(engine, policy, interval_s=3600, clock=lambda: T0 + dt.timedelta(hours=3))
    await svc.start()
    await until(lambda: svc.runs > 0, within=20, what="a retention run")
    await svc.stop()  # returns at once although the next run is an hour away
    assert svc.last_report is not None and svc.last_report.raw_deleted == 120
    assert rows(engine, RollupRow) == 2
