"""Webhook signatures: HMAC-SHA256 over ``"{timestamp}." + body`` with the subscriber's secret.

Headers sent with every delivery: ``X-Safehome-Timestamp`` (Unix seconds),
``X-Safehome-Signature`` (``v1=<hex>``), ``X-Safehome-Delivery`` (notification id; the same
on every retry so receivers can deduplicate) and ``X-Safehome-Event``. Receivers reject
timestamps more than ``tolerance_s`` away from their clock, which stops replays.
"""

from __future__ import annotations

import hashlib
import hmac

from hub.notify.errors import SignatureError

TIMESTAMP_HEADER = "X-Safehome-Timestamp"
SIGNATURE_HEADER = "X-Safehome-Signature"
DELIVERY_HEADER = "X-Safehome-Delivery"
EVENT_HEADER = "X-Safehome-Event"
SCHEME = "v1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def verify(
    secret: str, signature: str, timestamp: str, body: bytes, now: float, tolerance_s: float = 300
) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is valid and ``timestamp`` is fresh."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError) as exc:
        raise SignatureError(f"bad {TIMESTAMP_HEADER} {timestamp!r}") from exc
    if abs(now - ts) > tolerance_s:
        raise SignatureError(f"timestamp {ts} is {now - ts:+.0f} s from now, tolerance {tolerance_s} s")
    if not hmac.compare_digest(sign(secret, ts, body), signature or ""):
        raise SignatureError("signature does not match the body")
