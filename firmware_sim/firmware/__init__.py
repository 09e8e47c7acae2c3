"""Sensor firmware models that drive the (mock) pins and ADC of a real edge agent."""

from firmware_sim.firmware.models import (
    Drive,
    GasDetector,
    PanicButton,
    SmokeDetector,
    SupervisedSmokeDetector,
)
from firmware_sim.firmware.power import UpsHat

__all__ = ["Drive", "GasDetector", "PanicButton", "SmokeDetector", "SupervisedSmokeDetector", "UpsHat"]
