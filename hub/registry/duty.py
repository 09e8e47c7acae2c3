"""Who is on duty: workstations are staffed from day_start to day_end (district local time),
on call outside those hours; subdistrict and district centers are staffed 24 h. Pure functions."""

from __future__ import annotations

import datetime as dt
import zoneinfo


def in_day_shift(day_start: dt.time, day_end: dt.time, local: dt.time) -> bool:
    """True when ``local`` is inside [day_start, day_end); a shift may cross midnight
    (day_end < day_start). day_start == day_end means staffed around the clock."""
    if day_start == day_end:
        return True
    if day_start < day_end:
        return day_start <= local < day_end
    return local >= day_start or local < day_end


def workstation_staffed(day_start: dt.time, day_end: dt.time, timezone: str, at: dt.datetime) -> bool:
    """Is a workstation with this day shift staffed at the instant ``at`` (aware)?"""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    local = at.astimezone(zoneinfo.ZoneInfo(timezone)).time().replace(tzinfo=None)
    return in_day_shift(day_start, day_end, local)
