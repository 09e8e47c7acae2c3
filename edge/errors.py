"""Exceptions of the edge agent.

EdgeError
    base class of everything raised by ``edge/``.
ConfigError(EdgeError)
    the settings file / environment is invalid or unreadable (names the file and field).
StoreError(EdgeError)
    the durable buffer (SQLite, the seq file) failed: cannot open, write or read. The
    message carries the cause SQLite or the OS gave. A failing store does not stop the
    agent (a restart would lose what is only in RAM): it raises ``buffer_failed``.
DownlinkError(EdgeError)
    a downlink message was refused: wrong topic, another gateway's message, undecodable
    (wraps :class:`protocols.ProtocolError`, whose ``reason`` is counted).
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of edge-agent errors."""


class ConfigError(EdgeError):
    """Invalid or unreadable settings."""


class StoreError(EdgeError):
    """The durable buffer failed."""


class DownlinkError(EdgeError):
    """A downlink message was refused; ``reason`` is a short code for counting."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")
