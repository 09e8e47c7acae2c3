"""``safehome sim home``: one REAL edge agent whose sensors are firmware models on mock pins.

A home script (YAML) says what the devices do and when::

    steps:
      - {at: 5s, smoke: cooking, seconds: 40}
      - {at: 1m, panic: long_press_cancel}
      - {at: 2m, gas: leak, peak: 35, ramp: 1m, hold: 30s, vent: 1m}

Devices and actions: ``smoke``: alarm (``duration``), selftest, cooking (``seconds``),
glitch, low_battery_chirp; ``gas``: leak (``peak``, ``ramp``, ``hold``, ``vent``, ``step``);
``panic``: press, long_press_cancel (``after``), double_press.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

from firmware_sim.errors import ScenarioError
from firmware_sim.firmware.models import Drive, GasDetector, PanicButton, SmokeDetector
from firmware_sim.scenario.model import parse_duration

DURATION_ARGS = {"duration", "seconds", "ramp", "hold", "vent", "step", "after"}
ACTIONS: dict[str, set[str]] = {
    "smoke": {"alarm", "selftest", "cooking", "glitch", "low_battery_chirp"},
    "gas": {"leak"},
    "panic": {"press", "long_press_cancel", "double_press"},
}


def drives_of(script: Any, seed: int = 1) -> list[Drive]:
    """Expand a home script (parsed YAML) into timed drives; errors name the step."""
    if not isinstance(script, dict) or not isinstance(script.get("steps"), list):
        raise ScenarioError("a home script is a mapping with a list 'steps'")
    rng = random.Random(seed)
    devices = {"smoke": SmokeDetector(), "gas": GasDetector(), "panic": PanicButton()}
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
        if "sensor" in args:
            devices_for = {"smoke": SmokeDetector, "gas": GasDetector, "panic": PanicButton}
            model: Any = devices_for[dev](sensor=str(args.pop("sensor")))
        else:
            model = devices[dev]
        if dev == "smoke" and action == "cooking":
            args["rng"] = rng
        try:
            out += getattr(model, action)(t0, **args)
        except TypeError as exc:
            raise ScenarioError(f"bad arguments for {dev} {action}: {exc}", where) from exc
    return sorted(out)


def load_home_script(path: Path, seed: int = 1) -> list[Drive]:
    try:
        return drives_of(yaml.safe_load(path.read_text()), seed)
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(str(exc), str(path)) from exc


DEFAULT_SENSORS = [
    {"id": "smoke-1", "model": "smoke-dry-contact"},
    {"id": "gas-1", "model": "gas-detector"},
    {"id": "panic-1", "model": "panic-button"},
]
DEFAULT_OUTPUTS = [{"id": "buzzer-1", "model": "buzzer"}, {"id": "led-1", "model": "status-led"}]
