"""A life-safety alarm as an OASIS CAP 1.2 alert (Common Alerting Protocol, Version 1.2,
OASIS Standard, 1 July 2010), built from one alarm event (see ``event_payload`` in
:mod:`hub.alarms.engine.actions`): a pure function, no database.

The alarm's first line (``alarm.raised``, seq 1) is a CAP ``Alert`` whose ``sent`` is the
alarm's ``raised_at``, so every later message can reference it; each later line is an
``Update`` referencing that first alert, and resolving with a false-alarm outcome (cooking
smoke, a false press, a device fault, the resident fine) a ``Cancel``. Identifiers are
``urn:safehome:alarm:<alarm id>`` (the alert) and ``…:<seq>`` (its updates): stable, so a
receiver deduplicates CAP messages as it does JSON events.

The messages carry a home's address and a resident's emergency: ``scope`` is
``Restricted`` (to the responders of the alarm's region), never ``Public``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree as ET

from hub.alarms.classes import is_life_safety
from hub.alarms.lifecycle import FALSE_OUTCOMES

NS = "urn:oasis:names:tc:emergency:cap:1.2"
MEDIA_TYPE = "application/cap+xml"
DEFAULT_SENDER = "safehome.hub"

#: alarm kind → (CAP category, event text, severity)
_KIND: dict[str, tuple[str, str, str]] = {
    "smoke": ("Fire", "Smoke alarm in a home", "Extreme"),
    "heat": ("Fire", "Heat alarm in a home", "Extreme"),
    "gas": ("Safety", "Gas leak in a home", "Extreme"),
    "co": ("Safety", "Carbon monoxide in a home", "Extreme"),
    "panic": ("Health", "Resident pressed the emergency button", "Severe"),
}
_FALSE = frozenset(o.value for o in FALSE_OUTCOMES)


class NotLifeSafety(ValueError):
    """Only life-safety alarms are published as CAP alerts."""


def cap_time(t: dt.datetime | str) -> str:
    """CAP's dateTime: seconds, an explicit offset, never "Z" (CAP 1.2 §3.3.2)."""
    if isinstance(t, str):
        t = dt.datetime.fromisoformat(t)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.replace(microsecond=0).isoformat()


def alert_identifier(alarm_id: str, seq: int | None = None) -> str:
    return f"urn:safehome:alarm:{alarm_id}" + ("" if seq is None or seq <= 1 else f":{seq}")


def msg_type(event: Mapping[str, Any]) -> str:
    """``Alert`` for the raise, ``Cancel`` for a false alarm resolved, else ``Update``."""
    if (event.get("seq") or 1) <= 1:
        return "Alert"
    if event.get("state") in ("resolved", "reviewed") and event.get("outcome") in _FALSE:
        return "Cancel"
    return "Update"


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def webhook_body(payload: Mapping[str, Any]) -> tuple[bytes, str] | None:
    """The body of a ``cap`` webhook (hub/notify/webhook.py): a life-safety alarm event as
    a CAP alert; None for every other payload (it goes as JSON)."""
    if str(payload.get("event", "")).startswith("alarm.") and is_life_safety(str(payload.get("kind", ""))):
        return to_cap(payload), MEDIA_TYPE
    return None


def to_cap(event: Mapping[str, Any], sender: str = DEFAULT_SENDER) -> bytes:
    """The CAP 1.2 XML of one alarm event (an ``alarm.*`` payload with ``seq``)."""
    kind = str(event["kind"])
    if not is_life_safety(kind):
        raise NotLifeSafety(f"alarm kind {kind!r} is not life safety: no CAP alert")
    category, what, severity = _KIND.get(kind, ("Safety", f"{kind} alarm in a home", "Severe"))
    alarm_id = str(event["alarm_id"])
    seq = int(event.get("seq") or 1)
    mtype = msg_type(event)
    raised = cap_time(event["raised_at"])
    sent = raised if mtype == "Alert" else cap_time(event.get("at") or event["raised_at"])
    region = next(
        (f"{k}:{event[f'{k}_id']}" for k in ("workstation", "subdistrict", "district") if event.get(f"{k}_id")),
        "unrouted",
    )
    ET.register_namespace("", NS)
    alert = ET.Element(f"{{{NS}}}alert")
    _sub(alert, "identifier", alert_identifier(alarm_id, seq))
    _sub(alert, "sender", sender)
    _sub(alert, "sent", sent)
    _sub(alert, "status", "Actual")
    _sub(alert, "msgType", mtype)
    _sub(alert, "source", "safehome")
    _sub(alert, "scope", "Restricted")
    _sub(alert, "restriction", f"responders of {region} only: contains a home's address")
    if mtype == "Cancel":  # CAP's order: note before references
        _sub(alert, "note", f"false alarm: {event.get('outcome')}")
    if mtype != "Alert":
        _sub(alert, "references", f"{sender},{alert_identifier(alarm_id)},{raised}")
    _sub(alert, "incidents", alert_identifier(alarm_id))
    info = _sub(alert, "info")
    _sub(info, "language", "en")
    _sub(info, "category", category)
    _sub(info, "event", what)
    _sub(info, "responseType", "None" if mtype == "Cancel" else "Prepare")
    resolved = event.get("state") in ("resolved", "reviewed")
    _sub(info, "urgency", "Past" if resolved else "Immediate")
    _sub(info, "severity", severity)
    _sub(info, "certainty", "Unlikely" if mtype == "Cancel" else "Observed")
    _sub(info, "eventCode")
    code = info[-1]
    _sub(code, "valueName", "safehome:kind")
    _sub(code, "value", kind)
    _sub(info, "senderName", "safehome hub")
    state = str(event.get("state", ""))
    _sub(info, "headline", f"{what}: {state}"[:160])
    _sub(
        info,
        "description",
        f"{what} at {event.get('location') or 'an unknown place'}; alarm {alarm_id} is {state}"
        + (f", outcome {event['outcome']}" if event.get("outcome") else "")
        + ".",
    )
    for name in ("alarm_id", "seq", "state", "gateway_id", "sensor_id", "home_id"):
        if event.get(name) is not None:
            p = _sub(info, "parameter")
            _sub(p, "valueName", f"safehome:{name}")
            _sub(p, "value", str(event[name]))
    area = _sub(info, "area")
    _sub(area, "areaDesc", str(event.get("address") or event.get("home_id") or region))
    return bytes(ET.tostring(alert, encoding="utf-8", xml_declaration=True))
