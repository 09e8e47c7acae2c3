"""Every line of an alarm's history reaches the webhooks that heard of the alarm, with a
gap-free per-alarm ``seq`` (issue 14, "Events out")."""

from __future__ import annotations

from sqlalchemy import select

from hub.alarms.event_schema import AlarmEvent
from hub.alarms.lifecycle import Action, Outcome
from hub.alarms.store.actions import apply_action
from hub.alarms.store.engine import event_signal
from hub.alarms.store.models import Alarm, WebhookSubscription
from hub.notify.models import Notification
from hub.sealing import dev_box
from protocols import EventState
from tests.hub.alarms.conftest import Hub
from tests.hub.alarms.test_store import smoke

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
    with hub.sessions() as s, s.begin():
        alarm = s.get(Alarm, alarm_id)
        assert alarm is not None
        apply_action(s, alarm, action, "op-1", hub.clock.now(), by="ws", **kw)  # type: ignore[arg-type]


def test_every_transition_goes_to_the_alarms_webhooks_in_seq_order(hub: Hub) -> None:
    with hub.sessions() as s, s.begin():
        s.add(WebhookSubscription(url=HOOK, secret_sealed=dev_box().seal("k"), region_kind="district", region_id="pudong"))
    a = hub.alarms.handle(*event_signal(smoke(), hub.clock.now())).alarm_id or ""
    step(hub, a, Action.ACKNOWLEDGE)
    step(hub, a, Action.DISPATCH, responder="volunteer Li")
    step(hub, a, Action.ARRIVE)
    hub.alarms.handle(*event_signal(smoke(state=EventState.RESTORE), hub.clock.now()))
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
    a = hub.alarms.handle(*event_signal(smoke(), hub.clock.now())).alarm_id or ""
    step(hub, a, Action.ACKNOWLEDGE)
    assert hook_events(hub, a) == []
