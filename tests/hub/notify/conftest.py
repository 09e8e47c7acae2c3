"""The notification tests reuse the alarm tests' registry and ``hub`` fixture."""

from tests.hub.alarms.conftest import hub

__all__ = ["hub"]
