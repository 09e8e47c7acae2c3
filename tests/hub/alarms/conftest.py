"""Fixtures of the alarm tests: a small registry (one district, two subdistricts, three
workstations, one home/gateway each) in the ``db_url`` database, and a manual clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms.clock import ManualClock
from hub.alarms.store.engine import AlarmEngine
from hub.db.engine import make_engine, make_session_factory
from safehome.testing.registry import seed_small_district

#: 10:00 in Shanghai: day shift at every workstation.
DAY = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
#: 02:00 in Shanghai: night.
NIGHT = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)


@dataclass
class Hub:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]
    clock: ManualClock
    alarms: AlarmEngine


@pytest.fixture
def hub(db_url: str) -> Iterator[Hub]:
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    seed_small_district(sessions)
    clock = ManualClock(DAY)
    yield Hub(db_url, engine, sessions, clock, AlarmEngine(sessions, clock))
    engine.dispose()
