"""Exceptions of the API package.

ApiError
    base of everything raised by ``hub.api`` outside a request (token management).
BadRegion
    a token's region does not exist in the registry, or its kind/role is unknown.
CommandNotSent
    the broker did not take a gateway command (not connected, publish failed or timed out).
"""

from __future__ import annotations


class ApiError(Exception):
    """Base of the API package's exceptions."""


class BadRegion(ApiError, ValueError):
    pass


class CommandNotSent(ApiError):
    pass
