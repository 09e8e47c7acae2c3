"""Storms on a real database (SQLite and PostgreSQL): a power cut of one subdistrict becomes
one mass-event incident with its members (each stored and restored on its own), a smoke
alarm in the middle of it is routed as always, the count is pushed, the incident closes
when quiet and the few members still dark are routed one by one; the API lists it scoped."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.alarms.engine.decide import AlarmEngine, Processed, condition_signal, event_signal
from hub.alarms.engine.storms import MEMBER_FLAG, UNFOLDED_FLAG, StormDesk
from hub.alarms.rules import Signal
from hub.alarms.store.incidents import Incident
from hub.alarms.store.models import Alarm, AlarmTimer, WebhookSubscription
from hub.alarms.storm import StormPolicy
from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.tokens import create_token
from hub.db.tx import in_transaction
from hub.notify.models import Notification
from hub.registry.models import Gateway, Home
from hub.sealing import dev_box
from protocols import Event, EventKind, EventState, new_event_id
from tests.hub.conftest import Hub, alarm_settings
from tests.support.http import serve_app

POLICY = StormPolicy(threshold=5, window_s=60, quiet_s=300, unfold_max=3, update_every_s=10)
HOOK = "http://127.0.0.1:9/district-hook"


@pytest.fixture
def storm(hub: Hub) -> Hub:
    """20 more homes in ws-0001 (subdistrict sd-01), a district webhook, the storm desk on."""
    with hub.sessions() as s, s.begin():
        for n in range(20):
            s.add(Home(id=f"home-s{n}", workstation_id="ws-0001", address=f"storm {n}"))
        s.flush()
        for n in range(20):
            s.add(Gateway(id=f"gw-s{n}", home_id=f"home-s{n}"))
        s.add(WebhookSubscription(url=HOOK, secret_sealed=dev_box().seal("s3cret-s3cret"), region_kind="district",
                                  region_id="pudong"))  # fmt: skip
    hub.alarms = AlarmEngine(hub.sessions, hub.clock, storms=StormDesk(POLICY))
    return hub


def offline(hub: Hub, gw: str, restored: bool = False) -> tuple[Signal, str]:
    """The signal of gateway ``gw-sN``'s gateway_offline condition (id 1000 + N)."""
    n = int(gw.removeprefix("gw-s"))
    return condition_signal(1000 + n, gw, None, "gateway_offline", restored, hub.clock.now())


def cut_power(hub: Hub, gateways: list[str]) -> list[str | None]:
    results = hub.alarms.handle_batch([offline(hub, gw) for gw in gateways])
    assert all(r is not None for r in results)
    return [r.alarm_id if r else None for r in results]


def incident_rows(hub: Hub) -> list[Incident]:
    with hub.sessions() as s:
        return list(s.scalars(select(Incident)))


def incident_notes(hub: Hub) -> list[tuple[str, str, str]]:
    with hub.sessions() as s:
        return sorted(
            (n.channel, n.address, n.payload["event"])
            for n in s.scalars(select(Notification).where(Notification.alarm_id.is_(None)))
        )


def settle(hub: Hub) -> list[tuple[str, int]]:
    desk = hub.alarms.storms
    assert desk is not None
    with hub.sessions() as s:
        ids = desk.open_incidents(s)

    def one(incident_id: str, s: Session) -> tuple[str, int]:
        return desk.settle_one(s, incident_id, hub.clock.now(), hub.alarms.route_unfolded)

    return [in_transaction(hub.sessions, functools.partial(one, i)) for i in ids]


def test_a_power_cut_is_one_incident_and_smoke_is_still_routed(storm: Hub) -> None:
    gws = [f"gw-s{n}" for n in range(20)]
    ids = cut_power(storm, gws)
    smoke = Event(gw="gw-1", seq=1, id=new_event_id(), ts=1, synced=True, sensor="smoke-1",
                  kind=EventKind.SMOKE, state=EventState.ALARM)  # fmt: skip
    r = storm.alarms.handle(*event_signal(smoke, storm.clock.now()))
    assert r.decision == "open"

    [inc] = incident_rows(storm)
    assert (inc.area, inc.state, inc.members, inc.subdistrict_id, inc.district_id) == (
        "subdistrict:sd-01", "open", 20, "sd-01", "pudong"
    )  # fmt: skip
    with storm.sessions() as s:
        members = {a.id: a for a in s.scalars(select(Alarm).where(Alarm.kind == "gateway_offline"))}
        assert set(members) == set(ids)
        assert {a.incident_id for a in members.values()} == {inc.id}
        # the first four were routed before the threshold; the rest only through the incident
        routed = {aid for (aid,) in s.execute(select(Notification.alarm_id).where(Notification.alarm_id.in_(ids)))}
        assert routed == set(ids[:4])
        assert all(MEMBER_FLAG in a.flags for aid, a in members.items() if aid not in routed)
        # their escalation stops: the incident is what a person handles
        pending = s.scalar(select(func.count()).select_from(AlarmTimer).where(
            AlarmTimer.alarm_id.in_(ids), AlarmTimer.status == "pending"))  # fmt: skip
        assert pending == 0
        fire = s.get(Alarm, r.alarm_id)
        assert fire is not None and fire.incident_id is None
        assert s.scalar(select(func.count()).select_from(Notification).where(Notification.alarm_id == fire.id))
    assert incident_notes(storm) == [("console", "subdistrict:sd-01", "incident.opened"),
                                     ("webhook", HOOK, "incident.opened")]  # fmt: skip


def test_a_storms_first_alarms_are_held_and_folded_when_its_incident_opens(storm: Hub) -> None:
    """Below the threshold an alarm is stored and routed with its notifications held hold_s
    (5 s): the area's incident opening meanwhile folds them (never sent, and a later restore
    announces nothing to a webhook that never heard); a lone storm alarm's go out after the
    hold; a smoke alarm's at once."""
    lone = storm.alarms.handle(*condition_signal(3003, "gw-3", None, "gateway_offline", False, storm.clock.now()))
    ids = cut_power(storm, [f"gw-s{n}" for n in range(6)])
    fire = raise_smoke(storm)
    [inc] = incident_rows(storm)

    def rows(alarm_id: str | None) -> list[Notification]:
        with storm.sessions() as s:
            return list(s.scalars(select(Notification).where(Notification.alarm_id == alarm_id)))

    for aid in ids[:4]:  # routed on their own before the threshold (5)
        assert {(n.status, n.attempts, n.last_error) for n in rows(aid)} == {
            ("folded", 0, f"member of mass event {inc.id}")
        }
    assert all(rows(aid) == [] for aid in ids[4:])
    [held] = [n for n in rows(lone.alarm_id) if n.channel == "webhook"]
    assert held.status == "pending" and (held.next_attempt_at - held.created_at).total_seconds() == 5
    assert all(n.next_attempt_at == n.created_at for n in rows(fire))
    before = len(rows(ids[0]))
    storm.clock.advance(5)
    [back] = storm.alarms.handle_batch([offline(storm, "gw-s0", restored=True)])
    assert back is not None and back.decision == "restore"
    assert len(rows(ids[0])) == before


def raise_smoke(hub: Hub) -> str:
    smoke = Event(gw="gw-1", seq=1, id=new_event_id(), ts=1, synced=True, sensor="smoke-1",
                  kind=EventKind.SMOKE, state=EventState.ALARM)  # fmt: skip
    r = hub.alarms.handle(*event_signal(smoke, hub.clock.now()))
    assert r.decision == "open" and r.alarm_id is not None
    return r.alarm_id


def test_members_restore_alone_then_the_quiet_incident_closes_and_unfolds_the_few_left(storm: Hub) -> None:
    gws = [f"gw-s{n}" for n in range(12)]
    ids = cut_power(storm, gws)
    storm.clock.advance(11)
    assert settle(storm) == [("pushed", 2)]  # told 5 at open, 12 now: console + webhook
    # power back for all but two: each member is restored (and auto-resolved) on its own
    storm.clock.advance(5)
    back = storm.alarms.handle_batch([offline(storm, gw, restored=True) for gw in gws[2:]])
    assert {r.decision for r in back if r} == {"restore"}
    with storm.sessions() as s:
        states = {aid: st for aid, st in s.execute(select(Alarm.id, Alarm.state).where(Alarm.id.in_(ids)))}
    assert sum(1 for st in states.values() if st == "resolved") == 10
    storm.clock.advance(POLICY.quiet_s)
    assert settle(storm) == [("closed", 2 + 2 * 2)]  # incident.closed x2, two members routed alone
    [inc] = incident_rows(storm)
    assert (inc.state, inc.open_key) == ("closed", None)
    with storm.sessions() as s:
        dark = s.scalars(select(Alarm).where(Alarm.id.in_(ids[:2]))).all()
        assert all(UNFOLDED_FLAG in a.flags for a in dark)
        routed = s.scalar(select(func.count()).select_from(Notification).where(Notification.alarm_id.in_(ids[:2])))
        assert routed and routed >= 2
    assert ("console", "subdistrict:sd-01", "incident.closed") in incident_notes(storm)
    # the next storm of the area opens a new incident
    ids2 = cut_power(storm, [f"gw-s{n}" for n in range(12, 20)])
    assert len(ids2) == 8 and len(incident_rows(storm)) == 2


def test_a_second_worker_joins_the_same_incident(storm: Hub) -> None:
    """Two engines (two hub workers) on one database: still one incident for the area."""
    other = AlarmEngine(storm.sessions, storm.clock, storms=StormDesk(POLICY))
    for n in range(20):
        engine = storm.alarms if n % 2 else other
        engine.handle(*offline(storm, f"gw-s{n}"))
    [inc] = incident_rows(storm)
    assert inc.members == 20


@pytest.fixture
def client(storm: Hub) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    tokens = {}
    with storm.sessions() as s, s.begin():
        for who, region in [("ws1", "workstation:ws-0001"), ("ws3", "workstation:ws-0003"),
                            ("sd1", "subdistrict:sd-01"), ("sd2", "subdistrict:sd-02"),
                            ("district", "district:pudong")]:  # fmt: skip
            tokens[who], _ = create_token(s, "supervisor" if "sd" in who or who == "district" else "operator",
                                          region, who, storm.clock.now())  # fmt: skip
    with serve_app(make_api_app(ApiContext(storm.sessions, storm.clock))) as base, httpx.Client(base_url=base) as c:
        yield c, {k: f"Bearer {v}" for k, v in tokens.items()}


def test_incidents_api_is_region_scoped(storm: Hub, client: tuple[httpx.Client, dict[str, str]]) -> None:
    c, auth = client
    cut_power(storm, [f"gw-s{n}" for n in range(15)])
    [inc] = incident_rows(storm)
    for who in ("ws1", "sd1", "district"):
        page = c.get("/api/v1/incidents", headers={"Authorization": auth[who]}).json()
        assert [i["id"] for i in page["items"]] == [inc.id], who
        d = c.get(f"/api/v1/incidents/{inc.id}", headers={"Authorization": auth[who]}).json()
        assert (d["members"], d["members_visible"], d["still_active"]) == (15, 15, 15)
        assert {a["incident_id"] for a in d["member_alarms"]} == {inc.id}
    for who in ("ws3", "sd2"):
        assert c.get("/api/v1/incidents", headers={"Authorization": auth[who]}).json()["items"] == []
        assert c.get(f"/api/v1/incidents/{inc.id}", headers={"Authorization": auth[who]}).status_code == 404
    d = c.get(f"/api/v1/incidents/{inc.id}?limit=5", headers={"Authorization": auth["sd1"]}).json()
    assert len(d["member_alarms"]) == 5 and d["members_visible"] == 15
    assert c.get("/api/v1/incidents").status_code == 401


async def test_the_service_decides_a_supervision_round_in_batches_and_folds_it(storm: Hub) -> None:
    """conditions_changed of a whole round (25 conditions, batch_max 10): three transactions,
    every condition decided once, one incident; a settings kind list with smoke is refused."""
    from hub.alarms.service import AlarmService
    from hub.alarms.settings import StormSettings
    from hub.db.state import ConditionKind, ConditionState
    from hub.sinks import ConditionChange

    with pytest.raises(ValueError, match="life-safety kinds are never folded"):
        StormSettings(kinds=["gateway_offline", "smoke"])
    settings = alarm_settings(batch_max=10, storm=StormSettings(threshold=5))
    svc = AlarmService(settings, storm.sessions, "w", clock=storm.clock)
    calls: list[int] = []
    real = svc.engine.handle_batch

    def counted(items: Sequence[tuple[Signal, str]]) -> list[Processed | None]:
        calls.append(len(items))
        return real(items)

    svc.engine.handle_batch = counted  # type: ignore[method-assign]
    OFFLINE, OPEN = ConditionKind.GATEWAY_OFFLINE, ConditionState.OPEN
    changes = [ConditionChange(2000 + n, OFFLINE, OPEN, f"gw-s{n}", None, storm.clock.now())
               for n in range(20)] + [ConditionChange(3000 + n, OFFLINE, OPEN, f"gw-{n}", None,
                                                       storm.clock.now()) for n in (1, 2, 3)]  # fmt: skip
    changes += changes[:2]  # handed twice: decided once
    await svc.sink.conditions_changed(changes)
    assert calls == [10, 10, 5]
    with storm.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Alarm)) == 23
        assert s.scalar(select(func.count()).select_from(Alarm).where(Alarm.incident_id.is_not(None))) == 22
    # gw-3 is in sd-02: alone in its subdistrict, routed on its own
    [inc] = incident_rows(storm)
    assert inc.members == 22 and inc.area == "subdistrict:sd-01"


def test_a_worker_that_does_not_deliver_runs_no_outbox_and_dead_letters_nothing(storm: Hub) -> None:
    from hub.alarms.service import AlarmService

    a = storm.alarms.handle(*event_signal(Event(gw="gw-1", seq=1, id=new_event_id(), ts=1, synced=True,
                            sensor="smoke-1", kind=EventKind.SMOKE, state=EventState.ALARM), storm.clock.now()))  # fmt: skip
    svc = AlarmService(alarm_settings(), storm.sessions, "w", clock=storm.clock, deliver=False)
    assert svc.outboxes == [] and svc.dispatcher.handover() is None
    svc.reconcile()
    with storm.sessions() as s:
        status = {n.status for n in s.scalars(select(Notification).where(Notification.alarm_id == a.alarm_id))}
    assert status == {"pending"}  # SMS/voice not dead-lettered by a worker that sends nothing
