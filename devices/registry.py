"""Registry of device definitions: look-up by model id and validation of each definition."""

from __future__ import annotations

import itertools
import re

from devices.capabilities import (
    VALID_BCM_PINS,
    AlarmContact,
    AnalogLevel,
    Battery,
    Button,
    Definition,
    Siren,
    StatusLed,
    Tamper,
)
from devices.definitions import ALL
from devices.errors import DefinitionError, UnknownModelError

MODEL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: Event kinds a capability may raise (values of protocols.EventKind, kept as strings
#: so that a definition is plain data).
EVENT_KINDS = frozenset({"smoke", "gas", "panic", "heat", "co", "tamper", "battery_low", "mains_lost"})

_REGISTRY: dict[str, Definition] = {}


def validate(defn: Definition) -> Definition:
    """Return ``defn`` if it is internally consistent, else raise DefinitionError."""

    def bad(role: str, msg: str) -> DefinitionError:
        return DefinitionError(f"model {defn.model!r}, capability {role!r}: {msg}")

    if not MODEL_RE.fullmatch(defn.model):
        raise DefinitionError(f"model id {defn.model!r} is outside [a-z0-9_-]")
    if not defn.capabilities:
        raise DefinitionError(f"model {defn.model!r} has no capabilities")
    roles = [c.role for c in defn.capabilities]
    if len(set(roles)) != len(roles):
        raise DefinitionError(f"model {defn.model!r} has duplicate roles {roles}")
    pins: list[int] = []
    channels: list[int] = []
    for cap in defn.capabilities:
        if isinstance(cap, AnalogLevel | Battery):
            channels.append(cap.channel)
        if isinstance(cap, AlarmContact | Button | Tamper | Siren | StatusLed):
            if cap.pin not in VALID_BCM_PINS:
                raise bad(cap.role, f"pin {cap.pin} is not a BCM GPIO 2..27")
            pins.append(cap.pin)
        if isinstance(cap, AlarmContact | Button) and cap.kind not in EVENT_KINDS:
            raise bad(cap.role, f"kind {cap.kind!r} is not one of {sorted(EVENT_KINDS)}")
        if isinstance(cap, AlarmContact | Button | Tamper) and not 0 <= cap.debounce_ms <= 10_000:
            raise bad(cap.role, f"debounce_ms {cap.debounce_ms} outside 0..10000")
        if isinstance(cap, Button) and cap.long_press_cancel_s is not None and cap.long_press_cancel_s <= 0:
            raise bad(cap.role, "long_press_cancel_s must be > 0")
        if isinstance(cap, AnalogLevel):
            validate_level(defn.model, cap)
        if isinstance(cap, Battery):
            validate_battery(defn.model, cap)
    if len(set(pins)) != len(pins):
        raise DefinitionError(f"model {defn.model!r} uses a pin twice: {pins}")
    if len(set(channels)) != len(channels):
        raise DefinitionError(f"model {defn.model!r} uses an ADC channel twice: {channels}")
    return defn


def validate_level(model: str, cap: AnalogLevel) -> None:
    where = f"model {model!r}, capability {cap.role!r}"
    if cap.kind not in EVENT_KINDS:
        raise DefinitionError(f"{where}: kind {cap.kind!r} unknown")
    if cap.adc != "mcp3008" or not 0 <= cap.channel <= 7:
        raise DefinitionError(f"{where}: MCP3008 channel {cap.channel} outside 0..7")
    ts = cap.thresholds
    if not ts or any(b <= a for a, b in itertools.pairwise(ts)):
        raise DefinitionError(f"{where}: thresholds {ts} must be non-empty and strictly ascending")
    if cap.hysteresis < 0 or (
        len(ts) > 1 and cap.hysteresis >= min(b - a for a, b in itertools.pairwise(ts))
    ):
        raise DefinitionError(
            f"{where}: hysteresis {cap.hysteresis} must be >= 0 and below the threshold gaps"
        )
    if not 1 <= cap.alarm_level <= len(ts):
        raise DefinitionError(f"{where}: alarm_level {cap.alarm_level} outside 1..{len(ts)}")
    if cap.full_scale <= 0:
        raise DefinitionError(f"{where}: full_scale must be > 0")


def validate_battery(model: str, cap: Battery) -> None:
    where = f"model {model!r}, capability {cap.role!r}"
    if cap.adc != "mcp3008" or not 0 <= cap.channel <= 7:
        raise DefinitionError(f"{where}: MCP3008 channel {cap.channel} outside 0..7")
    if cap.full_scale <= 0:
        raise DefinitionError(f"{where}: full_scale {cap.full_scale} V must be > 0")
    if cap.low_v <= 0:
        raise DefinitionError(f"{where}: low_v {cap.low_v} V must be > 0")
    if cap.hysteresis < 0:
        raise DefinitionError(f"{where}: hysteresis {cap.hysteresis} V must be >= 0")
    if not cap.low_v + cap.hysteresis < cap.full_v <= cap.full_scale:
        raise DefinitionError(
            f"{where}: need low_v + hysteresis ({cap.low_v} + {cap.hysteresis} V) < full_v ({cap.full_v} V)"
            f" <= full_scale ({cap.full_scale} V): a charged battery must restore and be measurable"
        )


def register(defn: Definition) -> Definition:
    validate(defn)
    if defn.model in _REGISTRY and _REGISTRY[defn.model] is not defn:
        raise DefinitionError(f"model {defn.model!r} registered twice")
    _REGISTRY[defn.model] = defn
    return defn


def get(model: str) -> Definition:
    try:
        return _REGISTRY[model]
    except KeyError:
        raise UnknownModelError(f"unknown device model {model!r}; known: {sorted(_REGISTRY)}") from None


def models() -> list[str]:
    return sorted(_REGISTRY)


for _d in ALL:
    register(_d)
