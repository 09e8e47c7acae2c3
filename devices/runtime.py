"""Installed sensors and outputs: a definition bound to gpiozero devices and pure filters.

The agent polls :meth:`SensorRuntime.poll` every few tens of milliseconds and gets back
debounced, filtered :class:`Change` objects. Per-sensor wiring overrides come from the
sensor's ``params``: ``{role}_pin``, ``{role}_active_low``, ``{role}_debounce_ms``,
``{role}_channel``, ``{role}_low_v``…, and ``{role}_enabled`` (e.g. ``level_enabled =
false`` for a gas detector without the MCP3008 fitted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpiozero import DigitalInputDevice, DigitalOutputDevice, Factory, GPIOZeroError

from devices.analog import AnalogSource, Mcp3008Source
from devices.capabilities import (
    AlarmContact,
    AnalogLevel,
    Battery,
    Button,
    Capability,
    Definition,
    Siren,
    StatusLed,
    Tamper,
)
from devices.errors import DefinitionError, DeviceError, ReadError
from devices.logic import Debouncer, FallingThreshold, LevelFilter, PanicAction, PanicButton
from devices.registry import validate

Scalar = str | int | float | bool | None
#: consecutive failed reads before a sensor_fault is raised
FAULT_AFTER = 3


@dataclass(frozen=True, slots=True)
class Change:
    """A filtered state change of one sensor: ``alarm`` True = condition on, False = restore."""

    sensor: str
    kind: str
    alarm: bool
    cause: str
    values: Mapping[str, float] = field(default_factory=dict)
    #: a condition that holds until it ends (a contact, a level, a low battery); False for
    #: a momentary one (a panic press, its cancel), which has no state to come back to
    latched: bool = True


def apply_params(defn: Definition, params: Mapping[str, Scalar]) -> tuple[Definition, set[str]]:
    """The definition with per-sensor overrides applied; also the disabled roles."""
    caps: list[Capability] = []
    disabled: set[str] = set()
    known = {f"{c.role}_{f.name}" for c in defn.capabilities for f in dataclasses.fields(c)}
    known |= {f"{c.role}_enabled" for c in defn.capabilities}
    for key in params:
        if key not in known:
            raise DefinitionError(f"model {defn.model!r}: unknown param {key!r}; known: {sorted(known)}")
    for cap in defn.capabilities:
        if params.get(f"{cap.role}_enabled") is False:
            disabled.add(cap.role)
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(cap):
            key = f"{cap.role}_{f.name}"
            if key in params and f.name not in ("role", "kind"):
                value, current = params[key], getattr(cap, f.name)
                numeric = isinstance(current, float) and type(value) is int
                if type(value) is not type(current) and not numeric and current is not None:
                    raise DefinitionError(
                        f"model {defn.model!r}: param {key!r} must be {type(current).__name__}, "
                        f"got {type(value).__name__} {value!r}"
                    )
                changes[f.name] = value
        caps.append(dataclasses.replace(cap, **changes) if changes else cap)
    return validate(dataclasses.replace(defn, capabilities=tuple(caps))), disabled


class _Input:
    """A digital input with an internal pull-up (``pull_up``) or pull-down, active low or high.

    gpiozero ties "active" to the pull (pull-up: active when low) and leaves the pin
    floating when asked for another active state; an NC loop on the pull-up (tamper) or a
    power-good line on the pull-down must keep its pull, or a cut wire would float instead
    of reading as the trouble it is. So the pull is always set and the sense inverted here.
    """

    def __init__(self, pin: int, active_low: bool, pull_up: bool, factory: Factory) -> None:
        self._dev = DigitalInputDevice(pin, pull_up=pull_up, pin_factory=factory)
        self._invert = pull_up != active_low

    @property
    def is_active(self) -> bool:
        return bool(self._dev.is_active) != self._invert

    def close(self) -> None:
        self._dev.close()


AnalogFactory = Callable[[AnalogLevel | Battery], AnalogSource]


class SensorRuntime:
    """One installed input device (smoke contact, gas detector, panic button)."""

    def __init__(
        self,
        sensor_id: str,
        definition: Definition,
        factory: Factory,
        params: Mapping[str, Scalar] | None = None,
        analog: AnalogFactory | None = None,
    ) -> None:
        self.sensor_id = sensor_id
        try:
            self.definition, disabled = apply_params(definition, params or {})
        except DefinitionError as exc:
            raise DefinitionError(f"sensor {sensor_id!r}: {exc}") from exc
        self.model = definition.model
        self.pins: dict[str, int] = {}  #: digital input role -> BCM pin
        self.channels: dict[str, int] = {}  #: analogue role -> ADC channel
        self.faults = 0
        self._contacts: list[tuple[AlarmContact | Tamper, _Input, Debouncer]] = []
        self._buttons: list[tuple[Button, _Input, Debouncer, PanicButton]] = []
        self._levels: list[tuple[AnalogLevel, AnalogSource, LevelFilter]] = []
        self._batteries: list[tuple[Battery, AnalogSource, FallingThreshold]] = []
        self._active: dict[str, set[str]] = {}  # kind -> roles currently in alarm
        self._last_values: dict[str, float] = {}
        self._fail_count = 0
        self._faulted = False
        try:
            for cap in self.definition.capabilities:
                if cap.role in disabled:
                    continue
                if isinstance(cap, AlarmContact | Tamper):
                    dev = _Input(cap.pin, cap.active_low, cap.pull_up, factory)
                    self.pins[cap.role] = cap.pin
                    self._contacts.append((cap, dev, Debouncer(cap.debounce_ms / 1000)))
                elif isinstance(cap, Button):
                    dev = _Input(cap.pin, cap.active_low, cap.pull_up, factory)
                    self.pins[cap.role] = cap.pin
                    logic = PanicButton(long_press_s=cap.long_press_cancel_s)
                    self._buttons.append((cap, dev, Debouncer(cap.debounce_ms / 1000), logic))
                elif isinstance(cap, AnalogLevel | Battery):
                    src = analog(cap) if analog else Mcp3008Source(cap.channel, factory)
                    self.channels[cap.role] = cap.channel
                    if isinstance(cap, AnalogLevel):
                        self._levels.append((cap, src, LevelFilter(cap.thresholds, cap.hysteresis)))
                    else:
                        self._batteries.append((cap, src, FallingThreshold(cap.low_v, cap.hysteresis)))
        except DeviceError:
            self.close()
            raise
        except Exception as exc:  # gpiozero pin errors (PinInUse, PinInvalidPin…)
            self.close()
            raise DefinitionError(f"sensor {sensor_id!r} ({self.model}): cannot open pins: {exc}") from exc

    def _set(self, kind: str, role: str, on: bool, values: Mapping[str, float]) -> Change | None:
        roles = self._active.setdefault(kind, set())
        was = bool(roles)
        roles.add(role) if on else roles.discard(role)
        if bool(roles) != was:
            return Change(self.sensor_id, kind, bool(roles), role, dict(values))
        return None

    def poll(self, now: float) -> list[Change]:
        """Sample every input once; return the filtered changes (usually none)."""
        out: list[Change] = []
        for c, dev, deb in self._contacts:
            new = deb.update(bool(dev.is_active), now)
            if new is not None:
                kind = "tamper" if isinstance(c, Tamper) else c.kind
                ch = self._set(kind, c.role, new, {})
                if ch:
                    out.append(ch)
        for b, dev, deb, logic in self._buttons:
            deb.update(bool(dev.is_active), now)
            action = logic.update(deb.state, now)
            if action is PanicAction.ALARM:
                out.append(Change(self.sensor_id, b.kind, True, "press", latched=False))
            elif action is PanicAction.CANCEL:
                out.append(Change(self.sensor_id, b.kind, False, "cancel", latched=False))
        for lv, src, filt in self._levels:
            value = self._read(lv, src, 2, out)
            if value is not None and filt.update(value) is not None:
                ch = self._set(lv.kind, lv.role, filt.level >= lv.alarm_level, {"lel": value})
                if ch:
                    out.append(ch)
        for bat, src, low in self._batteries:
            volts = self._read(bat, src, 3, out)
            if volts is not None and (is_low := low.update(volts)) is not None:
                ch = self._set("battery_low", bat.role, is_low, {"battery_v": volts})
                if ch:
                    out.append(ch)
        return out

    def _read(
        self, cap: AnalogLevel | Battery, src: AnalogSource, digits: int, out: list[Change]
    ) -> float | None:
        """One scaled ADC reading (also kept for telemetry), or None after a failed read:
        ``FAULT_AFTER`` failures in a row raise sensor_fault, the next good read restores it."""
        try:
            value = round(src.read() * cap.full_scale, digits)
        except ReadError:
            self._fail_count += 1
            if self._fail_count >= FAULT_AFTER and not self._faulted:
                self._faulted = True
                out.append(Change(self.sensor_id, "sensor_fault", True, cap.role))
            return None
        if self._faulted:
            self._faulted = False
            out.append(Change(self.sensor_id, "sensor_fault", False, cap.role))
        self._fail_count = 0
        self._last_values[cap.metric] = value
        return value

    def readings(self) -> dict[str, float]:
        """Latest values for periodic telemetry (metric id -> value)."""
        out = dict(self._last_values)
        for c, _dev, deb in self._contacts:
            out[f"{c.kind if isinstance(c, AlarmContact) else 'tamper'}_contact"] = 1.0 if deb.state else 0.0
        return out

    def check(self) -> bool:
        """Self-test: every pin and ADC answers. Reads without touching the filters."""
        try:
            for _c, dev, _d in self._contacts:
                bool(dev.is_active)
            for _b, dev, _d, _l in self._buttons:
                bool(dev.is_active)
            for _lv, src, _f in self._levels:
                src.read()
            for _bat, src, _t in self._batteries:
                src.read()
        except (ReadError, GPIOZeroError, OSError):
            return False
        return True

    def input_states(self) -> dict[str, bool]:
        """Debounced state of each digital input by role (True = active)."""
        out = {c.role: deb.state for c, _dev, deb in self._contacts}
        out.update({b.role: deb.state for b, _dev, deb, _l in self._buttons})
        return out

    @property
    def faulted(self) -> bool:
        return self._faulted

    @property
    def alarm_active(self) -> bool:
        return any(self._active.values())

    def close(self) -> None:
        for _c, dev, _d in self._contacts:
            dev.close()
        for _b, dev, _d, _l in self._buttons:
            dev.close()
        for _lv, src, _f in self._levels:
            src.close()
        for _bat, src, _t in self._batteries:
            src.close()


class OutputRuntime:
    """A buzzer or status LED: just on/off; the agent makes the patterns."""

    def __init__(
        self,
        output_id: str,
        definition: Definition,
        factory: Factory,
        params: Mapping[str, Scalar] | None = None,
    ) -> None:
        self.output_id = output_id
        self.definition, _ = apply_params(definition, params or {})
        caps = [c for c in self.definition.capabilities if isinstance(c, Siren | StatusLed)]
        if len(caps) != 1:
            raise DefinitionError(f"output {output_id!r}: model {definition.model!r} is not a single output")
        cap = caps[0]
        self.role = "siren" if isinstance(cap, Siren) else "led"
        self.pin = cap.pin
        try:
            self._dev = DigitalOutputDevice(
                cap.pin, active_high=cap.active_high, initial_value=False, pin_factory=factory
            )
        except Exception as exc:  # gpiozero pin errors
            raise DefinitionError(f"output {output_id!r}: cannot open pin {cap.pin}: {exc}") from exc

    def set(self, on: bool) -> None:
        if on:
            self._dev.on()
        else:
            self._dev.off()

    @property
    def is_on(self) -> bool:
        return bool(self._dev.value)

    def close(self) -> None:
        self._dev.close()
