"""Registry look-ups (responsibility chain of a gateway) and duty hours."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from hub.registry.duty import in_day_shift, workstation_staffed
from hub.registry.queries import responsibility_for, sensors_of
from tests.support.registry import seed_registry

T = dt.time


def test_responsibility_chain(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    seed_registry(session_factory, tmp_path)
    with session_factory() as s:
        r = responsibility_for(s, "gw-000002")
        assert r is not None
        assert (r.home.id, r.workstation.id, r.subdistrict.id, r.district.id) == (
            "home-000002",
            "ws-0002",
            "sd-02",
            "pudong",
        )
        assert r.workstation.oncall_phone == "+86 139 0000 1002"
        assert responsibility_for(s, "gw-unknown") is None
        assert [x.id for x in sensors_of(s, "gw-000001")] == ["gas-1", "panic-1", "smoke-1"]


@pytest.mark.parametrize(
    ("start", "end", "local", "expected"),
    [
        (T(8), T(20), T(8), True),
        (T(8), T(20), T(19, 59), True),
        (T(8), T(20), T(20), False),
        (T(8), T(20), T(3), False),
        (T(22), T(6), T(23), True),  # crosses midnight
        (T(22), T(6), T(5, 59), True),
        (T(22), T(6), T(12), False),
        (T(0), T(0), T(12), True),  # around the clock
        (T(9, 30), T(9, 30), T(3), True),
        (None, None, T(12), False),  # no day staff: on call around the clock
        (None, None, T(0), False),
    ],
)
def test_day_shift(start: dt.time | None, end: dt.time | None, local: dt.time, expected: bool) -> None:
    assert in_day_shift(start, end, local) is expected


def test_half_given_hours_are_refused() -> None:
    with pytest.raises(ValueError, match="give both or neither"):
        in_day_shift(T(8), None, T(12))


def test_staffed_uses_district_time_zone() -> None:
    # 00:30 UTC is 08:30 in Shanghai.
    at = dt.datetime(2026, 11, 28, 0, 30, tzinfo=dt.UTC)
    assert workstation_staffed(T(8), T(20), "Asia/Shanghai", at)
    assert not workstation_staffed(T(8), T(20), "Europe/Berlin", at)
    with pytest.raises(ValueError, match="aware"):
        workstation_staffed(T(8), T(20), "Asia/Shanghai", dt.datetime(2026, 1, 1))
