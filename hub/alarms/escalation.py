"""Escalation policy as data: "not acknowledged in 60 s → subdistrict center; not dispatched
in 10 min → district center". Each step waits for a lifecycle state; once the alarm has
reached it the step (and every later step waiting for an earlier or equal state) is moot.

Steps are turned into stored timers when the alarm is raised (:func:`timers_for`); a timer
that comes due fires only if :func:`should_fire` says the awaited state was not reached.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hub.alarms.errors import PolicyError
from hub.alarms.lifecycle import State, reached
from protocols import AlarmClass

TIERS = ("subdistrict", "district")


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    after_s: float  #: seconds after the alarm was raised
    awaits: State  #: the step is cancelled once the alarm reaches this state
    tier: str  #: who is added: subdistrict | district

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise PolicyError(f"step {self.name!r}: tier {self.tier!r} is not one of {TIERS}")
        if not 0 < self.after_s <= 7 * 86400:
            raise PolicyError(f"step {self.name!r}: after_s {self.after_s} outside (0, 604800]")
        if self.awaits in (State.RAISED, State.NOTIFIED, State.REVIEWED):
            raise PolicyError(f"step {self.name!r}: cannot wait for {self.awaits.value}")


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    per_class: Mapping[AlarmClass, tuple[Step, ...]] = field(default_factory=dict)

    def steps(self, cls: AlarmClass) -> tuple[Step, ...]:
        return self.per_class.get(cls, ())

    @classmethod
    def from_data(cls, data: Mapping[str, Sequence[Mapping[str, Any]]]) -> EscalationPolicy:
        """Build from plain data (TOML/YAML): ``{"alarm": [{"name", "after_s", "awaits", "tier"}]}``."""
        per: dict[AlarmClass, tuple[Step, ...]] = {}
        for cname, steps in data.items():
            try:
                klass = AlarmClass(cname)
            except ValueError as exc:
                raise PolicyError(f"unknown alarm class {cname!r}") from exc
            built = []
            for i, raw in enumerate(steps):
                try:
                    built.append(
                        Step(str(raw["name"]), float(raw["after_s"]), State(raw["awaits"]), str(raw["tier"]))
                    )
                except (KeyError, ValueError, TypeError) as exc:
                    raise PolicyError(f"{cname} step {i}: {exc!r}") from exc
            if any(b.after_s <= a.after_s for a, b in itertools.pairwise(built)):
                raise PolicyError(f"{cname}: steps must come in increasing after_s")
            per[klass] = tuple(built)
        return cls(per)


DEFAULT_ESCALATION = EscalationPolicy(
    {
        AlarmClass.ALARM: (
            Step("not_acknowledged_60s", 60, State.ACKNOWLEDGED, "subdistrict"),
            Step("not_dispatched_10min", 600, State.DISPATCHED, "district"),
        ),
        AlarmClass.SUPERVISORY: (Step("not_acknowledged_15min", 900, State.ACKNOWLEDGED, "subdistrict"),),
    }
)


@dataclass(frozen=True, slots=True)
class TimerSpec:
    step_index: int
    step: Step
    due_at: datetime


def timers_for(cls: AlarmClass, raised_at: datetime, policy: EscalationPolicy) -> list[TimerSpec]:
    return [
        TimerSpec(i, s, raised_at + timedelta(seconds=s.after_s)) for i, s in enumerate(policy.steps(cls))
    ]


def should_fire(step: Step, state: State) -> bool:
    """A due step fires only while the alarm has not reached the state it waits for."""
    return not reached(state, step.awaits)
