"""``/api/v1/kpis``: the caller's region's performance, computed from the alarm record."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from hub.alarms.kpi import AlarmFacts, false_alarm_rates, kpis
from hub.alarms.lifecycle import Outcome
from hub.alarms.store.models import Alarm
from hub.api.auth import Context, SessionDep, alarm_scope, require
from hub.api.problems import invalid_field
from hub.api.scopes import ALARMS_READ
from hub.api.tokens import Principal
from hub.db.engine import read_only
from protocols import AlarmClass

router = APIRouter(tags=["kpis"])


def facts_of(a: Alarm) -> AlarmFacts:
    return AlarmFacts(
        alarm_class=AlarmClass(a.alarm_class),
        raised_at=a.raised_at,
        home_id=a.home_id,
        workstation_id=a.workstation_id,
        device_model=a.device_model,
        acknowledged_at=a.acknowledged_at,
        dispatched_at=a.dispatched_at,
        on_site_at=a.on_site_at,
        outcome=Outcome(a.outcome) if a.outcome else None,
    )


@router.get("/kpis")
def get_kpis(
    p: Annotated[Principal, Depends(require(ALARMS_READ))],
    ctx: Context,
    s: SessionDep,
    since: dt.datetime,
    until: dt.datetime | None = None,
    workstation_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Time to acknowledge / dispatch / arrive, share acknowledged within 60 s (target 98.5 %),
    false-alarm rates per home, device model and workstation, for alarms raised in [since, until).
    ``workstation_id`` narrows to one workstation of the caller's region (the console's
    per-workstation comparison); it never widens the region."""
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and bound.tzinfo is None:
            raise invalid_field(("query", name), "needs a timezone (e.g. Z)")
    q = select(Alarm).where(alarm_scope(p), Alarm.raised_at >= since)
    if until is not None:
        q = q.where(Alarm.raised_at < until)
    if workstation_id is not None:
        q = q.where(Alarm.workstation_id == workstation_id)
    facts = [facts_of(a) for a in read_only(s).scalars(q)]
    k = kpis(facts, ctx.clock.now())
    rates = {
        by: {
            key: {"resolved": r.resolved, "false": r.false, "rate": r.rate}
            for key, r in false_alarm_rates(facts, by).items()
        }
        for by in ("home_id", "device_model", "workstation_id")
    }
    return {
        "region": p.region,
        "since": since,
        "until": until,
        **dataclasses.asdict(k),
        "false_alarm_rates": rates,
    }
