"""Exceptions of broker management (config, credentials, reload, $SYS monitor).

BrokerError
    raised when the Mosquitto config cannot be written, the broker cannot be started or
    told to reload, or a ``$SYS`` counter cannot be read.
CredentialError(BrokerError)
    a gateway's MQTT credentials cannot be created, rotated or revoked as asked: the id
    is reserved or not a valid gateway id, the account exists already or does not exist.
"""

from __future__ import annotations


class BrokerError(Exception):
    """Managing the central Mosquitto failed."""


class CredentialError(BrokerError):
    """A gateway's MQTT credentials could not be changed as asked."""
