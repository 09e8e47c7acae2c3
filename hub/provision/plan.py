"""What a gateway should run, read from the registry, and the Config the hub delivers. Pure.

The registry is the one source of a home's sensors: the installer types a home id once,
and the edge settings, the retained Config and the walk test's checklist all come from
the same rows (a sensor typed differently in three places was the commonest install error).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from protocols import PROTOCOL_VERSION, Config, SensorConfig

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class PlannedSensor:
    id: str
    model: str
    kind: str
    location: str = ""
    interval_s: int = 3600
    params: Mapping[str, Scalar] = field(default_factory=dict)  #: wiring overrides


@dataclass(frozen=True, slots=True)
class GatewayPlan:
    """A home's gateway as the registry (and its provisioning record) describe it."""

    gateway_id: str
    home_id: str
    address: str
    revision: int
    sensors: tuple[PlannedSensor, ...]
    created: bool = False  #: the gateway row was created by this provisioning

    def sensor_ids(self) -> list[str]:
        return [s.id for s in self.sensors]


def config_of(plan: GatewayPlan, ts_ms: int | None = None, **settings: Any) -> Config:
    """The retained Config of a gateway (protocol section 5.2): sensors from the registry,
    revision from the provisioning record; ``settings`` may set heartbeat_s and the like."""
    return Config(
        v=PROTOCOL_VERSION,
        gw=plan.gateway_id,
        revision=plan.revision,
        ts=int(time.time() * 1000) if ts_ms is None else ts_ms,
        sensors=[
            SensorConfig(id=s.id, model=s.model, interval_s=s.interval_s, params=dict(s.params))
            for s in plan.sensors
        ],
        **settings,
    )


def parse_wiring(items: list[str]) -> dict[str, dict[str, Scalar]]:
    """``SENSOR.KEY=VALUE`` overrides (``smoke-2.contact_pin=24``) → {sensor: {key: value}}.
    Integers, floats and true/false are typed; anything else stays a string."""
    out: dict[str, dict[str, Scalar]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        sensor, dot, key = target.partition(".")
        if not sep or not dot or not sensor or not key:
            raise ValueError(f"wiring override {item!r}: expected SENSOR.KEY=VALUE, e.g. smoke-2.contact_pin=24")
        out.setdefault(sensor, {})[key] = _scalar(raw)
    return out


def _scalar(raw: str) -> Scalar:
    low = raw.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw
