"""Expand a scenario into a timeline of primitive fleet actions. Pure and seeded.

The same scenario, fleet and seed always give the same timeline, so a run can be
replayed and a test can assert exactly what will happen and when.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from firmware_sim.errors import ScenarioError
from firmware_sim.fleet.gateway import GatewaySpec, SensorSpec
from firmware_sim.scenario import model as m
from protocols.catalogue import MODEL_KINDS

#: Primitive operations the runner knows how to apply to a fleet.
OPS = ("alarm", "restore", "reading", "telemetry", "link_down", "link_up", "power_off", "power_on")
#: Troubles that only a sensor input can raise (a trouble relay, a tamper loop, a UPS HAT):
#: a scenario raises them only on gateways with such a sensor, from that sensor.
INPUT_TROUBLES = frozenset({"battery_low", "tamper", "mains_lost"})


def kinds_of(sensor: SensorSpec) -> tuple[str, ...]:
    """Every kind the sensor's model raises (an unknown model: only its registered kind)."""
    return MODEL_KINDS.get(sensor.model, (sensor.kind,))


def models_raising(kind: str) -> str:
    return ", ".join(model for model, kinds in MODEL_KINDS.items() if kind in kinds)


@dataclass(frozen=True, slots=True, order=True)
class Action:
    t: float  #: seconds from scenario start
    n: int  #: tie-breaker: order of creation
    op: str
    gw: str
    kind: str = ""
    sensor: str | None = None
    value: float | None = None
    note: str = ""


class Index:
    """Lookups from the fleet's gateways: by id, by home, by workstation."""

    def __init__(self, specs: list[GatewaySpec]) -> None:
        self.by_id = {s.id: s for s in specs}
        self.by_home = {s.home: s.id for s in specs if s.home}
        self.by_ws: dict[str, list[str]] = defaultdict(list)
        for s in specs:
            self.by_ws[s.workstation].append(s.id)

    def has_sensor(self, gw: str, sensor: str) -> bool:
        return any(x.id == sensor for x in self.by_id[gw].sensors)

    def sensor_of_kind(self, gw: str, kind: str) -> str | None:
        return next((x.id for x in self.by_id[gw].sensors if x.kind == kind), None)

    def sensors_raising(self, gw: str, kind: str, sensor: str | None = None) -> list[str]:
        """Sensors of ``gw`` (only ``sensor``, if given) whose model raises ``kind``, e.g.
        battery_low: a supervised smoke detector's trouble relay or the UPS HAT's cell."""
        return [
            x.id for x in self.by_id[gw].sensors if (sensor is None or x.id == sensor) and kind in kinds_of(x)
        ]


class Planner:
    def __init__(self, scenario: m.Scenario, specs: list[GatewaySpec]) -> None:
        self.scn = scenario
        self.idx = Index(specs)
        self.rng = random.Random(scenario.seed)
        self.out: list[Action] = []

    def add(self, t: float, op: str, gw: str, **kw: object) -> None:
        self.out.append(Action(round(t, 3), len(self.out), op, gw, **kw))  # type: ignore[arg-type]

    def select(
        self,
        tg: m.Target,
        where: str,
        sensor: str | None = None,
        kind: str | None = None,
        raises: str | None = None,
    ) -> list[str]:
        """The targeted gateways; only those with ``sensor``, with a sensor of primary
        ``kind``, and with a sensor (``sensor``, if given) that ``raises`` that kind."""
        if tg.gateway is not None:
            if tg.gateway not in self.idx.by_id:
                raise ScenarioError(f"unknown gateway {tg.gateway!r}", where + ".gateway")
            pool = [tg.gateway]
        elif tg.home is not None:
            if tg.home not in self.idx.by_home:
                raise ScenarioError(
                    f"unknown home {tg.home!r} (not in the fleet's registry)", where + ".home"
                )
            pool = [self.idx.by_home[tg.home]]
        elif tg.workstation is not None:
            if tg.workstation not in self.idx.by_ws:
                raise ScenarioError(f"unknown workstation {tg.workstation!r}", where + ".workstation")
            pool = sorted(self.idx.by_ws[tg.workstation])
        else:
            pool = sorted(self.idx.by_id)
        if sensor is not None:
            pool = [g for g in pool if self.idx.has_sensor(g, sensor)]
            if not pool:
                raise ScenarioError(f"no selected gateway has sensor {sensor!r}", where)
        if kind is not None:
            pool = [g for g in pool if self.idx.sensor_of_kind(g, kind)]
            if not pool:
                raise ScenarioError(f"no selected gateway has a {kind} sensor", where)
        if raises is not None:
            pool = [g for g in pool if self.idx.sensors_raising(g, raises, sensor)]
            if not pool:
                which = f"sensor {sensor!r}" if sensor is not None else "a sensor"
                raise ScenarioError(
                    f"no selected gateway has {which} that raises {raises} "
                    f"(models that do: {models_raising(raises)})",
                    where,
                )
        n = (
            tg.homes
            if tg.homes is not None
            else (max(1, round(tg.share * len(pool))) if tg.share else len(pool))
        )
        return pool if n >= len(pool) else sorted(self.rng.sample(pool, n))

    def plan(self) -> list[Action]:
        for i, step in enumerate(self.scn.steps):
            getattr(self, f"_{step.action}")(self.scn.offset(i), step.spec, f"steps.{i}.{step.action}")
        return sorted(self.out)

    # --- one method per scenario action ------------------------------------------------
    def _smoke(self, t0: float, s: m.Smoke, where: str) -> None:
        for gw in self.select(s, where, s.sensor):
            self.add(t0, "alarm", gw, kind="smoke", sensor=s.sensor, note="smoke")
            if s.clear_after is not None:
                self.add(
                    t0 + s.clear_after, "restore", gw, kind="smoke", sensor=s.sensor, note="smoke cleared"
                )

    def _panic(self, t0: float, s: m.Panic, where: str) -> None:
        for gw in self.select(s, where, kind="panic"):
            sensor = self.idx.sensor_of_kind(gw, "panic")
            self.add(t0, "alarm", gw, kind="panic", sensor=sensor, note="panic button")
            if s.cancel_after is not None:
                self.add(
                    t0 + s.cancel_after, "restore", gw, kind="panic", sensor=sensor, note="long-press cancel"
                )

    def _gas_leak(self, t0: float, s: m.GasLeak, where: str) -> None:
        for gw in self.select(s, where, s.sensor):
            in_alarm, t = False, 0.0
            total = s.ramp + s.hold + s.vent
            while t <= total + 1e-9:
                if t <= s.ramp:
                    lel = s.peak_lel * (t / s.ramp if s.ramp else 1.0)
                elif t <= s.ramp + s.hold:
                    lel = s.peak_lel
                else:
                    lel = s.peak_lel * max(0.0, 1 - (t - s.ramp - s.hold) / (s.vent or 1))
                lel = round(lel, 1)
                self.add(t0 + t, "reading", gw, kind="gas_lel", sensor=s.sensor, value=lel)
                if not in_alarm and lel >= s.alarm_lel:
                    in_alarm = True
                    self.add(
                        t0 + t, "alarm", gw, kind="gas", sensor=s.sensor, value=lel, note=f"gas {lel} %LEL"
                    )
                elif in_alarm and lel <= s.restore_lel:
                    in_alarm = False
                    self.add(
                        t0 + t, "restore", gw, kind="gas", sensor=s.sensor, value=lel, note="gas ventilated"
                    )
                t += s.step

    def _power_cut(self, t0: float, s: m.PowerCut, where: str) -> None:
        for gw in self.select(s, where):
            ups = self.idx.sensors_raising(gw, "mains_lost")
            if ups:
                # the router dies with the mains; the gateway runs on its UPS HAT and buffers
                # mains_lost (and its telemetry) until the link is back. A fleet's UPS never
                # runs empty (4 h): `safehome sim home` models a cell that does.
                self.add(t0, "link_down", gw, note="power cut")
                self.add(t0, "alarm", gw, kind="mains_lost", sensor=ups[0], note="mains lost")
                self.add(
                    t0 + s.duration, "restore", gw, kind="mains_lost", sensor=ups[0], note="mains restored"
                )
                self.add(t0 + s.duration, "link_up", gw)
            else:
                # no UPS: the gateway dies with the mains (the hub hears its Last-Will and
                # nothing else) and boots when it returns, resending what it had stored
                self.add(t0, "power_off", gw, note="power cut: gateway dark")
                self.add(t0 + s.duration, "power_on", gw, note="mains restored: gateway boots")

    def _flap(self, t0: float, s: m.Flap, where: str) -> None:
        gws = self.select(s, where)
        t = t0
        while t < t0 + s.until:
            for gw in gws:
                jitter = self.rng.uniform(0, min(s.every, s.down))
                self.add(t + jitter, "link_down", gw, note="link flap")
                self.add(t + jitter + s.down, "link_up", gw)
            t += s.every

    def _trouble(self, t0: float, s: m.Trouble, where: str) -> None:
        raises = s.kind if s.kind in INPUT_TROUBLES else None
        for gw in self.select(s, where, s.sensor, raises=raises):
            sensor = self.idx.sensors_raising(gw, s.kind, s.sensor)[0] if raises else s.sensor
            self.add(t0, "alarm", gw, kind=s.kind, sensor=sensor, note=s.kind.replace("_", " "))
            if s.clear_after is not None:
                self.add(
                    t0 + s.clear_after, "restore", gw, kind=s.kind, sensor=sensor, note=f"{s.kind} restored"
                )

    def _incidents(self, t0: float, s: m.Incidents, where: str) -> None:
        gws = self.select(s, where)
        t = t0
        while True:
            t += self.rng.expovariate(s.per_hour / 3600)
            if t >= t0 + s.until:
                return
            self._incident(t, self.rng.choice(gws))

    def _incident(self, t: float, gw: str) -> None:
        """One realistic incident: mostly false alarms and troubles, each with its restore.
        Only what the gateway's sensors can report: no battery_low from a dry-contact smoke
        detector, no tamper without a tamper loop, no mains_lost without a UPS HAT."""
        u = self.rng.uniform
        smoke, gas, panic = (self.idx.sensor_of_kind(gw, k) for k in ("smoke", "gas", "panic"))
        battery, tamper, mains = (
            self.idx.sensors_raising(gw, k) for k in ("battery_low", "tamper", "mains_lost")
        )
        # (weight, incident) of each incident this gateway can have
        options = [
            (w, name)
            for w, name, possible in (
                (0.30, "cooking", smoke), (0.15, "accidental_panic", panic), (0.05, "panic", panic),
                (0.05, "gas", gas), (0.20, "battery_low", battery), (0.10, "tamper", tamper),
                (0.15, "mains_lost", mains),
            )
            if possible
        ]  # fmt: skip
        if not options:
            return
        r = self.rng.random() * sum(w for w, _ in options)
        name = options[-1][1]
        for w, n in options:
            if r < w:
                name = n
                break
            r -= w
        if name == "cooking":
            self.add(t, "alarm", gw, kind="smoke", sensor=smoke, note="smoke (cooking)")
            self.add(t + u(30, 120), "restore", gw, kind="smoke", sensor=smoke, note="smoke cleared")
        elif name == "accidental_panic":
            self.add(t, "alarm", gw, kind="panic", sensor=panic, note="panic (accidental)")
            self.add(t + u(2, 8), "restore", gw, kind="panic", sensor=panic, note="long-press cancel")
        elif name == "panic":
            self.add(t, "alarm", gw, kind="panic", sensor=panic, note="panic")
        elif name == "gas":
            self.add(t, "reading", gw, kind="gas_lel", sensor=gas, value=18.0)
            self.add(t, "alarm", gw, kind="gas", sensor=gas, value=18.0, note="gas 18 %LEL")
            self.add(t + u(120, 300), "reading", gw, kind="gas_lel", sensor=gas, value=0.0)
            self.add(t + u(120, 300), "restore", gw, kind="gas", sensor=gas, note="gas ventilated")
        elif name == "battery_low":
            # stays low until someone replaces the battery (or the charger): no restore here
            sensor = self.rng.choice(battery)
            self.add(t, "alarm", gw, kind="battery_low", sensor=sensor, note=f"{sensor} battery low")
        elif name == "tamper":
            sensor = self.rng.choice(tamper)
            self.add(t, "alarm", gw, kind="tamper", sensor=sensor, note=f"{sensor} tamper")
            self.add(t + u(60, 300), "restore", gw, kind="tamper", sensor=sensor, note="tamper restored")
        else:
            # the gateway's own socket or circuit loses power (the router, elsewhere, stays up)
            self.add(t, "alarm", gw, kind="mains_lost", sensor=mains[0], note="mains lost")
            self.add(
                t + u(60, 1200), "restore", gw, kind="mains_lost", sensor=mains[0], note="mains restored"
            )


def plan(scenario: m.Scenario, specs: list[GatewaySpec]) -> list[Action]:
    """The full, sorted timeline of ``scenario`` over the fleet ``specs``."""
    return Planner(scenario, specs).plan()
