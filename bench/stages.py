"""Where an alarm's time goes: publish → ingest → alarm raised → webhook sent → received.

Read back from the hub's database after a latency run, for the alarms the benchmark fired
(``sent``: gateway → (wall-clock publish time, event id)). Wall clocks of the benchmark
and the hub are the same machine's, so the stages add up to the end-to-end figure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.system import percentile
from hub.alarms.store.models import Alarm
from hub.db.engine import make_engine
from hub.db.events import StoredEvent
from hub.notify.models import DeliveryAttempt, Notification


def _ms(a: dt.datetime | float, b: dt.datetime | float) -> float:
    ta = a.timestamp() if isinstance(a, dt.datetime) else a
    tb = b.timestamp() if isinstance(b, dt.datetime) else b
    return (tb - ta) * 1000


def stage_rows(
    db_url: str, sent: Mapping[str, tuple[float, str]], hooks: Mapping[str, float]
) -> list[tuple[str, str]]:
    """Rows ``(stage, "p50 / p99 / max ms")`` for the table of a latency benchmark."""
    ids = {eid: (gw, t) for gw, (t, eid) in sent.items()}
    engine = make_engine(db_url)
    stages: dict[str, list[float]] = {
        "publish → hub batch (broker, receive queue)": [],
        "hub batch → webhook queued (store, ack, alarm engine)": [],
        "webhook queued → attempt started (outbox)": [],
        "webhook attempt started → receiver saw it (HTTP POST)": [],
    }
    try:
        with Session(engine) as s:
            received = dict(
                s.execute(
                    select(StoredEvent.id, StoredEvent.received_at).where(StoredEvent.id.in_(ids))
                ).all()
            )
            alarms = s.execute(select(Alarm.id, Alarm.event_id).where(Alarm.event_id.in_(ids))).all()
            first: dict[str, tuple[dt.datetime, dt.datetime]] = {}
            rows = s.execute(
                select(Notification.alarm_id, Notification.created_at, DeliveryAttempt.started_at)
                .join(DeliveryAttempt, DeliveryAttempt.notification_id == Notification.id)
                .where(Notification.alarm_id.in_([a.id for a in alarms]), Notification.channel == "webhook")
            ).all()
            for alarm_id, queued, started in rows:
                if alarm_id is not None and (alarm_id not in first or started < first[alarm_id][1]):
                    first[alarm_id] = (queued, started)
    finally:
        engine.dispose()
    names = list(stages)
    for eid, rec in received.items():
        stages[names[0]].append(_ms(ids[eid][1], rec))
    for a in alarms:
        gw, _t = ids[a.event_id]
        if a.id not in first:
            continue
        queued, started = first[a.id]
        if a.event_id in received:
            stages[names[1]].append(_ms(received[a.event_id], queued))
        stages[names[2]].append(_ms(queued, started))
        if gw in hooks:
            stages[names[3]].append(_ms(started, hooks[gw]))
    out = []
    for name, v in stages.items():
        if v:
            out.append(
                (
                    f"stage: {name} p50 / p99 / max",
                    f"{percentile(v, 50):.0f} / {percentile(v, 99):.0f} / {max(v):.0f} ms",
                )
            )
    return out
