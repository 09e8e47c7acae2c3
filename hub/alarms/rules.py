"""Alarm rules as a pure function: (signal, the open alarm for its key, home overrides) → decision.

One open alarm per (gateway, sensor, kind): a repeat updates its count and last-seen time,
a restore marks it restored. Life-safety alarms latch: their restore never closes the case,
a person does. Supervisory and trouble alarms that nobody has taken yet close themselves on
restore. Home overrides may silence trouble (e.g. a home without batteries) and flag a
resident who often presses by mistake, but never suppress life safety.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from hub.alarms.classes import classify, priority_of
from hub.alarms.lifecycle import State
from protocols import AlarmClass, EventState

#: (gateway id, sensor id or "" for the gateway itself, kind)
AlarmKey = tuple[str, str, str]


def alarm_key(gateway_id: str, sensor_id: str | None, kind: str) -> AlarmKey:
    return (gateway_id, sensor_id or "", kind)


@dataclass(frozen=True, slots=True)
class Signal:
    """Something happened (or stopped) at a sensor or gateway."""

    gateway_id: str
    sensor_id: str | None
    kind: str
    state: EventState
    at: datetime
    event_id: str | None = None
    source: str = "event"  #: event | condition | telemetry

    @property
    def key(self) -> AlarmKey:
        return alarm_key(self.gateway_id, self.sensor_id, self.kind)


@dataclass(frozen=True, slots=True)
class OpenAlarm:
    """What the rules need to know about the alarm currently open for a key."""

    alarm_id: str
    state: State
    count: int
    last_seen: datetime
    restored_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HomeOverrides:
    """Per-home settings. ``suppress`` never applies to life safety."""

    suppress: frozenset[str] = frozenset()
    frequent_false: frozenset[str] = frozenset()
    note: str = ""


NO_OVERRIDES = HomeOverrides()


@dataclass(frozen=True, slots=True)
class Open:
    key: AlarmKey
    alarm_class: AlarmClass
    priority: int
    at: datetime
    event_id: str | None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Repeat:
    alarm_id: str
    count: int
    at: datetime
    event_id: str | None
    reactivated: bool  #: it had been restored and is active again


@dataclass(frozen=True, slots=True)
class Restore:
    alarm_id: str
    at: datetime
    auto_resolve: bool  #: close the case (nobody has taken it, and it is not life safety)


@dataclass(frozen=True, slots=True)
class Ignore:
    reason: str
    detail: str = ""


Decision = Open | Repeat | Restore | Ignore

#: States in which nobody has taken the alarm yet.
UNTAKEN = frozenset({State.RAISED, State.NOTIFIED})


def decide(signal: Signal, open_alarm: OpenAlarm | None, overrides: HomeOverrides = NO_OVERRIDES) -> Decision:
    cls = classify(signal.kind)
    life_safety = cls is AlarmClass.ALARM
    if signal.state is EventState.RESTORE:
        if open_alarm is None:
            return Ignore("restore_without_alarm", f"no open {signal.kind} alarm for {signal.key}")
        if open_alarm.restored_at is not None:
            return Ignore(
                "already_restored", f"alarm {open_alarm.alarm_id} restored at {open_alarm.restored_at}"
            )
        auto = not life_safety and open_alarm.state in UNTAKEN
        return Restore(open_alarm.alarm_id, signal.at, auto_resolve=auto)

    suppressed = signal.kind in overrides.suppress
    if suppressed and not life_safety:
        return Ignore("suppressed_by_home", f"{signal.kind} is suppressed for this home")
    if open_alarm is not None:
        return Repeat(
            open_alarm.alarm_id,
            open_alarm.count + 1,
            max(signal.at, open_alarm.last_seen),
            signal.event_id,
            reactivated=open_alarm.restored_at is not None,
        )
    flags: list[str] = []
    if signal.kind in overrides.frequent_false:
        flags.append("frequent_false_alarms")
    if suppressed:
        flags.append("suppression_ignored_life_safety")
    return Open(signal.key, cls, priority_of(signal.kind), signal.at, signal.event_id, tuple(flags))


# --- analogue thresholds -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hysteresis:
    """Raise at or above ``raise_at``; restore only at or below ``clear_at`` (< raise_at)."""

    kind: str
    raise_at: float
    clear_at: float

    def __post_init__(self) -> None:
        if not self.clear_at < self.raise_at:
            raise ValueError(f"{self.kind}: clear_at {self.clear_at} must be below raise_at {self.raise_at}")


#: Metric name (telemetry) → threshold. Domestic gas detectors alarm at 10-25 %LEL.
DEFAULT_THRESHOLDS: dict[str, Hysteresis] = {
    "gas_lel": Hysteresis("gas", raise_at=20.0, clear_at=10.0),
    "co_ppm": Hysteresis("co", raise_at=50.0, clear_at=30.0),
}


@dataclass(frozen=True, slots=True)
class Reading:
    gateway_id: str
    sensor_id: str
    metric: str
    value: float
    at: datetime
    thresholds: dict[str, Hysteresis] = field(default_factory=lambda: DEFAULT_THRESHOLDS)


def analogue_signal(reading: Reading, active: bool) -> Signal | None:
    """A signal when an analogue value crosses its threshold, or None.

    ``active`` says whether an alarm of that kind is open and not restored for the sensor:
    between ``clear_at`` and ``raise_at`` nothing changes, so a value hovering at the
    threshold does not flap.
    """
    th = reading.thresholds.get(reading.metric)
    if th is None:
        return None
    if not active and reading.value >= th.raise_at:
        state = EventState.ALARM
    elif active and reading.value <= th.clear_at:
        state = EventState.RESTORE
    else:
        return None
    return Signal(reading.gateway_id, reading.sensor_id, th.kind, state, reading.at, source="telemetry")
