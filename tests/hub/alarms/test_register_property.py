"""Property: whatever register the importer accepts, a smoke event from any of its homes, at
any instant, becomes exactly one alarm, decided normally (never the fail-safe path), with a
person on duty at that instant among its recipients: the workstation while the register says
it is staffed, otherwise the subdistrict center (staffed 24 h); and an escalation timer to
the subdistrict center. Duty hours cover every form: by day, across midnight, 24 h, none.
And when any decision step fails, exactly one alarm still reaches the home's subdistrict
center (24 h), flagged."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from hub.alarms.clock import ManualClock
from hub.alarms.engine.decide import AlarmEngine, Steps, event_signal
from hub.alarms.store.models import Alarm, AlarmTimer
from hub.db.engine import make_engine, make_session_factory
from hub.notify.models import Notification
from hub.registry.files import dump_yaml
from hub.registry.service import import_register
from protocols.catalogue import MODEL_KINDS
from safehome.testing.events import make_event
from tests.hub.alarms.conftest import broken

ZONES = ("Asia/Shanghai", "Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe")
SMOKE_MODELS = sorted(m for m, kinds in MODEL_KINDS.items() if "smoke" in kinds)
_db_counter = itertools.count()

hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 1, 30, 59]))
hours = st.one_of(
    st.tuples(hhmm, hhmm),  # by day or across midnight (and, rarely, equal)
    hhmm.map(lambda t: (t, t)),  # staffed 24 h
    st.just(("none", "none")),  # no day staff
)


@st.composite
def registers(draw: st.DrawFn) -> dict[str, Any]:
    n_sd = draw(st.integers(1, 2))
    n_ws = draw(st.integers(1, 3))
    n_homes = draw(st.integers(1, 4))
    sds = [{"id": f"sd-{i}", "name": f"center {i}", "phone": f"+86 21 5000 01{i:02d}"} for i in range(n_sd)]
    wss = []
    for i in range(n_ws):
        start, end = draw(hours)
        wss.append(
            {
                "id": f"ws-{i}",
                "subdistrict": f"sd-{draw(st.integers(0, n_sd - 1))}",
                "name": f"workstation {i}",
                "phone": f"+86 21 5000 10{i:02d}",
                "oncall_phone": f"+86 139 0000 10{i:02d}",
                "day_start": start,
                "day_end": end,
            }
        )
    homes, gateways, sensors = [], [], []
    for i in range(n_homes):
        homes.append(
            {
                "id": f"home-{i}",
                "workstation": f"ws-{draw(st.integers(0, n_ws - 1))}",
                "address": f"路{i}号",
                "residents": [{"name": f"王{i}"}],
                "emergency_contacts": draw(st.sampled_from([[], [{"name": "daughter", "phone": "+86 138 0000 0000"}]])),
            }
        )
        gateways.append({"id": f"gw-{i}", "home": f"home-{i}"})
        sensors.append({"id": "smoke-1", "gateway": f"gw-{i}", "model": draw(st.sampled_from(SMOKE_MODELS)), "kind": "smoke"})
    return {
        "version": 1,
        "district": {"id": "d-1", "name": "district", "timezone": draw(st.sampled_from(ZONES)), "phone": "+86 21 5000 0000"},
        "subdistricts": sds,
        "workstations": wss,
        "homes": homes,
        "gateways": gateways,
        "sensors": sensors,
    }


def staffed(ws: dict[str, Any], timezone: str, at: dt.datetime) -> bool:
    """The register's own words (docs/registry.md), written out independently of the hub."""
    if ws["day_start"] == "none":
        return False
    local = at.astimezone(zoneinfo.ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    start, end = (int(t[:2]) * 60 + int(t[3:]) for t in (ws["day_start"], ws["day_end"]))
    if start == end:
        return True
    return start <= minute < end if start < end else (minute >= start or minute < end)


@pytest.fixture(scope="module")
def fresh_db(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("registers")

    def make() -> str:
        path = root / f"hub-{next(_db_counter)}.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"

    return make


def imported(fresh_db: Any, tmp_path_factory: pytest.TempPathFactory, register: dict[str, Any]) -> Any:
    """A fresh database with ``register`` imported through the importer (which must accept it)."""
    engine = make_engine(fresh_db())
    path = tmp_path_factory.mktemp("yaml") / "register.yaml"
    path.write_text(dump_yaml(register), encoding="utf-8")
    import_register(make_session_factory(engine), [path])  # raises if refused
    return engine


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    register=registers(),
    at=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.just(dt.UTC)),
)
def test_any_accepted_register_routes_every_smoke_alarm_to_someone_on_duty(
    fresh_db: Any, tmp_path_factory: pytest.TempPathFactory, register: dict[str, Any], at: dt.datetime
) -> None:
    engine = imported(fresh_db, tmp_path_factory, register)
    try:
        sessions = make_session_factory(engine)
        alarms = AlarmEngine(sessions, ManualClock(at))
        tz = register["district"]["timezone"]
        wss = {w["id"]: w for w in register["workstations"]}
        for home in register["homes"]:
            gw = f"gw-{home['id'].removeprefix('home-')}"
            r = alarms.handle(*event_signal(make_event(gw), at))
            assert (r.decision, r.failed_step) == ("open", None), r.detail
            ws = wss[home["workstation"]]
            on_duty = staffed(ws, tz, at)
            with sessions() as s:
                (alarm,) = s.scalars(select(Alarm).where(Alarm.gateway_id == gw)).all()
                consoles = set(
                    s.scalars(
                        select(Notification.address).where(
                            Notification.alarm_id == alarm.id, Notification.channel == "console"
                        )
                    )
                )
                tiers = set(s.scalars(select(AlarmTimer.tier).where(AlarmTimer.alarm_id == alarm.id)))
            assert (alarm.flags, alarm.shift) == ([], "day" if on_duty else "night")
            assert f"workstation:{ws['id']}" in consoles
            if not on_duty:
                assert f"subdistrict:{ws['subdistrict']}" in consoles
            assert "subdistrict" in tiers
    finally:
        engine.dispose()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    register=registers(),
    step=st.sampled_from(["registry", "rules", "routing", "escalation", "notify"]),
    at=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.just(dt.UTC)),
)
def test_when_a_decision_step_fails_every_smoke_alarm_still_reaches_a_24_hour_center(
    fresh_db: Any, tmp_path_factory: pytest.TempPathFactory, register: dict[str, Any], step: str, at: dt.datetime
) -> None:
    engine = imported(fresh_db, tmp_path_factory, register)
    try:
        sessions = make_session_factory(engine)
        steps: Steps = broken(step)
        alarms = AlarmEngine(sessions, ManualClock(at), steps=steps)
        wss = {w["id"]: w for w in register["workstations"]}
        for home in register["homes"]:
            gw = f"gw-{home['id'].removeprefix('home-')}"
            r = alarms.handle(*event_signal(make_event(gw), at))
            assert (r.decision, r.failed_step) == ("failsafe", step)
            with sessions() as s:
                (alarm,) = s.scalars(select(Alarm).where(Alarm.gateway_id == gw)).all()
                to = set(s.scalars(select(Notification.address).where(Notification.alarm_id == alarm.id)))
            assert alarm.flags == ["routing_failed"]
            assert f"subdistrict:{wss[home['workstation']]['subdistrict']}" in to
    finally:
        engine.dispose()
