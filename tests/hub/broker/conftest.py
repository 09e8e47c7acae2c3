"""Fixtures for broker-management tests: a real Mosquitto with the generated ACL."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from safehome.testing.mosquitto import Mosquitto
from safehome.testing.nats import NatsCluster
from tests.support.hub_mqtt import SecuredBroker, start_secured_broker


@pytest.fixture
def secured(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> SecuredBroker:
    return start_secured_broker(mosquitto_factory, tmp_path / "secured")


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """One 3-node NATS cluster per test module (the product's config, loopback ports)."""
    overrides = json.loads(os.environ.get("SAFEHOME_TEST_NATS_OVERRIDES", "{}"))
    with NatsCluster(tmp_path_factory.mktemp("nats"), overrides=overrides) as cluster:
        yield cluster
