"""The rate-limit plugin against a real Mosquitto: one gateway's messages over its bucket are
answered (PUBACK) and delivered to nobody, the connection stays, the hub is told how many,
and nothing else is limited (telemetry, the hub, the Last Will, other gateways)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

import protocols as p
from hub.broker import plugin
from hub.broker.config import BrokerSettings, render_config
from hub.ingest.service import LANES, PRIORITY_LANE
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import wait_for
from tests.support.hub_mqtt import Client, SecuredBroker, start_secured_broker

BURST = 5


@pytest.fixture
def limited(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> SecuredBroker:
    # a rate far below what the test sends: only the burst passes within the test
    return start_secured_broker(mosquitto_factory, tmp_path / "limited", rate=0.01, burst=BURST)


def _hub(secured: SecuredBroker) -> Client:
    hub = secured.hub_client(client_id="hub-rl-test").connect()
    for ch in ("event", "status", "telemetry"):
        assert hub.subscribe(f"{p.ROOT}/gw/+/{ch}") == [1]
    assert hub.subscribe(plugin.SHED_TOPIC) == [1]
    return hub


def _shed_notices(hub: Client, timeout: float, want: int) -> dict[str, int]:
    """Refused counts per gateway from the notices, once they add up to ``want``; other
    messages stay in the hub client's queue."""
    got: dict[str, int] = {}
    others: list[mqtt.MQTTMessage] = []

    def added_up() -> bool:
        for m in hub.drain():
            if m.topic == plugin.SHED_TOPIC:
                doc = json.loads(m.payload)
                got[doc["gw"]] = got.get(doc["gw"], 0) + doc["shed"]
            else:
                others.append(m)
        return sum(got.values()) >= want

    wait_for(added_up, timeout, f"{want} refused messages in the notices")
    for m in others:
        hub.messages.put(m)
    return got


@pytest.mark.parametrize("v5", [False, True], ids=["mqtt311", "mqtt5"])
def test_over_the_burst_is_acked_not_delivered_and_counted(limited: SecuredBroker, v5: bool) -> None:
    hub = _hub(limited)
    gw = "rl-flooder"
    flooder = limited.client(gw, limited.gateway(gw), client_id=gw, v5=v5).connect()
    honest = limited.client("rl-honest", limited.gateway("rl-honest"), client_id="rl-honest").connect()
    acks: list[int] = []
    flooder.c.on_publish = lambda _c, _u, _mid, rc, _p: acks.append(0 if rc is None else int(rc.value))
    try:
        for i in range(30):
            flooder.publish(f"{p.ROOT}/gw/{gw}/event", f"flood {i}".encode())
        wait_for(lambda: len(acks) == 30, what="a PUBACK for every message")
        # MQTT 3.1.1 has no reason code: the refused ones look acked; MQTT 5 says why
        assert acks == [0] * BURST + ([0x87] * 25 if v5 else [0] * 25)
        assert flooder.c.is_connected() and not flooder.disconnects
        assert _shed_notices(hub, 10, 25) == {gw: 25}
        # another gateway, the flooder's telemetry: not limited
        honest.publish(f"{p.ROOT}/gw/rl-honest/event", b"alarm")
        for i in range(10):
            flooder.publish(f"{p.ROOT}/gw/{gw}/telemetry", f"t {i}".encode())
        wait_for(lambda: len(hub.messages.queue) >= BURST + 11, what="delivered messages")
        delivered = [(m.topic.rsplit("/", 2)[-2:], m.payload) for m in hub.drain()]
        events = [pl for (who, ch), pl in delivered if ch == "event"]
        assert events == [f"flood {i}".encode() for i in range(BURST)] + [b"alarm"]
        assert sum(1 for (_w, ch), _pl in delivered if ch == "telemetry") == 10
    finally:
        flooder.close()
        honest.close()
        hub.close()


def test_the_last_will_passes_an_empty_bucket(limited: SecuredBroker) -> None:
    hub = _hub(limited)
    gw = "rl-will"
    will = (f"{p.ROOT}/gw/{gw}/status", b"offline (will)")
    flooder = limited.client(gw, limited.gateway(gw), client_id=gw, will=will).connect()
    for i in range(BURST + 3):
        flooder.publish(f"{p.ROOT}/gw/{gw}/status", f"s {i}".encode())
    _shed_notices(hub, 10, 3)
    flooder.kill()  # no DISCONNECT: the broker publishes the Will
    wait_for(lambda: any(m.payload == will[1] for m in list(hub.messages.queue)), what="the Last Will")
    hub.close()


def test_a_rate_of_zero_limits_nothing(secured_default: SecuredBroker) -> None:
    hub = _hub(secured_default)
    gw = "rl-free"
    c = secured_default.client(gw, secured_default.gateway(gw), client_id=gw).connect()
    try:
        for i in range(300):
            c.c.publish(f"{p.ROOT}/gw/{gw}/event", f"e {i}".encode(), qos=1)
        wait_for(lambda: len(hub.messages.queue) >= 300, 30, "all 300 delivered")
        assert not any(m.topic == plugin.SHED_TOPIC for m in hub.drain())
    finally:
        c.close()
        hub.close()


@pytest.fixture
def secured_default(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> SecuredBroker:
    return start_secured_broker(mosquitto_factory, tmp_path / "free")


def test_the_limited_channels_are_the_priority_lanes() -> None:
    assert {c.value for c in plugin.LIMITED_CHANNELS} == LANES[PRIORITY_LANE]


def test_config_loads_the_rate_limit_once() -> None:
    s = BrokerSettings(tls=False, gateway_rate=12.5, gateway_burst=150)
    text = render_config(s)
    assert text.count(f"plugin {s.ratelimit_path}") == 1
    assert "plugin_opt_rate 12.5\nplugin_opt_burst 150\n" in text
    assert "plugin_opt_channels event,result,status\n" in text
    assert "plugin_opt_exempt_users hub\n" in text
    assert f"plugin_opt_notice_topic {plugin.SHED_TOPIC}\n" in text
