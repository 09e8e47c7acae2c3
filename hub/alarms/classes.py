"""Alarm classes and priorities: what kind of trouble a signal is and how urgent.

The class of every wire event kind comes from :func:`protocols.class_of`; conditions the
hub detects itself (a silent gateway, broker drops) are added here. An unknown kind is
treated as *supervisory*: something we do not understand is never dropped.
"""

from __future__ import annotations

from protocols import AlarmClass, EventKind, class_of

#: Conditions detected by the hub itself (ingest's supervision), not sent by gateways.
HUB_KINDS: dict[str, AlarmClass] = {
    "gateway_silent": AlarmClass.SUPERVISORY,
    "gateway_offline": AlarmClass.SUPERVISORY,
    "sensor_silent": AlarmClass.SUPERVISORY,
    "gateway_flooding": AlarmClass.SUPERVISORY,
    "broker_dropped": AlarmClass.TROUBLE,
    "broker_dropping": AlarmClass.TROUBLE,
    "clock_suspect": AlarmClass.TROUBLE,
}

#: Lower number = more urgent (the fire-alarm panel convention).
PRIORITY: dict[AlarmClass, int] = {
    AlarmClass.ALARM: 1,
    AlarmClass.SUPERVISORY: 2,
    AlarmClass.TROUBLE: 3,
    AlarmClass.TEST: 4,
}

LIFE_SAFETY = AlarmClass.ALARM


def classify(kind: str) -> AlarmClass:
    """The class of an event kind or hub condition; unknown kinds are supervisory."""
    try:
        return class_of(EventKind(kind))
    except ValueError:
        return HUB_KINDS.get(kind, AlarmClass.SUPERVISORY)


def priority_of(kind: str) -> int:
    return PRIORITY[classify(kind)]


def is_life_safety(kind: str) -> bool:
    return classify(kind) is LIFE_SAFETY
