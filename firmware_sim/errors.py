"""Exceptions of the simulator.

SimError
    base of everything firmware_sim raises on purpose.
RegistryError
    a registry file or table that breaks the registry contract (``where`` names the row/field).
ScenarioError
    a scenario file that cannot be loaded or scheduled (``where`` names the step/field).
FleetError
    a fleet that cannot start (bad registry subset, broker unreachable, fd limit).
MqttError
    the simulator's MQTT client: a broken packet, a refused connection, a closed link.
"""

from __future__ import annotations


class SimError(Exception):
    """Base of the simulator's exceptions."""


class RegistryError(SimError):
    def __init__(self, detail: str, where: str = "") -> None:
        self.detail = detail
        self.where = where
        super().__init__(f"{where}: {detail}" if where else detail)


class ScenarioError(SimError):
    def __init__(self, detail: str, where: str = "") -> None:
        self.detail = detail
        self.where = where
        super().__init__(f"{where}: {detail}" if where else detail)


class FleetError(SimError):
    """The fleet cannot run as asked."""


class MqttError(SimError):
    """The simulator's MQTT link failed (protocol error, refused, closed)."""


class LoginFailed(MqttError):
    """The broker took the TCP connection but did not complete the login: it closed the
    connection before CONNACK, refused the login in CONNACK, or did not answer in time (the
    fleet counts these apart from unreachable nodes)."""


class SubscriptionRefused(MqttError):
    """The broker refused a subscription (SUBACK 0x80): the session drops its link."""
