"""The event feed under the live stream: ordered, gap-free, nothing read twice."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.orm import Session

from hub.alarms.engine.actions import log_step
from hub.alarms.engine.decide import event_signal
from hub.alarms.feed import BATCH, GAP_MAX_S, GAP_MIN_S, Tail, head
from hub.alarms.store.models import Alarm
from hub.api.auth import alarm_scope
from hub.api.tokens import Principal
from safehome.testing.events import make_event
from safehome.testing.poll import wait_for
from safehome.testing.postgres import PostgresServer
from tests.hub.conftest import Hub

DISTRICT = alarm_scope(Principal("1", "viewer", "district", "pudong", "wall", None))


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def note(hub: Hub, alarm_id: str, text: str) -> None:
    with hub.sessions() as s, s.begin():
        alarm = s.get(Alarm, alarm_id)
        assert alarm is not None
        log_step(s, alarm, "reactivate", hub.clock.now(), text)


def uncommitted_line(hub: Hub, alarm_id: str, text: str) -> Session:
    """A history line inserted (its id drawn) in a transaction left open: the caller
    commits or rolls it back."""
    s = hub.sessions()
    s.begin()
    alarm = s.get(Alarm, alarm_id)
    assert alarm is not None
    log_step(s, alarm, "reactivate", hub.clock.now(), text)
    s.flush()
    return s


def poll(hub: Hub, tail: Tail) -> list[tuple[int, str]]:
    with hub.sessions() as s:
        return [(i, e["event"]) for i, e in tail.poll(s, DISTRICT)]


def test_a_tail_reads_each_line_once_in_batches(hub: Hub) -> None:
    a = hub.alarms.handle(*event_signal(make_event(), hub.clock.now())).alarm_id or ""
    with hub.sessions() as s:
        tail = Tail(head(s) - 1)
    for n in range(BATCH + 20):  # a storm: more lines than one batch
        note(hub, a, f"#{n}")
    first = poll(hub, tail)
    second = poll(hub, tail)
    assert len(first) == BATCH and len(second) == 21 and poll(hub, tail) == []  # the raise + 520 lines
    ids = [i for i, _ in first + second]
    assert ids == sorted(set(ids))


def test_a_tail_holds_at_a_line_whose_transaction_is_still_open_on_postgresql(hub: Hub) -> None:
    """PostgreSQL: ids are drawn at insert, not at commit; a later id committed first must
    not make the reader skip the earlier one."""
    if hub.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: ids become visible in order")
    a = hub.alarms.handle(*event_signal(make_event("gw-1"), hub.clock.now())).alarm_id or ""
    b = hub.alarms.handle(*event_signal(make_event("gw-2"), hub.clock.now())).alarm_id or ""
    clock = Clock()
    with hub.sessions() as s:
        tail = Tail(head(s), monotonic=clock)
    slow = uncommitted_line(hub, a, "slow")  # id drawn, not committed
    note(hub, b, "fast")  # a higher id, committed first
    assert poll(hub, tail) == []  # holds before the gap
    clock.t += (GAP_MIN_S + GAP_MAX_S) / 2
    assert poll(hub, tail) == []  # still: the writer of the missing id is running
    slow.commit()
    slow.close()
    got = poll(hub, tail)
    assert [e for _, e in got] == ["alarm.reactivated", "alarm.reactivated"]
    assert got[0][0] < got[1][0]


def test_a_rolled_back_line_does_not_hold_the_tail_for_ever(hub: Hub) -> None:
    a = hub.alarms.handle(*event_signal(make_event("gw-1"), hub.clock.now())).alarm_id or ""
    clock = Clock()
    with hub.sessions() as s:
        tail = Tail(head(s), monotonic=clock)
    gone = uncommitted_line(hub, a, "rolled back")
    gone.rollback()
    gone.close()
    note(hub, a, "kept")
    got: list[tuple[int, str]] = []

    def moved_past() -> bool:
        # PostgreSQL: the tail holds until every transaction of the *cluster* that was
        # running when it saw the gap has ended; another database's writer (a parallel test,
        # another service on the same server) can keep it for a moment, so look again
        # until a deadline instead of exactly once
        clock.t += 10
        got.extend(poll(hub, tail))
        with hub.sessions() as s:
            return tail.position == head(s)

    wait_for(moved_past, within=30, what="the tail to move past the rolled-back line")
    assert [e for _, e in got] == ["alarm.reactivated"]  # "kept", once


def pg_only(hub: Hub) -> None:
    if hub.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: ids become visible in order")


def test_a_writer_open_too_long_does_not_stall_the_feed_and_its_line_comes_late(hub: Hub) -> None:
    """A bulk import in one transaction must not stop every console's live feed: after
    GAP_MAX_S the tail moves on, and the held line is delivered when it commits."""
    pg_only(hub)
    a = hub.alarms.handle(*event_signal(make_event("gw-1"), hub.clock.now())).alarm_id or ""
    b = hub.alarms.handle(*event_signal(make_event("gw-2"), hub.clock.now())).alarm_id or ""
    clock = Clock()
    with hub.sessions() as s:
        tail = Tail(head(s), monotonic=clock)
    slow = uncommitted_line(hub, a, "slow")
    note(hub, b, "fast")
    assert poll(hub, tail) == []
    clock.t += GAP_MIN_S
    assert poll(hub, tail) == []  # waits for the open writer
    clock.t += GAP_MAX_S
    fast = poll(hub, tail)
    assert [e for _, e in fast] == ["alarm.reactivated"] and tail.gaps_given_up == 1
    assert poll(hub, tail) == []  # nothing twice
    slow.commit()
    slow.close()
    late = poll(hub, tail)
    assert [e for _, e in late] == ["alarm.reactivated"]
    assert late[0][0] < fast[0][0]  # its id says where it belongs
    assert poll(hub, tail) == []
    note(hub, a, "after")  # the next gap-free line: no wait for the writer given up on
    assert [e for _, e in poll(hub, tail)] == ["alarm.reactivated"]


def test_a_writer_of_another_database_does_not_hold_the_feed(hub: Hub, pg_server: PostgresServer) -> None:
    """Other databases on the same server (another service, another test) write all the
    time; only this database's writers can fill a gap."""
    pg_only(hub)
    a = hub.alarms.handle(*event_signal(make_event("gw-1"), hub.clock.now())).alarm_id or ""
    other = pg_server.create_database("safehome_neighbour")
    clock = Clock()
    with hub.sessions() as s:
        tail = Tail(head(s), monotonic=clock)
    neighbour = psycopg.connect(other.replace("postgresql+psycopg://", "postgresql://", 1))
    try:
        neighbour.execute("CREATE TABLE t (x int)")
        neighbour.execute("INSERT INTO t VALUES (1)")  # holds a transaction id, left open
        gone = uncommitted_line(hub, a, "rolled back")
        gone.rollback()
        gone.close()
        note(hub, a, "kept")
        assert poll(hub, tail) == []  # the gap's first sight
        clock.t += GAP_MIN_S
        got = poll(hub, tail)  # the neighbour's open writer does not count
        assert [e for _, e in got] == ["alarm.reactivated"] and tail.gaps_given_up == 0
    finally:
        neighbour.close()
        pg_server.drop_database(other)
