"""Who is on duty: workstations are staffed from day_start to day_end (district local time),
on call outside those hours; subdistrict and district centers are staffed 24 h. Pure functions.

The three forms of a workstation's hours, the same in the register, the importer and the
alarm engine (``hub.alarms.schedule`` decides with :func:`in_day_shift`):

- ``day_start < day_end`` ("08:00"-"20:00"): staffed inside, on call outside;
- ``day_end < day_start`` ("22:00"-"06:00"): the day shift crosses midnight;
- ``day_start == day_end`` ("00:00"-"00:00"): staffed around the clock (never on call);
- both ``None`` (``none`` in the file): no day staff at all, on call around the clock.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo


def in_day_shift(day_start: dt.time | None, day_end: dt.time | None, local: dt.time) -> bool:
    """True when ``local`` is inside [day_start, day_end); a shift may cross midnight
    (day_end < day_start). day_start == day_end means staffed around the clock; no hours
    (both None) means never staffed. One bound without the other is refused (ValueError):
    the importer never stores it, and guessing would route an alarm to an empty office."""
    if day_start is None or day_end is None:
        if day_start is None and day_end is None:
            return False
        raise ValueError(f"day_start {day_start} and day_end {day_end}: give both or neither")
    if day_start == day_end:
        return True
    if day_start < day_end:
        return day_start <= local < day_end
    return local >= day_start or local < day_end


def workstation_staffed(
    day_start: dt.time | None, day_end: dt.time | None, timezone: str, at: dt.datetime
) -> bool:
    """Is a workstation with this day shift staffed at the instant ``at`` (aware)?"""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    local = at.astimezone(zoneinfo.ZoneInfo(timezone)).time().replace(tzinfo=None)
    return in_day_shift(day_start, day_end, local)
