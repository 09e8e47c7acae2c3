"""The issue's end-to-end path through real parts: a gateway (paho) publishes a smoke event
to a real Mosquitto with the hub's ACL → the full hub (``build_hub``: ingest, alarm engine,
outbox, HTTP API) stores it and raises an alarm → routed to the home's workstation → a local
webhook receiver gets the signed notification → an operator acknowledges through the API →
the gateway receives Ack ``acknowledged`` on its own ack topic. And: the hub restarts between
the raise and the escalation deadline, two workers run after it → the escalation fires once."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

import protocols as p
from hub.alarms.store.models import Alarm, AlarmTimer, WebhookSubscription
from hub.api.tokens import create_token
from hub.db.engine import make_engine, make_session_factory
from hub.notify.models import Notification
from hub.notify.signing import verify
from hub.runner import Hub, build_hub
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from safehome.testing.registry import seed_small_district
from tests.hub.conftest import SECRETS_BOX, worker_settings
from tests.support.http import Receiver, http_receiver
from tests.support.hub_gateway import ScriptedGateway
from tests.support.hub_mqtt import SecuredBroker, start_secured_broker

pytestmark = pytest.mark.slow


@pytest.fixture
def secured(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> SecuredBroker:
    return start_secured_broker(mosquitto_factory, tmp_path / "secured")


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    with http_receiver() as ws1, http_receiver() as ws2, http_receiver() as sd1:
        yield {"ws-0001": ws1, "ws-0002": ws2, "sd-01": sd1}


def prepare(db_url: str, receivers: dict[str, Receiver]) -> str:
    """Registry + webhook subscriptions + an operator token of ws-0001; returns the token."""
    engine = make_engine(db_url)
    try:
        sessions = make_session_factory(engine)
        seed_small_district(sessions)
        with sessions() as s, s.begin():
            s.add(
                WebhookSubscription(
                    url=receivers["ws-0001"].url + "/hook",
                    secret_sealed=SECRETS_BOX.seal("ws1-secret"),
                    region_kind="workstation",
                    region_id="ws-0001",
                )
            )
            s.add(
                WebhookSubscription(
                    url=receivers["ws-0002"].url + "/hook",
                    secret_sealed=SECRETS_BOX.seal("ws2-secret"),
                    region_kind="workstation",
                    region_id="ws-0002",
                )
            )
            s.add(
                WebhookSubscription(
                    url=receivers["sd-01"].url + "/hook",
                    secret_sealed=SECRETS_BOX.seal("sd1-secret"),
                    region_kind="subdistrict",
                    region_id="sd-01",
                )
            )
            token, _ = create_token(s, "operator", "workstation:ws-0001", "ws-0001 duty desk", p_now())
        return token
    finally:
        engine.dispose()


def p_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def alarms_in(hub: Hub) -> list[Alarm]:
    with hub.session_factory() as s:
        return list(s.scalars(select(Alarm)))


async def test_smoke_to_acknowledged_ack_on_the_gateway(
    secured: SecuredBroker, db_url: str, receivers: dict[str, Receiver]
) -> None:
    token = prepare(db_url, receivers)
    hub = build_hub(worker_settings(secured, db_url))
    # the alarm service starts before the ingest (and stops after it): its sink decides
    # from the first stored event on
    assert hub.services[0] is hub.alarms and hub.ingest in hub.services[1:]
    await hub.start()
    gw = ScriptedGateway(secured, "gw-1").connect()
    try:
        await until(lambda: hub.ingest is not None and hub.ingest.subscribed.is_set(), 10, "hub subscribed")
        ev = gw.event(p.EventKind.SMOKE, sensor="smoke-1")
        gw.send(ev)
        await gw.acked([ev.id])  # stored
        # decided in the transaction that stored it: the alarm exists and its webhook is
        # claimed (on its way, not waiting in the table) before the gateway hears "stored"
        (alarm,) = alarms_in(hub)
        with hub.session_factory() as s:
            hooks = s.scalars(
                select(Notification.status).where(
                    Notification.alarm_id == alarm.id, Notification.channel == "webhook"
                )
            ).all()
        assert hooks and "pending" not in hooks
        assert (alarm.kind, alarm.workstation_id, alarm.event_id) == ("smoke", "ws-0001", ev.id)

        # routed to the right workstation: its webhook, signed; nobody else's
        await until(lambda: len(receivers["ws-0001"].requests) >= 1, 15, "ws-0001 webhook")
        (req,) = receivers["ws-0001"].requests
        verify(
            "ws1-secret",
            req.headers["x-safehome-signature"],
            req.headers["x-safehome-timestamp"],
            req.body,
            time.time(),
        )
        body = req.json()
        assert (body["event"], body["alarm_id"], body["workstation_id"]) == (
            "alarm.raised",
            alarm.id,
            "ws-0001",
        )
        assert receivers["ws-0002"].requests == []

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.http_port}") as api:
            auth = {"Authorization": f"Bearer {token}"}
            r = await api.post(
                f"/api/v1/alarms/{alarm.id}/acknowledge",
                headers=auth | {"Idempotency-Key": "ack-1"},
                json={"note": "calling"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "acknowledged"

        await gw.acked([ev.id], times=2)  # stored, then acknowledged
        items = gw.acks[ev.id]
        assert [i.status for i in items] == [p.AckStatus.STORED, p.AckStatus.ACKNOWLEDGED]
        assert (items[1].alarm_id, items[1].by) == (alarm.id, "workstation ws-0001")
    finally:
        gw.close()
        await hub.stop()


async def test_restart_before_escalation_deadline_then_two_workers_fire_once(
    secured: SecuredBroker, db_url: str, receivers: dict[str, Receiver]
) -> None:
    prepare(db_url, receivers)
    policy = {"alarm": [{"name": "ack_3s", "after_s": 3, "awaits": "acknowledged", "tier": "district"}]}
    first = build_hub(worker_settings(secured, db_url, escalation=policy))
    await first.start()
    gw = ScriptedGateway(secured, "gw-1").connect()
    try:
        await until(
            lambda: first.ingest is not None and first.ingest.subscribed.is_set(), 10, "hub subscribed"
        )
        ev = gw.event(p.EventKind.PANIC, sensor="panic-1")
        gw.send(ev)
        await gw.acked([ev.id])
        await until(lambda: len(alarms_in(first)) == 1, 10, "alarm raised")
        (alarm,) = alarms_in(first)
    finally:
        gw.close()
    with first.session_factory() as s:
        (timer,) = s.scalars(select(AlarmTimer)).all()
        assert timer.status == "pending"  # the hub goes down before the deadline
    await first.stop()

    workers = [build_hub(worker_settings(secured, db_url, escalation=policy)) for _ in range(2)]
    subs = [w.app.state.console_bus.subscribe({"district:pudong"}) for w in workers]
    for w in workers:
        await w.start()
    try:
        seen: list[dict[str, object]] = []

        def escalated() -> list[dict[str, object]]:
            for sub in subs:
                while not sub.queue.empty():
                    seen.append(dict(sub.queue.get_nowait()))
            return [m for m in seen if m["event"] == "alarm.escalated"]

        await until(lambda: len(escalated()) >= 1, 15, "escalation on the district console")
        with workers[0].session_factory() as s:
            (timer,) = s.scalars(select(AlarmTimer)).all()
            history = [h.action for h in s.get(Alarm, alarm.id).history]  # type: ignore[union-attr]
        assert timer.status == "fired" and timer.fired_by in {w.settings.worker_id for w in workers}
        assert history.count("escalate") == 1
        await asyncio.sleep(0.5)  # let both workers tick a few more rounds: still one escalation
        assert len(escalated()) == 1 and escalated()[0]["alarm_id"] == alarm.id
        # the subdistrict's webhook had the raise already: it is not routed again, but hears
        # of every later line of the alarm (notified, escalated) with a gap-free seq
        def sd_events() -> dict[int, str]:
            return {r.json()["seq"]: r.json()["event"] for r in receivers["sd-01"].requests}

        await until(lambda: "alarm.escalated" in sd_events().values(), 15, "the escalation at sd-01's webhook")
        got = sd_events()
        assert sorted(got) == list(range(1, len(got) + 1)), got
        assert got[1] == "alarm.raised" and list(got.values()).count("alarm.escalated") == 1
        assert [r.json()["event"] for r in receivers["sd-01"].requests].count("alarm.raised") == 1
    finally:
        for w in workers:
            await w.stop()


async def test_gas_reading_over_threshold_raises_an_alarm_through_ingest(
    secured: SecuredBroker, db_url: str, receivers: dict[str, Receiver]
) -> None:
    """Telemetry %LEL above the raise level (no contact event at all) → a routed gas alarm;
    readings inside the hysteresis band change nothing; below the clear level → restored."""
    prepare(db_url, receivers)
    hub = build_hub(worker_settings(secured, db_url))
    await hub.start()
    gw = ScriptedGateway(secured, "gw-1").connect()
    try:
        await until(lambda: hub.ingest is not None and hub.ingest.subscribed.is_set(), 10, "hub subscribed")
        quiet = gw.telemetry([("gas-1", "gas_lel", 3.0), ("smoke-1", "battery_v", 9.0)])
        gw.send(quiet)
        await gw.acked([quiet.id])
        assert alarms_in(hub) == []

        leak = gw.telemetry([("gas-1", "gas_lel", 27.5)])
        gw.send(leak)
        await gw.acked([leak.id])
        await until(lambda: len(alarms_in(hub)) == 1, 10, "gas alarm raised from telemetry")
        (alarm,) = alarms_in(hub)
        assert (alarm.kind, alarm.sensor_id, alarm.workstation_id) == ("gas", "gas-1", "ws-0001")
        assert alarm.restored_at is None

        band = gw.telemetry([("gas-1", "gas_lel", 15.0)])
        vented = gw.telemetry([("gas-1", "gas_lel", 4.0)])
        gw.send(band)
        gw.send(vented)
        await gw.acked([band.id, vented.id])

        def restored() -> bool:
            return [a.restored_at is not None for a in alarms_in(hub)] == [True]

        await until(restored, 10, "gas alarm restored below the clear level")
    finally:
        gw.close()
        await hub.stop()
