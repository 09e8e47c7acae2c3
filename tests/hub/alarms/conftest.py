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
from hub.registry.models import District, Gateway, Home, Sensor, Subdistrict, Workstation

#: 10:00 in Shanghai: day shift at every workstation.
DAY = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
#: 02:00 in Shanghai: night.
NIGHT = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)


def seed_registry(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        s.add(District(id="pudong", name="浦东新区城运中心", timezone="Asia/Shanghai", phone="+86-d"))
        s.add(Subdistrict(id="sd-01", district_id="pudong", name="sd1", phone="+86-sd1"))
        s.add(Subdistrict(id="sd-02", district_id="pudong", name="sd2", phone="+86-sd2"))
        s.flush()
        for n, sd in ((1, "sd-01"), (2, "sd-01"), (3, "sd-02")):
            s.add(
                Workstation(
                    id=f"ws-000{n}",
                    subdistrict_id=sd,
                    name=f"ws{n}",
                    phone=f"+86-ws{n}",
                    oncall_phone=f"+86-oncall{n}",
                    day_start=dt.time(8),
                    day_end=dt.time(20),
                )
            )
        s.flush()
        for n in (1, 2, 3):
            s.add(
                Home(
                    id=f"home-{n}",
                    workstation_id=f"ws-000{n}",
                    address=f"路{n}号",
                    residents=[{"name": "resident", "birth_year": 1938}],
                    emergency_contacts=[{"name": "daughter", "relation": "daughter", "phone": f"+86-fam{n}"}],
                )
            )
        s.flush()
        for n in (1, 2, 3):
            s.add(Gateway(id=f"gw-{n}", home_id=f"home-{n}"))
        s.flush()
        for n in (1, 2, 3):
            s.add(
                Sensor(
                    gateway_id=f"gw-{n}",
                    id="smoke-1",
                    model="smoke-dry-contact",
                    kind="smoke",
                    location="kitchen",
                )
            )
            s.add(
                Sensor(
                    gateway_id=f"gw-{n}", id="panic-1", model="panic-button", kind="panic", location="bedroom"
                )
            )


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
    seed_registry(sessions)
    clock = ManualClock(DAY)
    yield Hub(db_url, engine, sessions, clock, AlarmEngine(sessions, clock))
    engine.dispose()
