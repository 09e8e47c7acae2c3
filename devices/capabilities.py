"""Capabilities a device model is made of: plain, frozen data (no pins, no I/O).

A definition lists capabilities; each one names its role (``contact``, ``level``,
``button``…), its wiring defaults (BCM pin, active level, pull-up) and its parameters.
The runtime (``devices/runtime.py``) turns them into gpiozero devices and pure filters.
Wiring can be overridden per installed sensor (``params`` in the agent config).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: BCM GPIO numbers usable on a 40-pin header.
VALID_BCM_PINS = frozenset(range(2, 28))


@dataclass(frozen=True, slots=True)
class AlarmContact:
    """A dry contact (relay output) that closes or opens on alarm."""

    role: str
    kind: str  #: protocols EventKind value, e.g. "smoke", "gas"
    pin: int
    active_low: bool = True  #: contact pulls the input to ground on alarm
    pull_up: bool = True  #: internal pull-up; False: internal pull-down
    debounce_ms: int = 200  #: a change must be stable this long to count (glitch filter)


@dataclass(frozen=True, slots=True)
class AnalogLevel:
    """An analogue concentration through an ADC channel, with thresholds and hysteresis.

    ``thresholds`` are ascending levels (e.g. warn 10, alarm 20 %LEL); the level goes up
    when the value reaches a threshold and down only when it falls ``hysteresis`` below it.
    ``alarm_level`` is the 1-based index of the threshold that raises an alarm.
    """

    role: str
    kind: str
    unit: str
    metric: str  #: telemetry metric id, e.g. "gas_lel"
    adc: str = "mcp3008"
    channel: int = 0
    full_scale: float = 100.0  #: value at ADC 1.0 (e.g. 100 %LEL)
    thresholds: tuple[float, ...] = (10.0, 20.0)
    hysteresis: float = 3.0
    alarm_level: int = 2
    optional: bool = True  #: the model works without the ADC wired


@dataclass(frozen=True, slots=True)
class Button:
    """A push button; a press raises ``kind``, a later long press cancels it (a restore)."""

    role: str
    kind: str
    pin: int
    active_low: bool = True
    pull_up: bool = True
    debounce_ms: int = 50
    long_press_cancel_s: float | None = 3.0  #: None: no cancel


@dataclass(frozen=True, slots=True)
class Battery:
    """A battery voltage read through an ADC channel behind a resistor divider.

    ``full_scale`` is the battery voltage at ADC 1.0 (Vref / divider ratio: 3.3 V through a
    10 kΩ : 20 kΩ divider reads 4.95 V at full scale). Below ``low_v`` the sensor raises
    ``battery_low``; the restore comes only above ``low_v + hysteresis``. ``full_v`` is
    the charged voltage (documentation, validation, and where a simulated battery starts).
    """

    role: str
    metric: str = "battery_v"
    low_v: float = 3.6
    hysteresis: float = 0.2
    full_v: float = 4.2
    adc: str = "mcp3008"
    channel: int = 1
    full_scale: float = 4.95


@dataclass(frozen=True, slots=True)
class Tamper:
    """A tamper switch (enclosure lid, detector base). The usual wiring is a normally
    closed loop to ground with the pull-up: opening it (or cutting the wire) drives the
    input high, so ``active_low = False``."""

    role: str
    pin: int
    active_low: bool = False
    pull_up: bool = True
    debounce_ms: int = 200


@dataclass(frozen=True, slots=True)
class Siren:
    """A buzzer / sounder output (on/off; patterns are made by the agent)."""

    role: str
    pin: int
    active_high: bool = True


@dataclass(frozen=True, slots=True)
class StatusLed:
    role: str
    pin: int
    active_high: bool = True


Capability = AlarmContact | AnalogLevel | Button | Battery | Tamper | Siren | StatusLed
INPUTS = (AlarmContact, AnalogLevel, Button, Battery, Tamper)
OUTPUTS = (Siren, StatusLed)


# --- constructors, so that definitions read like zigbee-herdsman-converters' ------------


def alarm_contact(
    kind: str,
    pin: int,
    *,
    role: str = "contact",
    active_low: bool = True,
    pull_up: bool = True,
    debounce_ms: int = 200,
) -> AlarmContact:
    return AlarmContact(role, kind, pin, active_low, pull_up, debounce_ms)


def analog_level(
    kind: str,
    unit: str,
    metric: str,
    *,
    role: str = "level",
    channel: int = 0,
    full_scale: float = 100.0,
    thresholds: tuple[float, ...] = (10.0, 20.0),
    hysteresis: float = 3.0,
    alarm_level: int = 2,
    optional: bool = True,
) -> AnalogLevel:
    return AnalogLevel(
        role,
        kind,
        unit,
        metric,
        "mcp3008",
        channel,
        full_scale,
        thresholds,
        hysteresis,
        alarm_level,
        optional,
    )


def button(
    kind: str,
    pin: int,
    *,
    role: str = "button",
    long_press_cancel_s: float | None = 3.0,
    debounce_ms: int = 50,
    active_low: bool = True,
    pull_up: bool = True,
) -> Button:
    return Button(role, kind, pin, active_low, pull_up, debounce_ms, long_press_cancel_s)


def battery(
    *,
    role: str = "battery",
    channel: int = 1,
    full_scale: float = 4.95,
    low_v: float = 3.6,
    hysteresis: float = 0.2,
    full_v: float = 4.2,
) -> Battery:
    return Battery(role, "battery_v", low_v, hysteresis, full_v, "mcp3008", channel, full_scale)


def tamper(
    pin: int, *, role: str = "tamper", active_low: bool = False, pull_up: bool = True, debounce_ms: int = 200
) -> Tamper:
    return Tamper(role, pin, active_low, pull_up, debounce_ms)


def mains_input(pin: int, *, role: str = "mains", debounce_ms: int = 2000) -> AlarmContact:
    """A UPS HAT's "power good" output: high while mains is present. The input is pulled
    down, so a lost supply *or a cut wire* reads as ``mains_lost`` (fail-safe); the long
    debounce lets a brown-out flicker the UPS rides through pass without a trouble."""
    return AlarmContact(role, "mains_lost", pin, active_low=True, pull_up=False, debounce_ms=debounce_ms)


def siren(pin: int, *, role: str = "siren", active_high: bool = True) -> Siren:
    return Siren(role, pin, active_high)


def status_led(pin: int, *, role: str = "led", active_high: bool = True) -> StatusLed:
    return StatusLed(role, pin, active_high)


@dataclass(frozen=True, slots=True)
class Definition:
    """One supported device model: an id, a description and its capabilities."""

    model: str
    vendor: str
    description: str
    capabilities: tuple[Capability, ...] = field(default_factory=tuple)

    def capability(self, role: str) -> Capability:
        for cap in self.capabilities:
            if cap.role == role:
                return cap
        raise KeyError(role)

    @property
    def is_output(self) -> bool:
        return all(isinstance(c, OUTPUTS) for c in self.capabilities)
