"""Every line of an alarm's history reaches the webhooks that heard of the alarm, with a
gap-free per-alarm ``seq`` (issue 14, "Events out")."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.alarms.engine.actions import apply_action
from hub.alarms.engine.decide import event_signal
from hub.alarms.event_schema import AlarmEvent
from hub.alarms.lifecycle import Action, Outcome
from hub.alarms.store.models import Alarm, WebhookSubscription
from hub.db.tx import in_transaction
from hub.notify.models import Notification
from hub.sealing import dev_box
from protocols import EventState
from safehome.testing.events import make_event
from safehome.testing.poll import until
from tests.hub.conftest import WEBHOOK_SECRET, Hub, alarm_settings, district_webhook
from tests.support.cap import valid

HOOK = "http://127.0.0.1:9/hook"


def hook_events(hub: Hub, alarm_id: str) -> list[tuple[int, str, str]]:
    with hub.sessions() as s:
        rows = s.scalars(
            select(Notification).where(Notification.alarm_id == alarm_id, Notification.channel == "webhook")
        ).all()
    for n in rows:  # the documented shape (docs/api.md's examples are checked against it too)
        AlarmEvent.model_validate(n.payload)
    return sorted((n.payload["seq"], n.payload["event"], n.payload["state"]) for n in rows)


def step(hub: Hub, alarm_id: str, action: Action, **kw: object) -> None:
    """As the API does it: retried from a fresh read when another writer (the outbox
    marking the alarm notified) won a race."""

    def work(s: Session) -> None:
        alarm = s.get(Alarm, alarm_id)
        assert alarm is not None
        apply_action(s, alarm, action, "op-1", hub.clock.now(), by="ws", **kw)  # type: ignore[arg-type]

    in_transaction(hub.sessions, work)


def test_every_transition_goes_to_the_alarms_webhooks_in_seq_order(hub: Hub) -> None:
    with hub.sessions() as s, s.begin():
        s.add(WebhookSubscription(url=HOOK, secret_sealed=dev_box().seal("k"), region_kind="district", region_id="pudong"))
    a = hub.alarms.handle(*event_signal(make_event(), hub.clock.now())).alarm_id or ""
    step(hub, a, Action.ACKNOWLEDGE)
    step(hub, a, Action.DISPATCH, responder="volunteer Li")
    step(hub, a, Action.ARRIVE)
    hub.alarms.handle(*event_signal(make_event(state=EventState.RESTORE), hub.clock.now()))
    step(hub, a, Action.RESOLVE, outcome=Outcome.REAL_FIRE)
    step(hub, a, Action.REVIEW)
    assert hook_events(hub, a) == [
        (1, "alarm.raised", "raised"),
        (2, "alarm.acknowledged", "acknowledged"),
        (3, "alarm.dispatched", "dispatched"),
        (4, "alarm.on_site", "on_site"),
        (5, "alarm.restored", "on_site"),
        (6, "alarm.resolved", "resolved"),
        (7, "alarm.reviewed", "reviewed"),
    ]
    with hub.sessions() as s:
        alarm = s.get(Alarm, a)
        assert alarm is not None
        assert [h.seq for h in alarm.history] == list(range(1, 8)) and alarm.event_seq == 7
        resolved = s.scalars(
            select(Notification).where(Notification.alarm_id == a, Notification.channel == "webhook")
        ).all()
    done = next(n.payload for n in resolved if n.payload["event"] == "alarm.resolved")
    assert done["outcome"] == "real_fire" and done["actor"] == "op-1" and done["alarm_id"] == a


def test_an_alarm_no_webhook_heard_of_sends_none(hub: Hub) -> None:
    a = hub.alarms.handle(*event_signal(make_event(), hub.clock.now())).alarm_id or ""
    step(hub, a, Action.ACKNOWLEDGE)
    assert hook_events(hub, a) == []


async def test_a_cap_subscription_gets_the_case_as_cap_alert_then_updates(hub: Hub) -> None:
    """A webhook of format ``cap``: the smoke alarm arrives as a CAP 1.2 Alert, its later
    lines as Updates referencing it (valid against the OASIS schema), signed like JSON."""
    from lxml import etree

    from hub.alarms.cap import NS
    from hub.alarms.service import AlarmService
    from hub.notify.signing import verify
    from hub.sinks import NewEvent

    with district_webhook(hub, format="cap") as receiver:
        svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock)
        await svc.start()
        try:
            await svc.sink.events_stored([NewEvent(make_event(), hub.clock.now())])
            await until(lambda: receiver.requests, within=15, what="the webhook")
            with hub.sessions() as s:
                a = s.scalars(select(Alarm.id)).one()
            step(hub, a, Action.ACKNOWLEDGE)
            svc.dispatcher.wake()
            await until(
                lambda: "alarm.acknowledged" in {r.headers["x-safehome-event"] for r in receiver.requests},
                within=15,
                what="alarm.acknowledged delivered",
            )
        finally:
            await svc.stop()
    by_event = {r.headers["x-safehome-event"]: r for r in receiver.requests}
    # (alarm.notified too when the first delivery was recorded before the acknowledgement)
    assert {"alarm.raised", "alarm.acknowledged"} <= set(by_event) <= {"alarm.raised", "alarm.notified", "alarm.acknowledged"}
    ns = {"c": NS}
    for r in by_event.values():
        assert r.headers["content-type"] == "application/cap+xml"
        verify(WEBHOOK_SECRET, r.headers["x-safehome-signature"], r.headers["x-safehome-timestamp"], r.body, time.time())
    alert = valid(by_event["alarm.raised"].body)
    update = valid(by_event["alarm.acknowledged"].body)
    assert alert.findtext("c:msgType", namespaces=ns) == "Alert"
    assert update.findtext("c:msgType", namespaces=ns) == "Update"
    assert update.findtext("c:references", namespaces=ns).split(",")[1] == alert.findtext("c:identifier", namespaces=ns)
    assert etree.QName(alert).namespace == NS
