"""The InfluxDB backend read back from a real VictoriaMetrics (``query_api="victoria"``:
``/api/v1/export``, because VictoriaMetrics takes line-protocol writes but not Flux): raw
range and downsampling give exactly what the SQL backend gives for the same points."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.db.engine import make_engine
from hub.db.migrate import upgrade
from hub.timeseries import Point
from hub.timeseries.errors import QueryError
from hub.timeseries.influx import InfluxSettings, InfluxTimeSeriesStore
from hub.timeseries.sql import SqlTimeSeriesStore
from hub.timeseries.victoria import downsample, parse_export, series_selector
from tests.support.victoria import VictoriaMetrics


@pytest.fixture(scope="module")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    vm = VictoriaMetrics(tmp_path_factory.mktemp("victoria-q")).start()
    yield vm
    vm.stop()


def test_selector_escapes_label_values() -> None:
    assert series_selector("reading", "gw-1", "gas-1", "gas_lel") == (
        '{__name__="reading_gas_lel",gw="gw-1",sensor="gas-1"}'
    )
    assert series_selector("m", 'a"b', "c\\d", "x") == '{__name__="m_x",gw="a\\"b",sensor="c\\\\d"}'


def test_parse_and_downsample_are_half_open_and_epoch_aligned() -> None:
    body = b'{"metric":{},"values":[1,2,3,4],"timestamps":[1000,1500,2000,61000]}\n\n'
    assert parse_export(body, 1000, 61000) == [(1000, 1.0), (1500, 2.0), (2000, 3.0)]
    assert downsample([(1000, 1.0), (1500, 2.0), (61000, 4.0)], 60_000) == [(0, 1.5), (60_000, 4.0)]
    with pytest.raises(QueryError, match="unreadable line"):
        parse_export(b"not json\n", 0, 1)
    with pytest.raises(QueryError):
        downsample([], 0)


def test_victoria_query_matches_the_sql_backend(victoria: VictoriaMetrics, tmp_path: Path) -> None:
    store = InfluxTimeSeriesStore(
        InfluxSettings(
            url=victoria.url, token="t", org="safehome", bucket="telemetry", flush_interval_ms=100,
            query_api="victoria",
        )
    )
    url = f"sqlite:///{tmp_path / 'ts.db'}"
    upgrade(url)
    engine = make_engine(url)
    sql = SqlTimeSeriesStore(engine)
    # whole minutes, a few hours back (inside VictoriaMetrics' retention, never in the future)
    base = dt.datetime.fromtimestamp((int(time.time()) // 3600 - 3) * 3600, dt.UTC)
    points = [Point("gw-q1", "gas-1", "gas_lel", base + dt.timedelta(seconds=30 * i), float(i % 7)) for i in range(240)]
    points += [Point("gw-q1", "gas-2", "gas_lel", base, 99.0), Point("gw-q2", "gas-1", "gas_lel", base, 98.0)]
    try:
        store.write(points)
        sql.write(points)
        victoria.wait_for('reading_gas_lel{gw="gw-q1",sensor="gas-1"}', 240)
        start, end = base + dt.timedelta(minutes=10), base + dt.timedelta(hours=1, minutes=10)
        raw = store.query("gw-q1", "gas-1", "gas_lel", start, end)
        assert len(raw) == 120 and raw[0][0] == start and raw[-1][0] < end
        assert raw == sql.query("gw-q1", "gas-1", "gas_lel", start, end)
        for every in (dt.timedelta(minutes=5), dt.timedelta(minutes=7), dt.timedelta(hours=1)):
            assert store.query("gw-q1", "gas-1", "gas_lel", start, end, every) == sql.query(
                "gw-q1", "gas-1", "gas_lel", start, end, every
            ), every
        assert store.query("gw-q1", "nope", "gas_lel", start, end) == []
        with pytest.raises(QueryError):
            store.query("gw-q1", "gas-1", "gas_lel", end, start)
    finally:
        store.close()
        engine.dispose()


def test_an_unreachable_server_is_a_query_error(tmp_path: Path) -> None:
    store = InfluxTimeSeriesStore(
        InfluxSettings(url="http://127.0.0.1:9", token="t", org="o", bucket="b", query_api="victoria", timeout_ms=2000)
    )
    try:
        now = dt.datetime.now(dt.UTC)
        with pytest.raises(QueryError, match="VictoriaMetrics export failed"):
            store.query("gw", "s", "m", now - dt.timedelta(hours=1), now)
    finally:
        store.close()
