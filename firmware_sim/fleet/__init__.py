"""Fleet mode: thousands of protocol-level gateways per process."""

from firmware_sim.fleet.fleet import Fleet
from firmware_sim.fleet.gateway import GatewaySpec, SensorSpec, SimGateway
from firmware_sim.fleet.types import FleetObserver, FleetSettings, specs_from_registry

__all__ = [
    "Fleet",
    "FleetObserver",
    "FleetSettings",
    "GatewaySpec",
    "SensorSpec",
    "SimGateway",
    "specs_from_registry",
]
