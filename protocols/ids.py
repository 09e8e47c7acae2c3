"""Identifier rules: the id alphabet that keeps every id inside its own topics, and UUIDv7 ids."""

from __future__ import annotations

import os
import re
import time
import uuid

from protocols.errors import ProtocolError

#: Gateway, sensor and command ids: 1..64 characters of lowercase ASCII letters, digits,
#: ``-`` and ``_``, starting with a letter or digit. No ``/``, ``+``, ``#``, NUL,
#: whitespace or non-ASCII, so an id can never escape its topic level.
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
ID_MAX_LEN = 64
_ID_RE = re.compile(ID_PATTERN)


def is_valid_id(value: object) -> bool:
    """True when ``value`` is a string in the documented id alphabet."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def validate_id(value: object, field: str = "id") -> str:
    """Return ``value`` if it is a valid id, else raise :class:`ProtocolError`."""
    if not isinstance(value, str):
        raise ProtocolError("bad_id", f"expected a string, got {type(value).__name__}", field)
    if not value:
        raise ProtocolError("bad_id", "empty id", field)
    if len(value) > ID_MAX_LEN:
        raise ProtocolError("bad_id", f"{len(value)} characters, limit {ID_MAX_LEN}", field)
    if _ID_RE.fullmatch(value) is None:
        raise ProtocolError(
            "bad_id", f"{value[:80]!r} is outside the alphabet [a-z0-9_-] (first char [a-z0-9])", field
        )
    return value


def new_event_id(now_ms: int | None = None) -> str:
    """A new UUIDv7 (RFC 9562) as a lowercase string: time-ordered, globally unique.

    48 bits of Unix milliseconds, then 74 random bits. Made on the gateway; the hub
    deduplicates on it.
    """
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return str(uuid.UUID(int=value))
