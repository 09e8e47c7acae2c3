"""The one exception of the wire contract.

ProtocolError
    raised for anything that is not a valid safehome message or topic: too large, not
    JSON, wrong major version, a missing or wrong field, a bad id. ``field`` names the
    offending field (dotted path, ``""`` for the payload as a whole) and ``reason`` is a
    short, stable machine-readable code that consumers count rejects by.
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """A payload or topic that does not follow the safehome wire contract."""

    def __init__(self, reason: str, detail: str, field: str = "") -> None:
        self.reason = reason
        self.detail = detail
        self.field = field
        where = f" at {field!r}" if field else ""
        super().__init__(f"{reason}{where}: {detail}")
