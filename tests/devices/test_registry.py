"""Every definition is valid and registered; invalid definitions are refused clearly."""

from __future__ import annotations

import dataclasses

import pytest

from devices import definitions, registry
from devices.capabilities import Capability, Definition, alarm_contact, analog_level, battery, button, tamper
from devices.errors import DefinitionError, UnknownModelError

REQUIRED = {
    "smoke-dry-contact",
    "smoke-relay-supervised",
    "gas-detector",
    "panic-button",
    "panic-button-tamper",
    "power-supervisor",
    "buzzer",
    "status-led",
}


def all_definitions() -> list[Definition]:
    return [v for v in vars(definitions).values() if isinstance(v, Definition)]


def test_required_models_are_registered() -> None:
    assert set(registry.models()) >= REQUIRED


@pytest.mark.parametrize("defn", all_definitions(), ids=lambda d: d.model)
def test_every_definition_is_valid_and_registered(defn: Definition) -> None:
    assert registry.validate(defn) is defn
    assert registry.get(defn.model) is defn
    assert defn in definitions.ALL


def test_unknown_model() -> None:
    with pytest.raises(UnknownModelError, match="unknown device model 'nope'"):
        registry.get("nope")


@pytest.mark.parametrize(
    ("caps", "match"),
    [
        ((alarm_contact("smoke", pin=1),), "pin 1 is not a BCM GPIO"),
        ((alarm_contact("fire!", pin=17),), "kind 'fire!'"),
        ((alarm_contact("smoke", pin=17), button("panic", pin=17)), "uses a pin twice"),
        ((analog_level("gas", "%LEL", "gas_lel", thresholds=(20.0, 10.0)),), "strictly ascending"),
        ((analog_level("gas", "%LEL", "gas_lel", hysteresis=50.0),), "hysteresis"),
        ((analog_level("gas", "%LEL", "gas_lel", channel=9),), "channel 9"),
        ((analog_level("gas", "%LEL", "gas_lel", alarm_level=3),), "alarm_level 3"),
        ((button("panic", pin=22, long_press_cancel_s=0),), "long_press_cancel_s"),
        ((alarm_contact("smoke", pin=5), tamper(pin=5)), "uses a pin twice"),
        ((tamper(pin=13, debounce_ms=-1),), "debounce_ms -1 outside"),
        ((battery(channel=8),), "channel 8 outside 0..7"),
        ((battery(full_scale=0),), "full_scale 0 V must be > 0"),
        ((battery(low_v=4.0, hysteresis=0.3),), r"low_v \+ hysteresis"),
        ((analog_level("gas", "%LEL", "gas_lel", channel=1), battery(channel=1)), "ADC channel twice"),
        ((), "no capabilities"),
    ],
)
def test_invalid_definitions_are_refused(caps: tuple[Capability, ...], match: str) -> None:
    with pytest.raises(DefinitionError, match=match):
        registry.validate(Definition("x-model", "v", "d", caps))


def test_register_refuses_a_second_definition_for_a_model() -> None:
    other = dataclasses.replace(definitions.BUZZER, description="another")
    with pytest.raises(DefinitionError, match="registered twice"):
        registry.register(other)
