"""Duty schedule: is a workstation staffed (day) or on call (night) at a given instant?

Workstation hours are local wall-clock times in the district's timezone ("08:00"-"20:00");
the start is inside the day, the end is not. A window may cross midnight ("22:00"-"06:00");
equal bounds are a workstation staffed 24 h; no hours at all (``None``) one with no day
staff, on call around the clock. The decision itself is :func:`hub.registry.duty.in_day_shift`,
the importer's own rule, so that what the register accepts is what routing understands.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.alarms.errors import PolicyError
from hub.registry.duty import in_day_shift


class Shift(enum.StrEnum):
    DAY = "day"
    NIGHT = "night"


def parse_hhmm(value: str, what: str = "time") -> time:
    try:
        hh, mm = value.split(":")
        return time(int(hh), int(mm))
    except (ValueError, AttributeError) as exc:
        raise PolicyError(f"{what}: {value!r} is not HH:MM (00:00-23:59)") from exc


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PolicyError(f"unknown timezone {name!r}") from exc


@dataclass(frozen=True, slots=True)
class DutyHours:
    day_start: time | None  #: None (with day_end None): no day staff
    day_end: time | None
    tz: ZoneInfo

    @classmethod
    def of(cls, day_start: str | None, day_end: str | None, timezone: str) -> DutyHours:
        if (day_start is None) != (day_end is None):
            raise PolicyError(f"day_start {day_start!r}, day_end {day_end!r}: give both or neither")
        start = parse_hhmm(day_start, "day_start") if day_start is not None else None
        end = parse_hhmm(day_end, "day_end") if day_end is not None else None
        return cls(start, end, zone(timezone))

    def shift_at(self, at: datetime) -> Shift:
        if at.tzinfo is None:
            raise PolicyError("duty schedule needs a timezone-aware instant")
        local = at.astimezone(self.tz).time()
        return Shift.DAY if in_day_shift(self.day_start, self.day_end, local) else Shift.NIGHT
