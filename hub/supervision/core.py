"""Silence is an alarm too: the pure core that decides which supervisory conditions hold.

Plain data in (what the database knows about gateways, sensors and open conditions, and
the time), transitions out. No clock, no I/O: :mod:`hub.supervision.service` runs it on a tick and
records the transitions.

Rules (times are the hub's own clock):

* A gateway's silence deadline is derived from the heartbeat interval it promises:
  ``heartbeat_s * heartbeat_misses + grace_s``, clamped to
  ``[gateway_min_silence_s, gateway_max_silence_s]``. The maximum is the floor of
  docs/architecture.md (rule 3): with the defaults (55 s + a 1 s tick) a silent gateway is reported
  within 60 s of the last thing heard from it, whatever heartbeat it promised.
* ``gateway_silent`` opens when an online gateway is past its deadline (a gateway never
  heard from counts from ``since``, when supervision started watching it).
* ``gateway_offline`` opens when the gateway said it is offline (its Last-Will or an
  orderly shutdown) ``offline_grace_s`` ago and has not said it is back (a reconnect blip:
  agent restarted by systemd, router blip, raises nothing). The grace counts from when the
  hub received the Last-Will, not from the last traffic: a gateway that sent its last
  heartbeat 25 s before a 0.8 s blip is not reported offline. A gateway that was already
  ``silent`` keeps that one condition: one outage, one condition. Both restore when the
  gateway is online and heard within its deadline.
* ``clock_suspect`` (a trouble) opens when the gateway's last synced status was further
  than ``clock_tolerance_s`` from the hub's clock, and restores when one is within it.
* ``sensor_silent`` opens when a sensor was not heard for ``interval_s + sensor_grace_s``
  while its gateway is up (when the gateway is down, the gateway's condition says it all)
  and restores when it is heard again.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from hub.db.state import ConditionKind


@dataclass(frozen=True, slots=True)
class Policy:
    gateway_max_silence_s: float = 55.0
    gateway_min_silence_s: float = 30.0
    heartbeat_misses: float = 2.0
    grace_s: float = 5.0
    offline_grace_s: float = 10.0
    sensor_grace_s: float = 60.0
    default_heartbeat_s: int = 30
    clock_tolerance_s: float = 120.0

    def gateway_deadline_s(self, heartbeat_s: int | None) -> float:
        hb = heartbeat_s if heartbeat_s and heartbeat_s > 0 else self.default_heartbeat_s
        wanted = hb * self.heartbeat_misses + self.grace_s
        return max(self.gateway_min_silence_s, min(self.gateway_max_silence_s, wanted))

    def sensor_deadline_s(self, interval_s: int) -> float:
        return interval_s + self.sensor_grace_s


@dataclass(frozen=True, slots=True)
class GatewayView:
    gateway_id: str
    online: bool
    last_seen: dt.datetime | None
    heartbeat_s: int | None
    since: dt.datetime  #: when supervision started watching (used if never heard)
    offline_reason: str = ""
    #: hub receipt of the status that set ``online`` (for an offline gateway: of its Last-Will)
    status_at: dt.datetime | None = None
    clock_offset_s: float | None = None  #: device minus hub clock on its last synced status


@dataclass(frozen=True, slots=True)
class SensorView:
    gateway_id: str
    sensor_id: str
    interval_s: int
    last_seen: dt.datetime | None
    since: dt.datetime


#: (kind, gateway_id, sensor_id) of an open condition.
Key = tuple[str, str | None, str | None]


class Action(enum.StrEnum):
    OPEN = "open"
    RESTORE = "restore"


@dataclass(frozen=True, slots=True)
class Transition:
    action: Action
    kind: ConditionKind
    gateway_id: str | None
    sensor_id: str | None
    detail: str = ""

    @property
    def key(self) -> Key:
        return (self.kind.value, self.gateway_id, self.sensor_id)


def _silent_for(now: dt.datetime, last_seen: dt.datetime | None, since: dt.datetime) -> float:
    return (now - (last_seen or since)).total_seconds()


def gateway_down(now: dt.datetime, g: GatewayView, policy: Policy) -> bool:
    """True when the gateway is offline or past its silence deadline."""
    return (not g.online) or _silent_for(now, g.last_seen, g.since) > policy.gateway_deadline_s(g.heartbeat_s)


def evaluate_gateway(
    now: dt.datetime, g: GatewayView, open_keys: set[Key], policy: Policy
) -> list[Transition]:
    silent_s = _silent_for(now, g.last_seen, g.since)
    deadline = policy.gateway_deadline_s(g.heartbeat_s)
    silent_key: Key = (ConditionKind.GATEWAY_SILENT.value, g.gateway_id, None)
    offline_key: Key = (ConditionKind.GATEWAY_OFFLINE.value, g.gateway_id, None)
    want: dict[ConditionKind, str] = {}
    if g.online:
        if silent_s > deadline:
            want[ConditionKind.GATEWAY_SILENT] = (
                f"nothing heard for {silent_s:.0f} s (deadline {deadline:.0f} s)"
            )
    elif silent_key in open_keys:
        want[ConditionKind.GATEWAY_SILENT] = ""  # same outage: keep the one condition
    else:
        offline_s = _silent_for(now, g.status_at, g.last_seen or g.since)
        if offline_s >= policy.offline_grace_s or offline_key in open_keys:
            reason = f" ({g.offline_reason})" if g.offline_reason else ""
            want[ConditionKind.GATEWAY_OFFLINE] = (
                f"gateway reported offline{reason} {offline_s:.0f} s ago, last heard {silent_s:.0f} s ago"
            )
    out: list[Transition] = []
    for kind in (ConditionKind.GATEWAY_SILENT, ConditionKind.GATEWAY_OFFLINE):
        is_open = (kind.value, g.gateway_id, None) in open_keys
        if kind in want and not is_open:
            out.append(Transition(Action.OPEN, kind, g.gateway_id, None, want[kind]))
        elif kind not in want and is_open:
            out.append(Transition(Action.RESTORE, kind, g.gateway_id, None, "heard again"))
    return out + evaluate_clock(g, open_keys, policy)


def evaluate_clock(g: GatewayView, open_keys: set[Key], policy: Policy) -> list[Transition]:
    """``clock_suspect``: by the last measured offset (kept while nothing measures it anew)."""
    is_open = (ConditionKind.CLOCK_SUSPECT.value, g.gateway_id, None) in open_keys
    offset = g.clock_offset_s
    if offset is None:
        return []
    off = abs(offset) > policy.clock_tolerance_s
    if off and not is_open:
        side = "ahead of" if offset > 0 else "behind"
        detail = f"device clock says synced but is {abs(offset):.0f} s {side} the hub's (tolerance {policy.clock_tolerance_s:.0f} s)"
        return [Transition(Action.OPEN, ConditionKind.CLOCK_SUSPECT, g.gateway_id, None, detail)]
    if is_open and not off:
        detail = f"device clock within {policy.clock_tolerance_s:.0f} s of the hub's"
        return [Transition(Action.RESTORE, ConditionKind.CLOCK_SUSPECT, g.gateway_id, None, detail)]
    return []


def evaluate_sensor(
    now: dt.datetime, s: SensorView, gateway_is_down: bool, open_keys: set[Key], policy: Policy
) -> list[Transition]:
    key: Key = (ConditionKind.SENSOR_SILENT.value, s.gateway_id, s.sensor_id)
    is_open = key in open_keys
    silent_s = _silent_for(now, s.last_seen, s.since)
    deadline = policy.sensor_deadline_s(s.interval_s)
    silent = silent_s > deadline
    if silent and not is_open and not gateway_is_down:
        detail = f"nothing heard for {silent_s:.0f} s (expected every {s.interval_s} s)"
        return [Transition(Action.OPEN, ConditionKind.SENSOR_SILENT, s.gateway_id, s.sensor_id, detail)]
    if is_open and not silent:
        return [
            Transition(Action.RESTORE, ConditionKind.SENSOR_SILENT, s.gateway_id, s.sensor_id, "heard again")
        ]
    return []


def evaluate(
    now: dt.datetime,
    gateways: Iterable[GatewayView],
    sensors: Iterable[SensorView],
    open_keys: set[Key],
    policy: Policy,
) -> list[Transition]:
    """Every condition to open or restore at ``now``. Gateways first, then sensors.

    A sensor whose gateway is not in ``gateways`` is treated as having a gateway that is up.
    """
    out: list[Transition] = []
    down: set[str] = set()
    for g in gateways:
        out += evaluate_gateway(now, g, open_keys, policy)
        if gateway_down(now, g, policy):
            down.add(g.gateway_id)
    for s in sensors:
        out += evaluate_sensor(now, s, s.gateway_id in down, open_keys, policy)
    return out
