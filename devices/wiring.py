"""A gateway's wiring as a whole: no two devices on one GPIO pin or one ADC channel. Pure.

The registry checks each definition on its own (no pin or channel twice within a model);
this checks the installed devices together, with each one's overrides applied, before any
pin is opened. gpiozero would refuse a second device on a GPIO pin, but only naming the
second one, and it cannot see ADC clashes at all: two MCP3008 reads of one channel both
"work", and one of the two sensors silently reports the other's signal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from devices import registry
from devices.capabilities import (
    AlarmContact,
    AnalogLevel,
    Battery,
    Button,
    Siren,
    StatusLed,
    Tamper,
)
from devices.errors import DefinitionError
from devices.runtime import Scalar, apply_params

#: The MCP3008 sits on SPI0, chip-select CE0 (the kernel's SPI0 driver holds both CE0/CE1).
SPI0_PINS = {7: "CE1", 8: "CE0", 9: "MISO", 10: "MOSI", 11: "SCLK"}
ADC_BUS = "SPI0 CE0"


class Installed(Protocol):
    """One installed device as the agent's settings list it (``edge.settings.DeviceEntry``)."""

    @property
    def id(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def params(self) -> Mapping[str, Scalar]: ...


@dataclass(frozen=True, slots=True)
class Device:
    """An :class:`Installed` device, for callers without settings at hand (tests, tools)."""

    id: str
    model: str
    params: Mapping[str, Scalar]


def check_wiring(devices: Iterable[Installed]) -> None:
    """Raise :class:`DefinitionError` naming both devices at the first clash: two on one
    GPIO pin, two on one ADC channel of one chip, or a GPIO input on the ADC's SPI pins."""
    pins: dict[int, str] = {}
    channels: dict[tuple[str, int], str] = {}
    for dev in devices:
        try:
            base = registry.get(dev.model)
            defn, disabled = apply_params(base, dev.params)
        except DefinitionError as exc:
            raise DefinitionError(f"device {dev.id!r}: {exc}") from exc
        kind = "output" if base.is_output else "sensor"
        for cap in defn.capabilities:
            if cap.role in disabled:
                continue  # e.g. a gas detector without the MCP3008 fitted: its channel is free
            who = f"{kind} {dev.id!r} ({dev.model}, {cap.role})"
            if isinstance(cap, AnalogLevel | Battery):
                chip = cap.adc.upper()
                other = channels.setdefault((chip, cap.channel), who)
                if other != who:
                    raise DefinitionError(
                        f"ADC clash: {other} and {who} are both wired to channel {cap.channel} "
                        f"of the {chip} ({ADC_BUS})"
                    )
            elif isinstance(cap, AlarmContact | Button | Tamper | Siren | StatusLed):
                other = pins.setdefault(cap.pin, who)
                if other != who:
                    raise DefinitionError(f"GPIO clash: {other} and {who} are both wired to GPIO {cap.pin}")
    if channels:
        spi = sorted(set(pins) & set(SPI0_PINS))
        if spi:
            (chip, channel), adc_user = next(iter(channels.items()))
            raise DefinitionError(
                f"GPIO clash: {pins[spi[0]]} is wired to GPIO {spi[0]}, the {chip}'s "
                f"{SPI0_PINS[spi[0]]} on {ADC_BUS.split()[0]} (GPIO 7-11), which {adc_user} uses "
                f"(channel {channel})"
            )
