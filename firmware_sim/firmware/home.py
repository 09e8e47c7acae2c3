"""``safehome sim home``: one REAL edge agent whose sensors are firmware models on mock pins.

A home script (YAML) says what the devices do and when::

    steps:
      - {at: 5s, smoke: cooking, seconds: 40}
      - {at: 1m, panic: long_press_cancel}
      - {at: 2m, gas: leak, peak: 35, ramp: 1m, hold: 30s, vent: 1m}

Devices and actions: ``smoke``: alarm (``duration``), selftest, cooking (``seconds``),
glitch, low_battery_chirp (invisible on a dry contact); ``supervised_smoke``: the same,
plus low_battery_chirp (trouble relay), battery_replaced, tamper (``duration``); ``gas``:
leak (``peak``, ``ramp``, ``hold``, ``vent``, ``step``); ``panic``: press,
long_press_cancel (``after``), double_press; ``power`` (the gateway's UPS HAT): mains_loss
(``duration``, ``step``, ``soc``; a cell that empties first cuts the Pi's supply until
mains returns), brownout (``width``), battery_drain (``from_v``, ``to_v``, ``over``,
``step``); a power step may also size the cell: ``backup`` (full to empty, default 4 h)
and ``recharge`` (empty to full, default 3 h).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

from firmware_sim.errors import ScenarioError
from firmware_sim.firmware.models import (
    Drive,
    GasDetector,
    PanicButton,
    SmokeDetector,
    SupervisedSmokeDetector,
)
from firmware_sim.firmware.power import UpsHat
from firmware_sim.scenario.model import parse_duration

DURATION_ARGS = {"duration", "seconds", "ramp", "hold", "vent", "step", "after", "width", "over", "backup",
                 "recharge"}  # fmt: skip
#: step arguments that build the device's model rather than its action (name -> model field)
MODEL_ARGS: dict[str, dict[str, str]] = {"power": {"backup": "backup_s", "recharge": "recharge_s"}}
_SMOKE = {"alarm", "selftest", "cooking", "glitch", "low_battery_chirp"}
ACTIONS: dict[str, set[str]] = {
    "smoke": _SMOKE,
    "supervised_smoke": _SMOKE | {"battery_replaced", "tamper"},
    "gas": {"leak"},
    "panic": {"press", "long_press_cancel", "double_press"},
    "power": {"mains_loss", "brownout", "battery_drain"},
}
#: the firmware model of each script device; its default sensor id is in DEFAULT_SENSORS
MODELS: dict[str, Any] = {
    "smoke": SmokeDetector,
    "supervised_smoke": SupervisedSmokeDetector,
    "gas": GasDetector,
    "panic": PanicButton,
    "power": UpsHat,
}


def drives_of(script: Any, seed: int = 1) -> list[Drive]:
    """Expand a home script (parsed YAML) into timed drives; errors name the step."""
    if not isinstance(script, dict) or not isinstance(script.get("steps"), list):
        raise ScenarioError("a home script is a mapping with a list 'steps'")
    rng = random.Random(seed)
    devices = {name: model() for name, model in MODELS.items()}
    out: list[Drive] = []
    for i, step in enumerate(script["steps"]):
        where = f"steps.{i}"
        if not isinstance(step, dict):
            raise ScenarioError("a step is a mapping like {at: 5s, smoke: cooking}", where)
        device = [k for k in step if k in ACTIONS]
        if len(device) != 1:
            raise ScenarioError(f"a step names exactly one device of {', '.join(ACTIONS)}", where)
        dev = device[0]
        action = step[dev]
        if action not in ACTIONS[dev]:
            raise ScenarioError(
                f"{dev} cannot {action!r}; it can {', '.join(sorted(ACTIONS[dev]))}", f"{where}.{dev}"
            )
        try:
            t0 = parse_duration(step.get("at", 0))
            args = {
                k: parse_duration(v) if k in DURATION_ARGS else v
                for k, v in step.items()
                if k not in ("at", dev)
            }
        except ValueError as exc:
            raise ScenarioError(str(exc), where) from exc
        fields = {f: args.pop(a) for a, f in MODEL_ARGS.get(dev, {}).items() if a in args}
        if "sensor" in args:
            fields["sensor"] = str(args.pop("sensor"))
        model = MODELS[dev](**fields) if fields else devices[dev]
        if action == "cooking":
            args["rng"] = rng
        try:
            out += getattr(model, action)(t0, **args)
        except (TypeError, ValueError) as exc:
            raise ScenarioError(f"bad arguments for {dev} {action}: {exc}", where) from exc
    return sorted(out)


def load_home_script(path: Path, seed: int = 1) -> list[Drive]:
    try:
        return drives_of(yaml.safe_load(path.read_text()), seed)
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(str(exc), str(path)) from exc


#: one of each model on its default pins (smoke-1 17, smoke-2 5/6/13, gas-1 27 + ADC 0,
#: panic-1 22, power-1 25 + ADC 1; buzzer 18, led 23; SPI0 7-11 for the MCP3008)
DEFAULT_SENSORS = [
    {"id": "smoke-1", "model": "smoke-dry-contact"},
    {"id": "smoke-2", "model": "smoke-relay-supervised"},
    {"id": "gas-1", "model": "gas-detector"},
    {"id": "panic-1", "model": "panic-button"},
    {"id": "power-1", "model": "power-supervisor"},
]
DEFAULT_OUTPUTS = [{"id": "buzzer-1", "model": "buzzer"}, {"id": "led-1", "model": "status-led"}]
