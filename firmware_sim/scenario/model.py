"""Scenario files (YAML): what happens to which homes, when. Validated with clear locations.

```yaml
name: night smoke and a power cut
seed: 42
start: "02:10"          # wall-clock time of t=0 (lets steps say "at: 02:13")
steps:
  - {at: "02:13", smoke: {home: home-000042, clear_after: 2m}}
  - {at: 5m, power_cut: {workstation: ws-0002, homes: 500, duration: 10m}}
  - {at: 0s, gas_leak: {home: home-000007, peak_lel: 40, ramp: 5m, hold: 2m, vent: 3m}}
  - {at: 1m, flap: {share: 0.3, every: 1m, down: 10s, until: 30m}}
  - {at: 0s, incidents: {per_hour: 30, until: 1h}}
```
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from firmware_sim.errors import ScenarioError

_DUR = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")


def parse_duration(value: Any) -> float:
    """``90``, ``"90s"``, ``"5m"``, ``"1h30m"`` → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration, not a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("durations are not negative")
        return float(value)
    if isinstance(value, str) and value and (m := _DUR.fullmatch(value.strip())) and any(m.groups()):
        h, mi, s = m.groups()
        return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)
    raise ValueError(f"{value!r} is not a duration like 90s, 5m or 1h30m")


def parse_clock(value: str) -> float:
    m = _CLOCK.fullmatch(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a clock time HH:MM[:SS]")
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3) or 0)


Duration = Annotated[float, BeforeValidator(parse_duration)]
Share = Annotated[float, Field(gt=0, le=1)]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_M):
    """Which homes: one home or gateway, a workstation's homes, or the whole fleet."""

    home: str | None = None
    gateway: str | None = None
    workstation: str | None = None
    homes: Annotated[int, Field(ge=1)] | None = None  #: how many of the selected homes (seeded sample)
    share: Share | None = None  #: or which share of them


class Smoke(Target):
    sensor: str = "smoke-1"
    clear_after: Duration | None = None  #: restore after this long (None: stays in alarm)


class Panic(Target):
    cancel_after: Duration | None = None  #: long-press cancel (a restore) after this long


class GasLeak(Target):
    sensor: str = "gas-1"
    peak_lel: Annotated[float, Field(gt=0, le=100)] = 40.0
    ramp: Duration = 300.0
    hold: Duration = 120.0
    vent: Duration = 180.0
    alarm_lel: Annotated[float, Field(gt=0, le=100)] = 10.0
    restore_lel: Annotated[float, Field(ge=0, le=100)] = 5.0
    step: Duration = 10.0


class PowerCut(Target):
    duration: Duration = 600.0


class Flap(Target):
    every: Duration = 60.0
    down: Duration = 10.0
    until: Duration = 1800.0


class Trouble(Target):
    kind: str = "battery_low"  #: battery_low, tamper, mains_lost, sensor_fault, clock_unsynced
    sensor: str | None = None
    clear_after: Duration | None = None


class Incidents(Target):
    """Random alarms, troubles and restores across the targets, at a mean rate."""

    per_hour: Annotated[float, Field(gt=0, le=1_000_000)] = 10.0
    until: Duration = 3600.0


ACTIONS: dict[str, type[Target]] = {
    "smoke": Smoke, "panic": Panic, "gas_leak": GasLeak, "power_cut": PowerCut,
    "flap": Flap, "trouble": Trouble, "incidents": Incidents,
}  # fmt: skip


class Step(_M):
    at: str | float = 0.0  #: "HH:MM[:SS]" (needs scenario.start) or an offset like "5m"
    action: str
    spec: Target

    @model_validator(mode="before")
    @classmethod
    def _one_action(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("a step is a mapping like {at: 5m, smoke: {home: …}}")
        names = [k for k in data if k != "at"]
        if len(names) != 1 or names[0] not in ACTIONS:
            raise ValueError(f"a step has exactly one action of {', '.join(ACTIONS)}; got {names}")
        name = names[0]
        return {
            "at": data.get("at", 0.0),
            "action": name,
            "spec": ACTIONS[name].model_validate(data[name] or {}),
        }


class Scenario(_M):
    name: str = "scenario"
    seed: int = 1
    start: str | None = None
    steps: list[Step]

    def offset(self, i: int) -> float:
        """Seconds from scenario start at which step ``i`` begins."""
        at = self.steps[i].at
        if isinstance(at, str) and ":" in at:
            if self.start is None:
                raise ScenarioError(f"clock time {at!r} needs a scenario 'start' time", f"steps.{i}.at")
            t = parse_clock(at) - parse_clock(self.start)
            return t if t >= 0 else t + 86_400
        try:
            return parse_duration(at)
        except ValueError as exc:
            raise ScenarioError(str(exc), f"steps.{i}.at") from exc


def parse_scenario(data: Any) -> Scenario:
    try:
        scn = Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = [str(x) for x in first["loc"]]
        if len(loc) > 2 and loc[0] == "steps" and loc[2] != "at":
            # an action's field: name the action, as the file does ("steps.3.power_cut.duration")
            step = data["steps"][int(loc[1])]
            loc.insert(2, next(k for k in step if k != "at"))
        raise ScenarioError(first["msg"], ".".join(loc)) from exc
    for i in range(len(scn.steps)):
        scn.offset(i)
    return scn


def load_scenario(path: Path) -> Scenario:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(str(exc), str(path)) from exc
    return parse_scenario(data)
