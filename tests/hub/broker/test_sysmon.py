"""The $SYS monitor against a real broker that drops messages (a tiny queue)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

import protocols as p
from hub.broker.sysmon import BrokerMonitor, DropChange, DropWatch, parse_counter
from hub.db.engine import make_engine, make_session_factory
from hub.db.state import Condition
from hub.metrics import HubMetrics
from hub.settings import MqttSettings
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.hub.ingest.conftest import RecordingSink
from tests.support.hub_mqtt import start_secured_broker


def test_drop_watch_opens_on_rise_and_restores_when_quiet() -> None:
    w = DropWatch(quiet_s=60)
    assert w.observe(0, now=0) is None
    assert w.observe(0, now=10) is None
    assert w.observe(5, now=20) is DropChange.OPEN
    assert w.observe(9, now=30) is None  # still dropping: already open
    assert w.tick(now=89) is None
    assert w.tick(now=90) is DropChange.RESTORE
    assert w.observe(9, now=100) is None
    assert w.observe(0, now=110) is None  # broker restarted: counters reset, not a rise
    assert w.observe(1, now=120) is DropChange.OPEN
    assert DropWatch().observe(7, now=0) is DropChange.OPEN  # dropped before the hub started
    assert parse_counter(b"42") == 42 and parse_counter(b"x") is None and parse_counter(b"\xff") is None


async def test_dropped_messages_become_metric_and_condition(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path, db_url: str
) -> None:
    secured = start_secured_broker(
        mosquitto_factory, tmp_path / "sys", extra="sys_interval 1\nmax_queued_messages 5\n"
    )
    gw = "sys-gw-1"
    pw = secured.gateway(gw)
    # a persistent QoS 1 subscriber that goes away: its queue (5) overflows
    slow = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sys-slow", clean_session=False)
    slow.username_pw_set("hub", secured.hub_password)
    subscribed = threading.Event()
    slow.on_subscribe = lambda *_a: subscribed.set()
    slow.on_connect = lambda c, *_a: c.subscribe(str(p.Topic.of(gw, "telemetry")), qos=1)
    slow.connect(secured.broker.host, secured.broker.port)
    slow.loop_start()
    await until(subscribed.is_set, what="slow subscriber's SUBACK")
    slow.loop_stop()
    slow.disconnect()

    engine = make_engine(db_url)
    sink, metrics, now = RecordingSink(), HubMetrics(), [0.0]
    monitor = BrokerMonitor(
        MqttSettings(port=secured.broker.port, password=secured.hub_password),
        "sys-test",
        make_session_factory(engine),
        metrics,
        [sink],
        quiet_s=30,
        clock=lambda: now[0],
    )
    await monitor.start()
    pub = secured.client(gw, pw, client_id=gw).connect()
    try:
        for i in range(40):
            pub.c.publish(str(p.Topic.of(gw, "telemetry")), f"{i}".encode(), qos=1)
        await until(
            lambda: (metrics.registry.get_sample_value("safehome_broker_dropped_messages") or 0) > 0,
            within=15,
            what="dropped counter seen",
        )
        await until(lambda: len(sink.changes) == 1, what="broker_dropping opened")
        assert (sink.changes[0].kind, sink.changes[0].state) == ("broker_dropping", "open")
        with make_session_factory(engine)() as s:
            rows = s.scalars(select(Condition).where(Condition.kind == "broker_dropping")).all()
            assert [(r.gateway_id, r.state) for r in rows] == [(None, "open")]
        now[0] = 31.0  # quiet for longer than quiet_s
        await until(lambda: len(sink.changes) == 2, what="broker_dropping restored")
        assert sink.changes[1].state == "restored"
    finally:
        pub.close()
        await monitor.stop()
        engine.dispose()
