"""KPIs from the alarm record: time to acknowledge / dispatch / arrive, share acknowledged
within 60 s (telecare target 98.5 %), false-alarm rate per home, device model, workstation.
Plain functions over plain records; the DB layer builds :class:`AlarmFacts`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from hub.alarms.lifecycle import FALSE_OUTCOMES, Outcome
from protocols import AlarmClass

ACK_TARGET_S = 60.0


@dataclass(frozen=True, slots=True)
class AlarmFacts:
    alarm_class: AlarmClass
    raised_at: datetime
    home_id: str | None = None
    workstation_id: str | None = None
    device_model: str | None = None
    acknowledged_at: datetime | None = None
    dispatched_at: datetime | None = None
    on_site_at: datetime | None = None
    outcome: Outcome | None = None


@dataclass(frozen=True, slots=True)
class Durations:
    count: int
    median_s: float | None
    p90_s: float | None
    max_s: float | None


def _durations(values: list[float]) -> Durations:
    if not values:
        return Durations(0, None, None, None)
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered) + 0.999) - 1)]
    return Durations(len(ordered), statistics.median(ordered), p90, ordered[-1])


def _since_raise(facts: Iterable[AlarmFacts], pick: Callable[[AlarmFacts], datetime | None]) -> list[float]:
    out = []
    for f in facts:
        t = pick(f)
        if t is not None:
            out.append((t - f.raised_at).total_seconds())
    return out


@dataclass(frozen=True, slots=True)
class Kpis:
    alarms: int
    time_to_acknowledge: Durations
    time_to_dispatch: Durations
    time_to_arrive: Durations
    acknowledged_within_60s: float | None  #: share of life-safety alarms (None if there were none)


def kpis(facts: Iterable[AlarmFacts], now: datetime) -> Kpis:
    """KPIs of life-safety alarms (tests, trouble and supervisory are not counted).

    An alarm raised less than 60 s before ``now`` and not yet acknowledged is left out of the
    60 s share: it can still make it. One raised earlier and never acknowledged counts as a miss.
    """
    life = [f for f in facts if f.alarm_class is AlarmClass.ALARM]
    judged = hit = 0
    for f in life:
        if f.acknowledged_at is not None:
            judged += 1
            hit += (f.acknowledged_at - f.raised_at).total_seconds() <= ACK_TARGET_S
        elif (now - f.raised_at).total_seconds() > ACK_TARGET_S:
            judged += 1
    return Kpis(
        alarms=len(life),
        time_to_acknowledge=_durations(_since_raise(life, lambda f: f.acknowledged_at)),
        time_to_dispatch=_durations(_since_raise(life, lambda f: f.dispatched_at)),
        time_to_arrive=_durations(_since_raise(life, lambda f: f.on_site_at)),
        acknowledged_within_60s=(hit / judged) if judged else None,
    )


@dataclass(frozen=True, slots=True)
class FalseRate:
    resolved: int
    false: int

    @property
    def rate(self) -> float:
        return self.false / self.resolved if self.resolved else 0.0


def false_alarm_rates(facts: Iterable[AlarmFacts], by: str) -> dict[str, FalseRate]:
    """False-alarm rate of resolved life-safety alarms per ``home_id`` / ``device_model`` /
    ``workstation_id``. Tests and system-restored conditions are not counted."""
    if by not in ("home_id", "device_model", "workstation_id"):
        raise ValueError(f"cannot group false alarms by {by!r}")
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for f in facts:
        if f.alarm_class is not AlarmClass.ALARM or f.outcome in (None, Outcome.TEST, Outcome.RESTORED):
            continue
        group = getattr(f, by) or "unknown"
        counts[group][0] += 1
        counts[group][1] += f.outcome in FALSE_OUTCOMES
    return {k: FalseRate(v[0], v[1]) for k, v in sorted(counts.items())}
