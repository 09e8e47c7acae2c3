"""Every ack the hub sends to a gateway is built here (pure): ``stored`` and ``rejected``
items for what the ingest received, the alarm's ``acknowledged`` / ``dispatched`` … for
the home's "help is on the way", and the topic and message they travel in.

The ingest publishes the first kind itself (``hub/ingest/service.py``); the alarm
engine's ``home`` channel publishes the second (``hub/notify/home.py`` over
``hub/notify/mqtt_acks.py``). Both go on ``safehome/v1/gw/{gateway}/ack``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from protocols import Ack, AckItem, AckStatus, Channel, Event, Telemetry, Topic

#: Items per Ack message at most (a larger batch is split).
MAX_ACK_ITEMS = 1000


def ack_topic(gateway_id: str) -> str:
    return str(Topic.of(gateway_id, Channel.ACK))


def acks(by_gateway: Mapping[str, list[AckItem]], now_ms: int) -> list[tuple[str, Ack]]:
    """One Ack message per gateway (split past :data:`MAX_ACK_ITEMS`), as (topic, Ack)."""
    out: list[tuple[str, Ack]] = []
    for gw, items in by_gateway.items():
        for start in range(0, len(items), MAX_ACK_ITEMS):
            chunk = items[start : start + MAX_ACK_ITEMS]
            out.append((ack_topic(gw), Ack(gw=gw, ts=now_ms, items=chunk)))
    return out


def stored_items(messages: Sequence[Event | Telemetry]) -> dict[str, list[AckItem]]:
    """``stored`` ack items for messages that are now durable (new or duplicate alike)."""
    out: dict[str, list[AckItem]] = {}
    seen: set[str] = set()
    for m in messages:
        if m.id in seen:
            continue
        seen.add(m.id)
        out.setdefault(m.gw, []).append(AckItem(id=m.id, status=AckStatus.STORED))
    return out


def rejected_item(msg_id: str, reason: str, field: str, detail: str) -> AckItem:
    """The ``rejected`` item of a message that failed validation (bounded field and detail)."""
    return AckItem(id=msg_id, status=AckStatus.REJECTED, reason=reason, field=field[:120] or None, detail=detail[:500])


def alarm_status_ack(gateway_id: str, alarm_id: str, payload: Mapping[str, Any], now_ms: int) -> Ack | None:
    """Tell the home where its alarm stands (``status``: acknowledged, dispatched …, ``by``:
    who), acknowledging the event that raised it; None when there is no event id."""
    event_id = payload.get("event_id")
    if not event_id:
        return None
    item = AckItem(
        id=str(event_id),
        status=AckStatus(str(payload["status"])),
        alarm_id=alarm_id,
        by=str(payload.get("by") or "")[:120] or None,
    )
    return Ack(gw=gateway_id, ts=now_ms, items=[item])
