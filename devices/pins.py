"""Choose the gpiozero pin factory by name: ``mock``, ``rpigpio`` (Pi <= 4), ``lgpio`` (Pi 5)."""

from __future__ import annotations

from typing import Literal

from gpiozero import Factory

from devices.errors import PinFactoryError

PinFactoryName = Literal["mock", "rpigpio", "lgpio"]
PIN_FACTORIES: tuple[str, ...] = ("mock", "rpigpio", "lgpio")


def make_pin_factory(name: str) -> Factory:
    """A new pin factory. Hardware factories fail here (not at first use) off a Pi."""
    try:
        if name == "mock":
            from gpiozero.pins.mock import MockFactory

            return MockFactory()
        if name == "rpigpio":
            from gpiozero.pins.rpigpio import RPiGPIOFactory

            return RPiGPIOFactory()
        if name == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory()
    except (ImportError, RuntimeError, OSError) as exc:
        raise PinFactoryError(f"pin factory {name!r} is not usable here: {exc}") from exc
    raise PinFactoryError(f"unknown pin factory {name!r}; choose one of {', '.join(PIN_FACTORIES)}")
