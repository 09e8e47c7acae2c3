"""InfluxDB backend: the writer against a real VictoriaMetrics (InfluxDB 2 write API),
retry when the server comes late, bounded backpressure when it does not come at all."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.timeseries import Point, TimeSeriesStore
from hub.timeseries.errors import BackpressureError, QueryError
from hub.timeseries.influx import InfluxSettings, InfluxTimeSeriesStore, flux_query, line
from safehome.testing.poll import wait_for
from tests.support.victoria import VictoriaMetrics


@pytest.fixture(scope="module")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    vm = VictoriaMetrics(tmp_path_factory.mktemp("victoria")).start()
    yield vm
    vm.stop()


def settings(url: str, **kw: object) -> InfluxSettings:
    base: dict[str, object] = {
        "url": url,
        "token": "test-token",
        "org": "safehome",
        "bucket": "telemetry",
        "batch_size": 500,
        "flush_interval_ms": 100,
        "retry_interval_ms": 200,
        "max_retry_delay_ms": 1000,
        "max_close_wait_ms": 5000,
    }
    base.update(kw)
    return InfluxSettings(**base)  # type: ignore[arg-type]


def now_ms() -> int:
    return int(time.time() * 1000) - 60_000


def test_line_protocol() -> None:
    p = Point("gw-1", "gas-1", "gas_lel", 1_764_316_800_000, 12)
    assert line(p) == "reading,gw=gw-1,sensor=gas-1 gas_lel=12.0 1764316800000"
    assert line(Point("a b", "c,d", "e=f", 1, 0.5), "m x") == "m\\ x,gw=a\\ b,sensor=c\\,d e\\=f=0.5 1"
    assert line(Point("gw", "s", "m", 1, float("nan"))) is None


def test_flux_query_text() -> None:
    start = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
    q = flux_query(
        "telemetry",
        "reading",
        "gw-1",
        "gas-1",
        "gas_lel",
        start,
        start + dt.timedelta(hours=1),
        dt.timedelta(minutes=5),
    )
    assert 'from(bucket: "telemetry")' in q
    assert "range(start: 2026-11-28T00:00:00Z, stop: 2026-11-28T01:00:00Z)" in q
    assert 'r.gw == "gw-1" and r.sensor == "gas-1" and r._field == "gas_lel"' in q
    assert 'aggregateWindow(every: 300000ms, fn: mean, createEmpty: false, timeSrc: "_start")' in q
    with pytest.raises(QueryError):
        flux_query("b", "m", "g", "s", "x", start, start - dt.timedelta(seconds=1))


def test_writes_arrive_in_victoriametrics(victoria: VictoriaMetrics) -> None:
    store = InfluxTimeSeriesStore(settings(victoria.url))
    assert isinstance(store, TimeSeriesStore)
    base = now_ms()
    try:
        points = [Point("gw-vm-1", "gas-1", "gas_lel", base + i * 10, float(i)) for i in range(1200)]
        points += [Point("gw-vm-1", "gas-1", "battery_v", base, 3.1)]
        for i in range(0, len(points), 100):
            store.write(points[i : i + 100])
        assert store.flush(timeout=20)
    finally:
        store.close()
    series = victoria.wait_for('reading_gas_lel{gw="gw-vm-1"}', 1200)
    assert len(series) == 1
    assert series[0]["metric"] == {"__name__": "reading_gas_lel", "gw": "gw-vm-1", "sensor": "gas-1"}
    assert series[0]["timestamps"][:3] == [base, base + 10, base + 20]
    assert series[0]["values"][:3] == [0, 1, 2]
    assert victoria.wait_for('reading_battery_v{gw="gw-vm-1"}', 1)[0]["values"] == [3.1]
    stats = store.stats()
    assert (stats.accepted, stats.written, stats.dropped, stats.failed, stats.pending) == (
        1201,
        1201,
        0,
        0,
        0,
    )


def test_retries_until_the_server_comes_up(tmp_path: Path) -> None:
    late = VictoriaMetrics(tmp_path / "late")  # port chosen, nothing listening yet
    store = InfluxTimeSeriesStore(settings(late.url, max_retries=20, max_retry_time_ms=60_000))
    base = now_ms()
    try:
        store.write([Point("gw-vm-late", "gas-1", "gas_lel", base + i, float(i)) for i in range(50)])
        # the first attempt failed: nobody listens
        wait_for(lambda: store.stats().retries > 0, within=20, what="a retry")
        late.start()
        assert store.flush(timeout=30)
        assert store.stats().written == 50
        assert late.count('reading_gas_lel{gw="gw-vm-late"}') == 50 or late.wait_for(
            'reading_gas_lel{gw="gw-vm-late"}', 50
        )
    finally:
        store.close()
        late.stop()


def test_backpressure_drops_and_counts_instead_of_blocking(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = VictoriaMetrics(tmp_path / "dead")  # never started
    store = InfluxTimeSeriesStore(
        settings(dead.url, max_pending=1000, max_retries=2, retry_interval_ms=100, max_close_wait_ms=2000)
    )
    try:
        for batch in range(30):  # 3,000 points offered, at most 1,000 may be in flight
            store.write(
                [
                    Point("gw-vm-dead", "s", "m", now_ms() + i, 1.0)
                    for i in range(batch * 100, batch * 100 + 100)
                ]
            )
        stats = store.stats()
        assert stats.accepted <= 1000
        assert stats.dropped == 3000 - stats.accepted
        # Once the retries are exhausted the points count as failed and room frees up.
        assert store.flush(timeout=30)
        assert store.stats().failed == stats.accepted
        # Every batch failed (and was retried), but the log got one line of each kind.
        records = [r for r in caplog.records if r.name == "hub.timeseries.influx"]
        assert store.stats().retries > 2
        assert 1 <= len(records) <= 2
        store.write([Point("gw-vm-dead", "s", "m", now_ms(), 1.0)])
        assert store.stats().accepted == stats.accepted + 1
    finally:
        store.close()


def test_non_finite_values_are_counted_not_sent(victoria: VictoriaMetrics) -> None:
    store = InfluxTimeSeriesStore(settings(victoria.url))
    try:
        store.write(
            [
                Point("gw-vm-nan", "s", "m", now_ms(), float("inf")),
                Point("gw-vm-nan", "s", "m", now_ms(), 2.0),
            ]
        )
        assert store.flush(timeout=20)
        assert store.stats().invalid == 1
        assert store.stats().written == 1
    finally:
        store.close()


def test_backpressure_can_reject_instead_of_dropping(tmp_path: Path) -> None:
    dead = VictoriaMetrics(tmp_path / "dead")  # never started
    store = InfluxTimeSeriesStore(
        url=dead.url,
        token="t",
        org="o",
        bucket="b",
        max_pending=150,
        overflow="reject",
        max_retries=1,
        retry_interval_ms=100,
        max_close_wait_ms=2000,
    )
    try:
        store.write([Point("gw-vm-rej", "s", "m", now_ms() + i, 1.0) for i in range(100)])
        with pytest.raises(BackpressureError, match="limit 150"):
            store.write([Point("gw-vm-rej", "s", "m", now_ms() + i, 1.0) for i in range(100)])
        stats = store.stats()
        assert (stats.accepted, stats.rejected, stats.dropped) == (100, 100, 0)
    finally:
        store.close()


def test_settings_or_keywords_not_both() -> None:
    with pytest.raises(TypeError, match="not both"):
        InfluxTimeSeriesStore(settings("http://127.0.0.1:1"), bucket="x")
