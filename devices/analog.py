"""Analogue inputs behind a small seam.

``AnalogSource`` is what the runtime reads (a value 0.0..1.0 of full scale). On a Pi it is
:class:`Mcp3008Source` (gpiozero's ``MCP3008`` over SPI). gpiozero's MockFactory does not
model SPI ADCs usefully, so tests and the simulator use :class:`SettableSource`, whose
value they set; everything above the seam (scaling, thresholds, hysteresis, events) is
the same code in both cases.
"""

from __future__ import annotations

from typing import Protocol

from gpiozero import Factory

from devices.errors import ReadError


class AnalogSource(Protocol):
    def read(self) -> float:
        """Current value as a fraction of full scale, 0.0..1.0. Raises ReadError."""
        ...

    def close(self) -> None: ...


class Mcp3008Source:
    """One MCP3008 channel on SPI (hardware SPI when available, else bit-banged by gpiozero)."""

    def __init__(self, channel: int, pin_factory: Factory, *, device: int = 0) -> None:
        from gpiozero import MCP3008

        try:
            self._adc = MCP3008(channel=channel, device=device, pin_factory=pin_factory)
        except Exception as exc:  # gpiozero raises many types (SPIError, PinError, OSError…)
            raise ReadError(f"MCP3008 channel {channel}: cannot open SPI: {exc}") from exc

    def read(self) -> float:
        try:
            return float(self._adc.value)
        except Exception as exc:  # translated at the boundary
            raise ReadError(f"MCP3008 read failed: {exc}") from exc

    def close(self) -> None:
        self._adc.close()


class SettableSource:
    """An ADC channel whose value tests or the simulator set (``set_fraction``)."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value
        self.fail: str | None = None

    def set_fraction(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"fraction {value} outside 0..1")
        self.value = value

    def read(self) -> float:
        if self.fail:
            raise ReadError(self.fail)
        return self.value

    def close(self) -> None:
        pass
