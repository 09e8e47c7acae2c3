"""Storms as one mass event: the pure core (no database, no clock).

A district power cut takes thousands of gateways off line (Last-Will → ``gateway_offline``)
and makes thousands of UPS HATs report ``mains_lost`` within seconds. Alarm-receiving
centres treat that as one mass event: operators need "subdistrict 3: 1,240 homes off line
and counting", not 1,240 rows and 1,240 webhooks. So once ``threshold`` storm-kind alarms
of one area (a subdistrict or a workstation) were raised within ``window_s``, the next ones
are *folded* into one incident of that area: each member is still stored as an alarm of its
own (and restored on its own), but only the incident is routed.

A life-safety alarm (smoke, gas, panic…) is never folded, whatever its kind list says.

The incident ends when it has been quiet (no new member) for ``quiet_s``: if no member is
open any more it closes; if a few are still open (``unfold_max`` or fewer) they are
*unfolded* — routed one by one as ordinary alarms — so that the homes still dark after the
power came back are not hidden inside a finished mass event; with more open than that it
stays a mass event (a long power cut).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from hub.alarms.classes import is_life_safety

AreaKind = Literal["subdistrict", "workstation"]

#: Kinds that come in storms: a power cut or a broken uplink of a whole neighbourhood.
STORM_KINDS: frozenset[str] = frozenset({"gateway_offline", "gateway_silent", "mains_lost"})


@dataclass(frozen=True, slots=True)
class StormPolicy:
    """When many storm-kind alarms of one area become one incident (``[hub.alarms.storm]``)."""

    enabled: bool = True
    kinds: frozenset[str] = STORM_KINDS
    #: The area an incident covers: a subdistrict (36 in a district like Pudong, each with a
    #: 24 h centre that handles a power cut) or a workstation (finer, more incidents).
    area: AreaKind = "subdistrict"
    #: This many storm-kind alarms of one area within ``window_s`` make a mass event. A
    #: subdistrict of ~300 homes loses a gateway or two an hour in normal times; ten in a
    #: minute is a power cut or a broken uplink, not ten separate homes.
    threshold: int = 10
    window_s: float = 60.0
    #: An incident takes new members until it has been quiet this long.
    quiet_s: float = 300.0
    #: At the end of the incident at most this many members still open are routed one by
    #: one (unfolded); with more still open the incident stays open.
    unfold_max: int = 10
    #: The running count is pushed (``incident.updated``) at most this often.
    update_every_s: float = 10.0
    #: A storm-kind alarm routed on its own below the threshold has its notifications held
    #: this long: if its area's incident opens meanwhile (in a power cut the area's first
    #: ten come within seconds), they are folded into it, never sent. Measured before
    #: (``safehome bench storm``, 36 subdistricts): 648 storm webhooks (the first 9 alarms
    #: of each area: raised + notified) went out before the incidents.
    hold_s: float = 5.0

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError(f"storm threshold must be at least 1, got {self.threshold}")
        if self.window_s <= 0 or self.quiet_s <= 0 or self.update_every_s <= 0:
            raise ValueError("storm window_s, quiet_s and update_every_s must be positive")
        if self.unfold_max < 0:
            raise ValueError(f"storm unfold_max must not be negative, got {self.unfold_max}")
        if self.hold_s < 0:
            raise ValueError(f"storm hold_s must not be negative, got {self.hold_s}")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A new alarm about to be opened."""

    kind: str
    workstation_id: str | None
    subdistrict_id: str | None
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class IncidentView:
    """The open incident of the candidate's area, as stored."""

    id: str
    last_member_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Single:
    """Route the alarm on its own, as always."""

    reason: str  #: life_safety | not_storm_kind | no_area | disabled | below_threshold


@dataclass(frozen=True, slots=True)
class Join:
    """Store the alarm as a member of the open incident; route nothing for it."""

    incident_id: str


@dataclass(frozen=True, slots=True)
class OpenIncident:
    """Open the area's incident with this alarm; the area's storm-kind alarms raised since
    ``since`` (not yet members of anything) join it too."""

    area: str
    since: dt.datetime


Fold = Single | Join | OpenIncident


def area_of(policy: StormPolicy, workstation_id: str | None, subdistrict_id: str | None) -> str | None:
    """``"subdistrict:<id>"`` / ``"workstation:<id>"``, or None for an alarm without one
    (an unregistered gateway: routed to the district on its own)."""
    area_id = subdistrict_id if policy.area == "subdistrict" else workstation_id
    return f"{policy.area}:{area_id}" if area_id else None


def foldable(policy: StormPolicy, kind: str) -> bool:
    """May an alarm of ``kind`` ever be folded? Never a life-safety one."""
    return policy.enabled and kind in policy.kinds and not is_life_safety(kind)


def fold(c: Candidate, recent: int, incident: IncidentView | None, policy: StormPolicy) -> Fold:
    """Decide a new alarm: on its own, into the open incident, or opening one.

    ``recent``: the area's storm-kind alarms raised in ``(c.at - window_s, c.at]`` that are
    not members of an incident (this one not counted). ``incident``: the area's open one."""
    if is_life_safety(c.kind):
        return Single("life_safety")
    if not policy.enabled:
        return Single("disabled")
    if c.kind not in policy.kinds:
        return Single("not_storm_kind")
    area = area_of(policy, c.workstation_id, c.subdistrict_id)
    if area is None:
        return Single("no_area")
    if incident is not None and (c.at - incident.last_member_at).total_seconds() <= policy.quiet_s:
        return Join(incident.id)
    if recent + 1 >= policy.threshold:
        return OpenIncident(area, c.at - dt.timedelta(seconds=policy.window_s))
    return Single("below_threshold")


def held_until(d: Fold, at: dt.datetime, policy: StormPolicy) -> dt.datetime | None:
    """Until when the notifications of an alarm routed on its own wait: only one below its
    area's threshold (a mass event may still take it in); never a life-safety alarm."""
    if isinstance(d, Single) and d.reason == "below_threshold" and policy.hold_s > 0:
        return at + dt.timedelta(seconds=policy.hold_s)
    return None


@dataclass(frozen=True, slots=True)
class Keep:
    """The incident goes on."""

    push_count: bool  #: the running count changed and is due to be pushed


@dataclass(frozen=True, slots=True)
class Close:
    """Quiet long enough: close the incident; route the members still open one by one."""

    unfold: tuple[str, ...] = field(default=())  #: alarm ids


Settle = Keep | Close


@dataclass(frozen=True, slots=True)
class IncidentState:
    """An open incident as its periodic check sees it."""

    last_member_at: dt.datetime
    members: int
    pushed_members: int  #: the count the consoles and webhooks were last told
    pushed_at: dt.datetime
    open_members: tuple[str, ...]  #: ids of members not restored/closed yet


def settle(inc: IncidentState, now: dt.datetime, policy: StormPolicy) -> Settle:
    """The incident's periodic check: push the running count, close it when quiet."""
    quiet = (now - inc.last_member_at).total_seconds() >= policy.quiet_s
    if quiet and len(inc.open_members) <= policy.unfold_max:
        return Close(tuple(inc.open_members))
    due = (now - inc.pushed_at).total_seconds() >= policy.update_every_s
    return Keep(push_count=due and inc.members != inc.pushed_members)
