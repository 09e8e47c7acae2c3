"""A walk test, evaluated: which sensors of a gateway reported, which never did, and which
reported from the wrong gateway. Pure: the service feeds it the events it read.

A sensor passes when an event (state ``alarm``, any kind: the installer presses the panic
button, blows test smoke, unplugs the UPS) with its id arrives from *its* gateway after the
walk test started. The same sensor id arriving from another gateway of the home means it
is wired to the wrong Pi (or the register puts it on the wrong one): that gateway would
raise this sensor's alarms under the wrong id, so the walk test fails and says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Seen:
    """One event received during the walk test."""

    gateway_id: str
    sensor_id: str
    kind: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class WalkResult:
    gateway_id: str
    expected: tuple[str, ...]
    reported: Mapping[str, dt.datetime] = field(default_factory=dict)  #: sensor -> first report
    #: (sensor, gateway it reported from, gateway the register puts it on or None)
    wrong_gateway: tuple[tuple[str, str, str | None], ...] = ()

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(s for s in self.expected if s not in self.reported)

    @property
    def passed(self) -> bool:
        return not self.missing and not self.wrong_gateway

    def problems(self) -> list[str]:
        """One line per failure, naming the sensor and the gateways involved."""
        out = [f"{s}: never reported to {self.gateway_id}" for s in self.missing]
        for sensor, source, registered in self.wrong_gateway:
            if registered is None:
                out.append(f"{sensor}: reported by {source}, but the register has no such sensor on {self.gateway_id}")
            else:
                out.append(f"{sensor}: reported by {source}, but the register puts it on {registered}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "gateway_id": self.gateway_id,
            "passed": self.passed,
            "expected": list(self.expected),
            "reported": {s: at.isoformat() for s, at in self.reported.items()},
            "missing": list(self.missing),
            "wrong_gateway": [
                {"sensor": s, "from": src, "registered_on": reg} for s, src, reg in self.wrong_gateway
            ],
            "problems": self.problems(),
        }


def evaluate(gateway_id: str, home_sensors: Mapping[str, Iterable[str]], seen: Iterable[Seen]) -> WalkResult:
    """``home_sensors``: gateway id -> its sensor ids, for every gateway of the home
    (``gateway_id`` among them); ``seen``: events from those gateways since the start."""
    expected = tuple(home_sensors.get(gateway_id, ()))
    #: sensor id -> another gateway of the home that the register gives it to
    others = {s: gw for gw, sensors in home_sensors.items() if gw != gateway_id for s in sensors}
    reported: dict[str, dt.datetime] = {}
    wrong: dict[tuple[str, str], str | None] = {}
    for ev in sorted(seen, key=lambda e: e.at):
        mine = ev.gateway_id == gateway_id
        if mine and ev.sensor_id in expected:
            reported.setdefault(ev.sensor_id, ev.at)
        elif mine:
            # our gateway reports a sensor the register does not give it
            wrong.setdefault((ev.sensor_id, ev.gateway_id), others.get(ev.sensor_id))
        elif ev.sensor_id in expected and ev.sensor_id not in home_sensors.get(ev.gateway_id, ()):
            # one of our sensors, heard by another gateway of the home that has no such sensor
            wrong.setdefault((ev.sensor_id, ev.gateway_id), gateway_id)
    return WalkResult(
        gateway_id,
        expected,
        reported,
        tuple((s, src, reg) for (s, src), reg in wrong.items()),
    )
