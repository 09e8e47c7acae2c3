"""The InfluxDB backend read back from a real VictoriaMetrics (``query_api="victoria"``:
``/api/v1/export``, because VictoriaMetrics takes line-protocol writes but not Flux): raw
range and downsampling give exactly what the SQL backend gives for the same points."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.tokens import create_token
from hub.db.engine import make_engine
from hub.db.migrate import upgrade
from hub.registry.models import Sensor
from hub.timeseries import Point
from hub.timeseries.errors import QueryError
from hub.timeseries.influx import InfluxSettings, InfluxTimeSeriesStore
from hub.timeseries.sql import SqlTimeSeriesStore
from hub.timeseries.victoria import downsample, parse_export, series_selector
from tests.hub.conftest import DAY, Hub
from tests.support.http import serve_app
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


def test_the_readings_api_on_victoria_answers_like_on_sql(victoria: VictoriaMetrics, hub: Hub) -> None:
    """``GET /api/v1/homes/{id}/readings`` with the hub's time series in VictoriaMetrics."""
    with hub.sessions() as s, s.begin():
        s.add(Sensor(gateway_id="gw-1", id="gas-1", model="gas-detector", kind="gas", location="kitchen"))
        token, _ = create_token(s, "viewer", "workstation:ws-0001", "api-vm", hub.clock.now())
    start = DAY - dt.timedelta(hours=6)
    points = [Point("gw-1", "gas-1", "gas_lel", start + dt.timedelta(minutes=2 * i), float(i % 5)) for i in range(180)]
    store = InfluxTimeSeriesStore(
        InfluxSettings(url=victoria.url, token="t", org="o", bucket="b", flush_interval_ms=100, query_api="victoria")
    )
    sql = SqlTimeSeriesStore(hub.engine)
    try:
        store.write(points)
        sql.write(points)
        victoria.wait_for('reading_gas_lel{gw="gw-1",sensor="gas-1"}', 180)
        params: dict[str, str | int] = {
            "metric": "gas_lel", "since": start.isoformat(), "until": DAY.isoformat(), "every": 1800
        }
        answers = []
        for backend in (store, sql):
            app = make_api_app(ApiContext(hub.sessions, hub.clock, timeseries=backend))
            with serve_app(app) as base:
                r = httpx.get(
                    f"{base}/api/v1/homes/home-1/readings",
                    params={**params, "kind": "gas"},
                    headers={"Authorization": f"Bearer {token}"},
                )
            assert r.status_code == 200, r.text
            answers.append(r.json())
        on_vm, on_sql = answers
        assert on_vm == on_sql
        [series] = on_vm["series"]
        assert len(series["points"]) == 12 and all(v == 2.0 for _, v in series["points"])
    finally:
        store.close()
