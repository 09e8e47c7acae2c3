"""A gateway's wiring as a whole: clashes on a GPIO pin or an ADC channel name both devices."""

from __future__ import annotations

from typing import Any

import pytest

from devices.errors import DefinitionError
from devices.wiring import Device, check_wiring

#: one of each model on its default pins and channels: no clash
KIT: list[tuple[str, str, dict[str, object]]] = [
    ("smoke-1", "smoke-dry-contact", {}),
    ("smoke-2", "smoke-relay-supervised", {}),
    ("gas-1", "gas-detector", {}),
    ("panic-1", "panic-button", {}),
    ("power-1", "power-supervisor", {}),
    ("buzzer-1", "buzzer", {}),
    ("led-1", "status-led", {}),
]


def wiring(*extra: tuple[str, str, dict[str, Any]], base: list[Any] = KIT) -> list[Device]:
    return [Device(i, m, p) for i, m, p in [*base, *extra]]


def test_the_default_kit_has_no_clash() -> None:
    check_wiring(wiring())
    # a second gas detector on its own pin and channel, as an installer would wire it
    check_wiring(wiring(("gas-2", "gas-detector", {"contact_pin": 12, "level_channel": 2})))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (  # two sensors on one channel
            ("gas-2", "gas-detector", {"contact_pin": 12}),
            "ADC clash: sensor 'gas-1' (gas-detector, level) and sensor 'gas-2' (gas-detector, level) "
            "are both wired to channel 0 of the MCP3008 (SPI0 CE0)",
        ),
        (  # an analogue sensor moved onto the channel another uses
            ("gas-2", "gas-detector", {"contact_pin": 12, "level_channel": 1}),
            "ADC clash: sensor 'power-1' (power-supervisor, battery) and sensor 'gas-2' (gas-detector, level) "
            "are both wired to channel 1 of the MCP3008 (SPI0 CE0)",
        ),
        (
            ("power-2", "power-supervisor", {"mains_pin": 26, "battery_channel": 0}),
            "ADC clash: sensor 'gas-1' (gas-detector, level) and sensor 'power-2' (power-supervisor, battery) "
            "are both wired to channel 0 of the MCP3008",
        ),
        (  # GPIO clashes name both devices too (gpiozero would name only the second)
            ("smoke-3", "smoke-dry-contact", {}),
            "GPIO clash: sensor 'smoke-1' (smoke-dry-contact, contact) and sensor 'smoke-3' "
            "(smoke-dry-contact, contact) are both wired to GPIO 17",
        ),
        (
            ("panic-2", "panic-button", {"button_pin": 18}),
            "GPIO clash: output 'buzzer-1' (buzzer, siren) and sensor 'panic-2' (panic-button, button) "
            "are both wired to GPIO 18",
        ),
        (  # the MCP3008's SPI pins are taken while any analogue input is in use
            ("panic-2", "panic-button", {"button_pin": 9}),
            "GPIO clash: sensor 'panic-2' (panic-button, button) is wired to GPIO 9, the MCP3008's MISO "
            "on SPI0 (GPIO 7-11), which sensor 'gas-1' (gas-detector, level) uses (channel 0)",
        ),
    ],
)
def test_a_clash_names_both_devices_the_pin_or_channel_and_the_chip(
    extra: tuple[str, str, dict[str, Any]], message: str
) -> None:
    with pytest.raises(DefinitionError) as err:
        check_wiring(wiring(extra))
    assert str(err.value).startswith(message)


def test_a_disabled_input_frees_its_channel_and_no_adc_frees_the_spi_pins() -> None:
    no_adc = [("smoke-1", "smoke-dry-contact", {}), ("gas-1", "gas-detector", {"level_enabled": False})]
    # the gas detector without its MCP3008: channel 0 and the SPI pins are free
    check_wiring(
        wiring(("power-2", "power-supervisor", {"mains_pin": 26, "battery_channel": 0}), base=no_adc)
    )
    check_wiring(wiring(("panic-1", "panic-button", {"button_pin": 9}), base=no_adc))


def test_bad_params_and_unknown_models_are_named_with_the_device() -> None:
    with pytest.raises(
        DefinitionError, match=r"device 'gas-2': model 'gas-detector': unknown param 'colour'"
    ):
        check_wiring(wiring(("gas-2", "gas-detector", {"colour": "red"})))
    with pytest.raises(DefinitionError, match=r"device 'x-1': unknown device model 'nope'"):
        check_wiring(wiring(("x-1", "nope", {})))
