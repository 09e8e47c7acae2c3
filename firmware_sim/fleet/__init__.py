"""Fleet mode: thousands of protocol-level gateways per process."""

from firmware_sim.fleet.fleet import Fleet, FleetObserver, FleetSettings, specs_from_registry
from firmware_sim.fleet.gateway import GatewaySpec, SensorSpec, SimGateway

__all__ = [
    "Fleet",
    "FleetObserver",
    "FleetSettings",
    "GatewaySpec",
    "SensorSpec",
    "SimGateway",
    "specs_from_registry",
]
