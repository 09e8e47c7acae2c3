"""Storage benchmarks: SQL time-series writes, event-store inserts, registry import.

Run: ``python -m bench.storage [--db-url URL]`` (default: a temporary SQLite file). Prints
figures; nothing is asserted. Medians of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hub.db.engine import make_engine, make_session_factory
from hub.db.events import store_events
from hub.db.migrate import upgrade
from hub.registry.files import dump_yaml
from hub.registry.service import import_register
from hub.timeseries import Point
from hub.timeseries.sql import SqlTimeSeriesStore
from protocols import Event, EventKind, EventState, new_event_id

_RUN = itertools.count()


def fresh_url(base: str | None, tmp: Path, name: str) -> str:
    if base is None:
        return f"sqlite:///{tmp / name}.db"
    return base


def bench_readings(url: str, n: int = 200_000, batch: int = 1000) -> float:
    engine = make_engine(url)
    store = SqlTimeSeriesStore(engine)
    # Distinct time ranges per run, so that no run merely hits the previous run's keys.
    t0 = int(time.time() * 1000) + 10**9 * next(_RUN)
    points = [Point(f"gw-{i % 2000:06d}", "gas-1", "gas_lel", t0 + i, float(i)) for i in range(n)]
    start = time.perf_counter()
    for i in range(0, n, batch):
        store.write(points[i : i + batch])
    elapsed = time.perf_counter() - start
    engine.dispose()
    return n / elapsed


def bench_growth(url: str, series: int = 5000, rounds: int = 6, n: int = 100_000) -> list[float]:
    """Write rate per round of ``n`` readings over ``series`` interleaved series, as the table grows."""
    engine = make_engine(url)
    store = SqlTimeSeriesStore(engine)
    rates = []
    for _ in range(rounds):
        t0 = int(time.time() * 1000) + 10**9 * next(_RUN)
        points = [Point(f"gw-{i % series:06d}", "gas-1", "gas_lel", t0 + i, float(i)) for i in range(n)]
        start = time.perf_counter()
        for i in range(0, n, 1000):
            store.write(points[i : i + 1000])
        rates.append(n / (time.perf_counter() - start))
    engine.dispose()
    return rates


def bench_events(url: str, n: int = 20_000, batch: int = 100) -> float:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    events = [
        Event(
            gw=f"gw-{i % 500:06d}",
            seq=i,
            id=new_event_id(),
            ts=1_764_316_800_000 + i,
            synced=True,
            sensor="smoke-1",
            kind=EventKind.SMOKE,
            state=EventState.ALARM,
        )
        for i in range(n)
    ]
    now = dt.datetime.now(dt.UTC)
    start = time.perf_counter()
    for i in range(0, n, batch):
        with factory() as s, s.begin():
            store_events(s, events[i : i + batch], now)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return n / elapsed


def bench_import(url: str, tmp: Path, homes: int = 10_000) -> float:
    from safehome.testing.registry import sample_register

    path = tmp / "register.yaml"
    path.write_text(dump_yaml(sample_register(homes=homes)), encoding="utf-8")
    engine = make_engine(url)
    start = time.perf_counter()
    import_register(make_session_factory(engine), [path])
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def median(runs: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db-url", default=None, help="an empty, migrated or migratable database")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--growth", action="store_true", help="only: write rate as the readings table grows")
    args = parser.parse_args()
    if args.growth:
        with tempfile.TemporaryDirectory() as d:
            url = fresh_url(args.db_url, Path(d), "growth")
            upgrade(url)
            rates = ", ".join(f"{r:,.0f}" for r in bench_growth(url))
            print(
                f"{url.split(':')[0]}: rounds of 100,000 readings over 5,000 series, writes of 1,000: {rates} readings/s"
            )
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        url = fresh_url(args.db_url, tmp, "bench")
        upgrade(url)
        backend = url.split(":")[0]
        r = median(args.runs, lambda: bench_readings(url))
        print(f"{backend}: SQL time series, 200,000 readings in writes of 1,000: {r:,.0f} readings/s")
        e = median(args.runs, lambda: bench_events(url))
        print(f"{backend}: event store, 20,000 events in transactions of 100: {e:,.0f} events/s")
        counter = iter(range(1000))

        def one_import() -> float:
            u = fresh_url(None, tmp, f"imp{next(counter)}") if args.db_url is None else url
            upgrade(u)
            return bench_import(u, tmp)

        t = median(1 if args.db_url else args.runs, one_import)
        print(f"{backend}: registry import, 10,000 homes / 30,000 sensors (YAML, first import): {t:.1f} s")


if __name__ == "__main__":
    main()
