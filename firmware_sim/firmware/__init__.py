"""Sensor firmware models that drive the (mock) pins and ADC of a real edge agent."""

from firmware_sim.firmware.models import Drive, GasDetector, PanicButton, SmokeDetector

__all__ = ["Drive", "GasDetector", "PanicButton", "SmokeDetector"]
