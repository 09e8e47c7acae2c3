"""SQLite's one write lock goes to the most urgent waiter of the process (hub/db/gate.py):
a transaction storing a smoke alarm never loses the lock to storm work begun after it."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from hub.db.engine import make_engine, make_session_factory, read_only, write_gate
from hub.db.gate import BACKGROUND, INGEST, LIFE_SAFETY, WriteGate, writing_as
from safehome.testing.poll import wait_for


def served_order(gate: WriteGate, held_as: int, waiters: list[tuple[str, int]]) -> list[str]:
    """Hold the gate as ``held_as``, queue ``waiters`` (name, priority) one by one, each
    seen waiting before the next comes, then release: the names in the order served."""
    token = gate.acquire(held_as)
    order: list[str] = []

    def writer(name: str, priority: int) -> None:
        t = gate.acquire(priority)
        order.append(name)
        gate.release(t)

    threads = []
    for name, prio in waiters:
        th = threading.Thread(target=writer, args=(name, prio))
        th.start()
        threads.append(th)
        n = len(threads)
        wait_for(lambda n=n: len(gate._waiting) == n, what=f"{name} waiting")  # type: ignore[misc]
    gate.release(token)
    for th in threads:
        th.join(10)
    return order


def test_the_gate_goes_to_the_most_urgent_waiter_then_the_earliest() -> None:
    gate = WriteGate(aging_s=3600)  # no waiter ages here, however slow the machine
    waiters = [("storm-1", BACKGROUND), ("ack", INGEST), ("storm-2", BACKGROUND), ("smoke", LIFE_SAFETY)]
    assert served_order(gate, BACKGROUND, waiters) == ["smoke", "ack", "storm-1", "storm-2"]


def test_a_background_writer_that_waited_long_goes_before_newer_ingest_never_before_life_safety() -> None:
    """Ingest batches that never stop coming do not starve a storm's decisions: a background
    waiter older than aging_s counts as ingest (first come, first served among them)."""
    gate = WriteGate(aging_s=0.0)
    waiters = [("storm", BACKGROUND), ("ack-1", INGEST), ("smoke", LIFE_SAFETY), ("ack-2", INGEST)]
    assert served_order(gate, INGEST, waiters) == ["smoke", "storm", "ack-1", "ack-2"]


def test_the_gate_is_reentrant_in_one_thread_and_survives_a_stale_holder() -> None:
    gate = WriteGate(stale_s=0.0)
    outer = gate.acquire()
    inner = gate.acquire()  # the same thread: never waits for itself
    gate.release(inner)
    got: list[int] = []
    th = threading.Thread(target=lambda: got.append(gate.acquire(LIFE_SAFETY)))
    th.start()
    th.join(10)
    assert got, "a waiter behind a holder presumed gone (stale) went ahead"
    gate.release(outer)  # the stale holder's late release does not free the new holder's gate
    assert gate._holder == got[0]
    gate.release(got[0])
    assert gate._holder is None


def test_a_life_safety_transaction_commits_before_storm_writers_that_waited_longer(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'gate.db'}")
    sessions = make_session_factory(engine)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE log (n INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT)")
    gate = write_gate(engine)
    assert gate is not None

    def write(who: str, priority: int) -> None:
        with writing_as(priority), sessions() as s, s.begin():
            s.execute(text("INSERT INTO log (who) VALUES (:w)"), {"w": who})

    holder = sessions()
    holder.begin()
    holder.execute(text("INSERT INTO log (who) VALUES ('first')"))  # holds the write lock
    threads = []
    for who, prio in [("storm-a", BACKGROUND), ("storm-b", BACKGROUND), ("smoke", LIFE_SAFETY)]:
        th = threading.Thread(target=write, args=(who, prio))
        th.start()
        threads.append(th)
        n = len(threads)
        wait_for(lambda n=n: len(gate._waiting) == n, what=f"{who} waiting")  # type: ignore[misc]
    # a pure reader never queues behind the writers
    with sessions() as r:
        assert read_only(r).execute(text("SELECT count(*) FROM log")).scalar() == 0
    holder.commit()
    holder.close()
    for th in threads:
        th.join(30)
    with sessions() as s:
        order = list(read_only(s).scalars(text("SELECT who FROM log ORDER BY n")))
    engine.dispose()
    assert order == ["first", "smoke", "storm-a", "storm-b"]
    assert gate._holder is None
