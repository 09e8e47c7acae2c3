"""Duty schedule: is a workstation staffed (day) or on call (night) at a given instant?

Workstation hours are local wall-clock times in the district's timezone ("08:00"-"20:00");
the start is inside the day, the end is not. A window may cross midnight ("22:00"-"06:00").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.alarms.errors import PolicyError


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
    day_start: time
    day_end: time
    tz: ZoneInfo

    @classmethod
    def of(cls, day_start: str, day_end: str, timezone: str) -> DutyHours:
        start, end = parse_hhmm(day_start, "day_start"), parse_hhmm(day_end, "day_end")
        if start == end:
            raise PolicyError(f"day_start and day_end are both {day_start}: the day would be empty")
        return cls(start, end, zone(timezone))

    def shift_at(self, at: datetime) -> Shift:
        if at.tzinfo is None:
            raise PolicyError("duty schedule needs a timezone-aware instant")
        local = at.astimezone(self.tz).time()
        if self.day_start < self.day_end:
            day = self.day_start <= local < self.day_end
        else:  # day crosses midnight
            day = local >= self.day_start or local < self.day_end
        return Shift.DAY if day else Shift.NIGHT
