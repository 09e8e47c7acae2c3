"""The durable buffer: lanes, bounded telemetry with oldest-first eviction, seq across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.errors import StoreError
from edge.store import LANE_ALARM, LANE_EVENT, LANE_TELEMETRY, SEQ_BLOCK, Entry, Store, read_depth
from protocols import new_event_id


def entry(store: Store, lane: int) -> Entry:
    seq = store.next_seq()
    return Entry(
        new_event_id(),
        lane,
        "telemetry" if lane == LANE_TELEMETRY else "event",
        seq,
        1000 + seq,
        b'{"x":%d}' % seq,
    )


def test_full_of_telemetry_still_accepts_alarms_and_evicts_oldest_telemetry(tmp_path: Path) -> None:
    s = Store(tmp_path / "b.db", max_telemetry=10)
    tele = [entry(s, LANE_TELEMETRY) for _ in range(10)]
    assert s.add_telemetry(tele) == 0
    alarms = [entry(s, LANE_ALARM) for _ in range(50)]  # far beyond the bound: all kept
    for a in alarms:
        s.add_events([a])
    s.add_events([entry(s, LANE_EVENT)])
    newer = [entry(s, LANE_TELEMETRY) for _ in range(4)]
    assert s.add_telemetry(newer) == 4
    assert s.depth() == {LANE_ALARM: 50, LANE_EVENT: 1, LANE_TELEMETRY: 10}
    kept = {e.id for e in s.top(LANE_TELEMETRY, 100)}
    assert kept == {e.id for e in tele[4:] + newer}  # the 4 oldest went
    assert s.evicted == 4
    assert {e.id for e in s.top(LANE_ALARM, 100)} == {a.id for a in alarms}


def test_a_batch_larger_than_the_bound_keeps_its_newest(tmp_path: Path) -> None:
    s = Store(tmp_path / "b.db", max_telemetry=10)
    batch = [entry(s, LANE_TELEMETRY) for _ in range(15)]
    s.add_telemetry(batch)
    assert [e.id for e in s.top(LANE_TELEMETRY, 100)] == [e.id for e in batch[5:]]


def test_order_and_remove(tmp_path: Path) -> None:
    s = Store(tmp_path / "b.db")
    t = [entry(s, LANE_TELEMETRY) for _ in range(3)]
    s.add_telemetry(t)
    assert [e.id for e in s.top(LANE_TELEMETRY, 2)] == [t[0].id, t[1].id]
    assert [e.id for e in s.top(LANE_TELEMETRY, 2, newest_first=True)] == [t[2].id, t[1].id]
    assert s.remove([t[0].id, "not-there"]) == 1
    assert s.depth() == {LANE_TELEMETRY: 2}
    assert read_depth(tmp_path / "b.db") == {"telemetry": 2}


def test_seq_never_goes_back_across_restarts(tmp_path: Path) -> None:
    s = Store(tmp_path / "b.db")
    first = [s.next_seq() for _ in range(5)]
    s.close()  # (like a crash: the in-memory counter is lost)
    s = Store(tmp_path / "b.db")
    after = s.next_seq()
    assert first == [1, 2, 3, 4, 5]
    assert after > first[-1]
    assert after == SEQ_BLOCK + 1
    s.close()


def test_events_survive_reopen_and_meta(tmp_path: Path) -> None:
    s = Store(tmp_path / "b.db")
    a = entry(s, LANE_ALARM)
    s.add_events([a])
    s.add_events([a])  # the same id twice is one row
    s.put_meta("config", {"revision": 3})
    s.close()
    s = Store(tmp_path / "b.db")
    assert s.top(LANE_ALARM, 10) == [a]
    assert s.get_meta("config") == {"revision": 3}
    assert s.check()


def test_unopenable_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="cannot open buffer"):
        Store(tmp_path / "dir.db")
