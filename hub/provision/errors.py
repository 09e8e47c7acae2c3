"""Errors of the provisioning steps. Every message names the home, gateway or sensor.

ProvisionError
 ├── UnknownHome        the home is not in the registry
 ├── GatewayMismatch    the gateway belongs to another home, or the home has several
 └── NotReady           a step out of order (sign-off without a passed walk test, …)
"""

from __future__ import annotations


class ProvisionError(Exception):
    """A provisioning step refused; the message says what and where."""


class UnknownHome(ProvisionError):
    pass


class GatewayMismatch(ProvisionError):
    pass


class NotReady(ProvisionError):
    pass
