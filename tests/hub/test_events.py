"""The event store: exactly once by id, duplicates told apart, out-of-order seq kept."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.db.engine import make_engine, make_session_factory
from hub.db.errors import StoreError
from hub.db.events import StoredEvent, event_row, store_events
from protocols import Event, EventKind, EventState
from safehome.testing.events import make_event

NOW = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)


def store(factory: sessionmaker[Session], events: Sequence[Event]) -> list[bool]:
    with factory() as s, s.begin():
        return store_events(s, events, NOW)


def count(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(StoredEvent)) or 0)


def test_new_events_are_stored_with_all_fields(session_factory: sessionmaker[Session]) -> None:
    ev = make_event(values={"lel": 12.5}, kind=EventKind.GAS, sensor="gas-1")
    assert store(session_factory, [ev]) == [True]
    with session_factory() as s:
        row = s.get(StoredEvent, ev.id)
        assert row is not None
        assert (row.gateway_id, row.seq, row.sensor_id, row.kind, row.state, row.alarm_class) == (
            "gw-1",
            1,
            "gas-1",
            "gas",
            "alarm",
            "alarm",
        )
        assert row.values == {"lel": 12.5}
        assert row.payload["id"] == ev.id
        assert row.received_at == NOW
        assert row.device_ts == dt.datetime.fromtimestamp(ev.ts / 1000, dt.UTC)
        assert row.synced is True


def test_duplicates_are_reported_and_not_stored_again(session_factory: sessionmaker[Session]) -> None:
    a, b, c = make_event(seq=1), make_event(seq=2), make_event(seq=3)
    assert store(session_factory, [a, b]) == [True, True]
    assert store(session_factory, [b, c, a]) == [False, True, False]
    assert count(session_factory) == 3


def test_duplicate_within_one_batch_is_stored_once(session_factory: sessionmaker[Session]) -> None:
    a = make_event()
    assert store(session_factory, [a, a, make_event(seq=2), a]) == [True, False, True, False]
    assert count(session_factory) == 2


def test_out_of_order_and_repeated_seq_are_stored(session_factory: sessionmaker[Session]) -> None:
    events = [make_event(seq=5), make_event(seq=3), make_event(seq=5), make_event(seq=0)]
    assert store(session_factory, events) == [True] * 4
    with session_factory() as s:
        seqs = sorted(s.scalars(select(StoredEvent.seq)))
    assert seqs == [0, 3, 5, 5]


def test_gateway_event_without_sensor_and_restore(session_factory: sessionmaker[Session]) -> None:
    ev = make_event(sensor=None, kind=EventKind.MAINS_LOST, state=EventState.RESTORE)
    assert store(session_factory, [ev]) == [True]
    with session_factory() as s:
        row = s.get(StoredEvent, ev.id)
        assert row is not None
        assert (row.sensor_id, row.state, row.alarm_class) == (None, "restore", "trouble")


def test_rollback_stores_nothing(session_factory: sessionmaker[Session]) -> None:
    ev = make_event()
    with session_factory() as s:
        s.begin()
        assert store_events(s, [ev], NOW) == [True]
        s.rollback()
    assert count(session_factory) == 0
    assert store(session_factory, [ev]) == [True]  # so the resend is new again


def test_large_batch_spans_chunks(session_factory: sessionmaker[Session]) -> None:
    events = [make_event(seq=i) for i in range(1234)]
    assert store(session_factory, events) == [True] * 1234
    assert store(session_factory, events[::2]) == [False] * 617
    assert count(session_factory) == 1234


def test_naive_received_at_is_refused(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s, pytest.raises(ValueError, match="timezone-aware"):
        store_events(s, [make_event()], dt.datetime(2026, 1, 1))


def test_database_errors_become_store_errors(tmp_path: object) -> None:
    engine = make_engine("sqlite://")  # no tables: the insert fails
    try:
        with make_session_factory(engine)() as s, pytest.raises(StoreError, match="storing 1 events"):
            store_events(s, [make_event()], NOW)
    finally:
        engine.dispose()


def test_event_row_is_plain_data() -> None:
    ev = make_event(values={"battery_v": 2.9}, kind=EventKind.BATTERY_LOW)
    row = event_row(ev, NOW)
    assert row["alarm_class"] == "trouble"
    assert row["values"] == {"battery_v": 2.9}


def test_concurrent_workers_store_each_event_once(engine: Engine, db_url: str) -> None:
    """Two workers (own engines, own connections) race to store the same 300 events."""
    events = [make_event(gw="gw-race", seq=i) for i in range(300)]
    results: dict[int, list[bool]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(n: int) -> None:
        eng = make_engine(db_url)
        try:
            factory = make_session_factory(eng)
            barrier.wait()
            out: list[bool] = []
            for i in range(0, 300, 20):  # many small transactions interleave
                batch = events[i : i + 20] if n == 0 else list(reversed(events[i : i + 20]))
                got = store(factory, batch)
                out += got if n == 0 else list(reversed(got))
            results[n] = out
        except BaseException as exc:
            errors.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=worker, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    # Every event was new for exactly one worker.
    assert [a + b for a, b in zip(results[0], results[1], strict=True)] == [1] * 300
    assert count(make_session_factory(engine)) == 300
