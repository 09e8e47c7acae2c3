"""Turn one received MQTT message into a validated protocol message or a counted reject.

Pure: no I/O, no clock (the receive time is passed in). Never raises for bad input.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from dataclasses import dataclass, field

import orjson
from pydantic import BaseModel

from protocols import (
    Channel,
    CommandResult,
    Event,
    ProtocolError,
    Status,
    Telemetry,
    Topic,
    decode_for,
    is_valid_id,
)
from protocols.messages import UUID_PATTERN

_UUID = re.compile(UUID_PATTERN)
Uplink = Event | Telemetry | Status | CommandResult


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: Topic
    msg: Uplink
    retained: bool
    received_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message refused with a reason. ``gateway_id``/``msg_id`` are set when the refused
    message is an event or telemetry whose id could be read, so that the gateway is told
    ``rejected`` and stops resending what will never be accepted."""

    reason: str
    detail: str
    topic: str
    gateway_id: str | None = None
    msg_id: str | None = None
    field: str = ""


def _salvage_id(t: Topic, payload: bytes) -> str | None:
    """The ``id`` of a refused event/telemetry, if the payload is a JSON object with a
    well-formed ``id``."""
    if t.channel not in (Channel.EVENT, Channel.TELEMETRY):
        return None
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    mid = data.get("id")
    return mid if isinstance(mid, str) and _UUID.fullmatch(mid) else None


def classify(topic: str, payload: bytes, retained: bool, received_at: dt.datetime) -> Incoming | Rejected:
    """Validate ``payload`` on ``topic`` (with :func:`protocols.decode_for`)."""
    try:
        t = Topic.parse(topic)
    except ProtocolError as exc:
        return Rejected(exc.reason, exc.detail, topic[:120])
    if not t.uplink:
        return Rejected("not_uplink", f"{t.channel.value} is a downlink channel", topic)
    if retained and t.channel is not Channel.STATUS:
        # Only a status is meant to be retained. Any other retained uplink message would be
        # replayed to every hub worker at each (re)subscribe; the broker refuses to store
        # one (hub/broker/plugin.py), this is for one stored before that.
        return Rejected("retained", f"retained {t.channel.value}: only status may be retained", topic)
    try:
        _, msg = decode_for(t, payload)
    except ProtocolError as exc:
        # The topic's gateway sent it (the broker's ACL sees to that), whatever the payload
        # claims: it is the one to tell. Oversize payloads are not parsed again.
        mid = _salvage_id(t, payload) if exc.reason != "too_large" else None
        return Rejected(exc.reason, str(exc), topic, t.gateway_id if mid else None, mid, exc.field)
    assert isinstance(msg, Event | Telemetry | Status | CommandResult)
    return Incoming(t, msg, retained, received_at)


def message_kind(model: BaseModel) -> str:
    return type(model).__name__.lower()


@dataclass
class RateLimitedLog:
    """Log a reject at most once per ``interval_s`` per reason, with the count suppressed."""

    logger: logging.Logger
    interval_s: float = 10.0
    _last: dict[str, float] = field(default_factory=dict)
    _suppressed: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reject(self, r: Rejected, now: float | None = None) -> bool:
        """Log ``r`` if its reason was not logged within the interval. True if logged."""
        t = time.monotonic() if now is None else now
        with self._lock:  # both lanes' processors report rejects (one from a thread)
            last = self._last.get(r.reason)
            if last is not None and t - last < self.interval_s:
                self._suppressed[r.reason] = self._suppressed.get(r.reason, 0) + 1
                return False
            self._last[r.reason] = t
            more = self._suppressed.pop(r.reason, 0)
        suffix = f" (+{more} more with this reason since last logged)" if more else ""
        gw = r.gateway_id or _gateway_of(r.topic)
        self.logger.warning("rejected message on %s (gateway %s): %s%s", r.topic, gw, r.detail, suffix)
        return True


def _gateway_of(topic: str) -> str:
    parts = topic.split("/")
    return parts[3] if len(parts) > 3 and is_valid_id(parts[3]) else "?"
