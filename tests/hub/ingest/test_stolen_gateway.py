"""A stolen gateway password against a running hub worker: while it tries every attack of
issue 12 in a loop, another home's panic alarms are all stored and acked."""

from __future__ import annotations

import datetime as dt
import threading

import protocols as p
from hub.ingest.decode import Rejected, classify
from hub.mqtt import hub_client_id
from safehome.testing.poll import until
from tests.hub.ingest.conftest import Worker, stored
from tests.support.hub_gateway import ScriptedGateway
from tests.support.hub_mqtt import SecuredBroker

THIEF = "stolen-gw"


def _attack_until(secured: SecuredBroker, worker: Worker, victim: str, stop: threading.Event) -> list[str]:
    """Every attack, round after round, until ``stop``; returns what was NOT refused."""
    pw = secured.gateway(THIEF)
    thief = secured.client(THIEF, pw, client_id=THIEF).connect()
    hub_ids = [hub_client_id(worker.settings.worker_id), hub_client_id(worker.settings.worker_id, "telemetry")]
    granted: list[str] = []
    try:
        while not stop.is_set():
            for topic in (f"$share/hub/{p.ROOT}/gw/+/event", str(p.Topic.of(victim, "ack")), "#", "$SYS/#"):
                if thief.subscribe(topic) != [0x80]:
                    granted.append(f"subscribe {topic}")
            # forged and retained publishes: dropped by the broker
            thief.publish(str(p.Topic.of(victim, "event")), b"{}")
            thief.publish(str(p.Topic.of(THIEF, "event")), b"{}", retain=True)
            for client_id in (victim, *hub_ids):
                if not secured.client(THIEF, pw, client_id=client_id).connect(expect_ok=False).refused:
                    granted.append(f"connect as {client_id}")
    finally:
        thief.close()
    return granted


async def test_alarms_of_others_are_stored_while_a_stolen_password_attacks(
    secured: SecuredBroker, worker: Worker
) -> None:
    victim = ScriptedGateway(secured, "victim-gw").connect()
    stop = threading.Event()
    result: list[list[str]] = []
    attacker = threading.Thread(target=lambda: result.append(_attack_until(secured, worker, victim.gw, stop)))
    attacker.start()
    try:
        ids = []
        for _ in range(5):
            ev = victim.event(p.EventKind.PANIC, sensor="panic-1")
            victim.send(ev)
            ids.append(ev.id)
            # each one at its first send: no resend in this scripted gateway
            await victim.acked([ev.id], within=20)
        assert stored(worker, ids) == 5
        assert all(victim.acks[i][0].status is p.AckStatus.STORED for i in ids)
    finally:
        stop.set()
        await until(lambda: not attacker.is_alive(), within=30, what="attacker stopped")
        victim.close()
    assert result == [[]], f"attacks not refused: {result}"
    assert worker.service.subscribed.is_set()  # the hub's lanes were never taken over


def test_a_retained_uplink_message_is_rejected_except_status() -> None:
    now = dt.datetime.now(dt.UTC)
    gw = "ret-gw"
    ev = p.Event.model_validate(
        {"gw": gw, "seq": 1, "id": p.new_event_id(), "ts": 1, "synced": True, "sensor": "smoke-1",
         "kind": "smoke", "state": "alarm"},
        strict=False,
    )
    got = classify(str(p.Topic.of(gw, "event")), p.encode(ev), True, now)
    assert isinstance(got, Rejected) and got.reason == "retained"
    assert not isinstance(classify(str(p.Topic.of(gw, "event")), p.encode(ev), False, now), Rejected)
    st = p.Status.model_validate(
        {"gw": gw, "state": "online", "reason": "birth", "seq": 2, "ts": 1, "synced": True, "heartbeat_s": 30},
        strict=False,
    )
    assert not isinstance(classify(str(p.Topic.of(gw, "status")), p.encode(st), True, now), Rejected)
