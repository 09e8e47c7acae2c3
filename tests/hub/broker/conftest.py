"""Fixtures for broker-management tests: a real Mosquitto with the generated ACL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from safehome.testing.mosquitto import Mosquitto
from tests.support.hub_mqtt import SecuredBroker, start_secured_broker


@pytest.fixture
def secured(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> SecuredBroker:
    return start_secured_broker(mosquitto_factory, tmp_path / "secured")
