"""The Last-Will blip's check counts only supervisory alarms its own fault could have
raised: the scenarios share one harness, and an earlier fault (a broker restart that lost a
gateway's birth and a heartbeat) leaves true ``gateway_silent`` alarms on gateways a later
scenario takes as fresh ones. On a real (SQLite) hub database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bench.faults.scenarios import _supervisory
from hub.alarms.store.models import Alarm
from hub.db.engine import make_engine, make_session_factory
from hub.db.migrate import upgrade

CUT = dt.datetime(2026, 12, 1, 6, 41, 44, tzinfo=dt.UTC)


def _alarm(n: int, gw: str, kind: str, at: dt.datetime, cls: str = "supervisory") -> Alarm:
    return Alarm(
        id=f"a-{n}", gateway_id=gw, kind=kind, alarm_class=cls, priority=2, state="restored",
        raised_at=at, last_seen_at=at,
    )  # fmt: skip


def test_only_alarms_raised_since_the_cut_count(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as s, s.begin():
            s.add_all([
                # the 06:43 run: opened during power-cut, 55 s after broker-kill lost a heartbeat
                _alarm(1, "gw-000091", "gateway_silent", CUT - dt.timedelta(seconds=20)),
                _alarm(2, "gw-000092", "gateway_offline", CUT + dt.timedelta(seconds=11)),
                _alarm(3, "gw-000093", "smoke", CUT + dt.timedelta(seconds=1), cls="alarm"),
                _alarm(4, "gw-000500", "gateway_silent", CUT + dt.timedelta(seconds=5)),  # not blipped
                _alarm(5, "gw-000094", "gateway_silent", CUT),
            ])  # fmt: skip
    finally:
        engine.dispose()
    blipped = ["gw-000091", "gw-000092", "gw-000093", "gw-000094"]
    assert _supervisory(url, blipped, CUT) == ["gw-000092:gateway_offline", "gw-000094:gateway_silent"]
