"""SQLite transactions take the write lock at BEGIN (IMMEDIATE); pure readers opt out.

A DEFERRED transaction that reads, then writes after another writer committed, fails at
once with "database is locked" (no busy wait). Under the ingest's steady writes the alarm
engine lost that race again and again; these tests pin the fix.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError

from hub.db.engine import SQLITE_BEGIN, make_engine, make_session_factory, read_only


def _engine(path: Path, timeout_s: float = 30.0) -> Engine:
    engine = make_engine(f"sqlite:///{path}", connect_args={"timeout": timeout_s})
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER)")
        c.exec_driver_sql("INSERT OR IGNORE INTO t (id, v) VALUES (1, 0)")
    return engine


def _begins(engine: Engine) -> list[str]:
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(_conn: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if statement.startswith("BEGIN"):
            seen.append(statement)

    return seen


def test_transactions_begin_immediate_and_readers_deferred(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "a.db")
    seen = _begins(engine)
    sessions = make_session_factory(engine)
    with sessions() as s, s.begin():
        s.execute(text("SELECT v FROM t"))
    with sessions() as s:
        read_only(s).execute(text("SELECT v FROM t"))
    assert seen == ["BEGIN IMMEDIATE", "BEGIN DEFERRED"]
    engine.dispose()


def test_unknown_begin_mode_is_refused_with_its_name(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "b.db")
    conn = engine.connect().execution_options(**{SQLITE_BEGIN: "soon"})
    with pytest.raises(ValueError, match="sqlite_begin='SOON'"):
        conn.exec_driver_sql("SELECT 1")
    conn.close()
    engine.dispose()


def test_a_writer_holds_the_lock_from_begin_and_readers_are_not_blocked(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    engine = _engine(path)
    impatient = _engine(path, timeout_s=0.05)
    holder = make_session_factory(engine)()
    holder.begin()
    holder.execute(text("SELECT v FROM t"))  # a read only, but BEGIN IMMEDIATE took the lock
    try:
        with make_session_factory(impatient)() as other:
            assert read_only(other).execute(text("SELECT v FROM t")).scalar() == 0  # readers go on
        other = make_session_factory(impatient)()
        with pytest.raises(OperationalError, match="locked"):
            other.execute(text("SELECT 1"))  # another writer cannot even begin
        other.close()
    finally:
        holder.rollback()
        holder.close()
    impatient.dispose()
    engine.dispose()


def test_read_then_write_waits_for_the_other_writer_instead_of_failing(tmp_path: Path) -> None:
    """The alarm engine's pattern: read, decide, write, while another writer commits."""
    path = tmp_path / "d.db"
    engine = _engine(path)
    sessions = make_session_factory(engine)
    writer = sessions()
    writer.begin()
    writer.execute(text("UPDATE t SET v = v + 1 WHERE id = 1"))
    has_read = threading.Event()
    result: list[Any] = []

    def read_decide_write() -> None:
        try:
            with sessions() as s, s.begin():  # IMMEDIATE: waits here for the writer's lock
                v = s.execute(text("SELECT v FROM t WHERE id = 1")).scalar_one()
                has_read.set()
                s.execute(text("UPDATE t SET v = :v WHERE id = 1"), {"v": v + 10})
            result.append("ok")
        except Exception as exc:  # pragma: no cover - the failure this test guards against
            result.append(exc)

    t = threading.Thread(target=read_decide_write)
    t.start()
    # With the fix the reader cannot read before the writer commits, so this wait runs out.
    # Without it (DEFERRED) the reader reads the old snapshot first, and its write after
    # the commit below fails with "database is locked": the ordering that broke alarms.
    assert not has_read.wait(1.0)
    writer.commit()
    writer.close()
    t.join(30)
    assert result == ["ok"]
    with sessions() as s:
        assert s.execute(text("SELECT v FROM t WHERE id = 1")).scalar_one() == 11  # no lost update
    engine.dispose()
