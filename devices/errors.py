"""Exceptions of the device layer.

DeviceError
    base class of everything raised by ``devices/``.
DefinitionError(DeviceError)
    a device definition (or a sensor's wiring overrides) is invalid: names the model,
    the capability and the field.
UnknownModelError(DefinitionError)
    a model id that no definition is registered for.
PinFactoryError(DeviceError)
    the configured gpiozero pin factory cannot be loaded on this machine (e.g. RPi.GPIO on
    a Pi 5, or any hardware factory off a Pi).
ReadError(DeviceError)
    a pin or ADC could not be read; the agent turns repeated read errors into a
    ``sensor_fault`` event.
"""

from __future__ import annotations


class DeviceError(Exception):
    """Base class of device-layer errors."""


class DefinitionError(DeviceError):
    """An invalid device definition or wiring."""


class UnknownModelError(DefinitionError):
    """No definition is registered for this model id."""


class PinFactoryError(DeviceError):
    """The configured gpiozero pin factory is not usable here."""


class ReadError(DeviceError):
    """A pin or ADC read failed."""
