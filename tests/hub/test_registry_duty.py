"""Duty hours of a workstation."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.registry.duty import in_day_shift, workstation_staffed

T = dt.time


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
