"""One stolen gateway password against a real Mosquitto with the generated ACL and the
isolation plugin: every attack of issue 12 is refused, and the others are not hurt."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import protocols as p
from hub.broker.credentials import gateway_username
from hub.broker.errors import CredentialError
from hub.mqtt import hub_client_id, make_client
from hub.settings import MqttSettings
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import wait_for
from tests.support.hub_mqtt import Client, SecuredBroker, start_secured_broker

THIEF, VICTIM = "iso-thief", "iso-victim"
REFUSED = 0x80  # SUBACK failure (MQTT 3.1.1)
HUB_SHARE = f"$share/hub/{p.ROOT}/gw/+/event"

FORBIDDEN_SUBSCRIPTIONS = [
    HUB_SHARE,
    f"$share/hub/{p.ROOT}/gw/+/+",
    f"$share/thief/{p.ROOT}/gw/{THIEF}/ack",  # even its own downlink, through a group
    str(p.Topic.of(VICTIM, "ack")),
    str(p.Topic.of(VICTIM, "cmd")),
    str(p.Topic.of(VICTIM, "config")),
    str(p.Topic.of(VICTIM, "event")),
    f"{p.ROOT}/gw/+/ack",
    f"{p.ROOT}/gw/{THIEF}/+",
    "#",
    "$SYS/#",
    "$SYS/broker/clients/connected",
]


def _thief(secured: SecuredBroker, **kw: object) -> Client:
    return secured.client(THIEF, secured.gateway(THIEF), client_id=THIEF, **kw)


def test_gateway_may_subscribe_to_its_own_downlink_only(secured: SecuredBroker) -> None:
    thief = _thief(secured).connect()
    try:
        for topic in FORBIDDEN_SUBSCRIPTIONS:
            assert thief.subscribe(topic) == [REFUSED], topic
        for channel in sorted(c.value for c in p.DOWNLINK_CHANNELS):
            assert thief.subscribe(str(p.Topic.of(THIEF, channel))) == [1], channel
    finally:
        thief.close()


def test_mqtt5_subscription_is_refused_as_not_authorised(secured: SecuredBroker) -> None:
    thief = _thief(secured, v5=True).connect()
    try:
        assert thief.subscribe(HUB_SHARE) == [0x87]
    finally:
        thief.close()


def test_thief_in_the_hub_group_steals_nothing(secured: SecuredBroker) -> None:
    """Before the plugin, a gateway in $share/hub/... took its share of every event (9 of 10
    lost at the first send with five such connections). Now the hub gets them all."""
    victim = secured.client(VICTIM, secured.gateway(VICTIM), client_id=VICTIM).connect()
    hub = secured.hub_client(client_id=hub_client_id("iso")).connect()
    thief = _thief(secured).connect()
    try:
        assert hub.subscribe(HUB_SHARE) == [1]
        assert thief.subscribe(HUB_SHARE) == [REFUSED]
        sent = [f"ev-{i}".encode() for i in range(10)]
        for payload in sent:
            victim.publish(str(p.Topic.of(VICTIM, "event")), payload)
        got = [hub.get().payload for _ in sent]
        assert got == sent
        assert thief.drain() == []
    finally:
        for c in (victim, hub, thief):
            c.close()


def test_client_id_is_bound_to_the_username(secured: SecuredBroker) -> None:
    victim = secured.client(VICTIM, secured.gateway(VICTIM), client_id=VICTIM).connect()
    hub = secured.hub_client(client_id=hub_client_id("w1")).connect()
    thief_pw = secured.gateway(THIEF)
    try:
        for client_id in (VICTIM, hub_client_id("w1"), hub_client_id("w1", "acks"), "hub", ""):
            attempt = secured.client(THIEF, thief_pw, client_id=client_id).connect(expect_ok=False)
            assert attempt.refused, client_id
        # neither was taken over: both still deliver
        hub.subscribe(str(p.Topic.of(VICTIM, "status")))
        victim.publish(str(p.Topic.of(VICTIM, "status")), b"still-here")
        assert hub.get().payload == b"still-here"
        assert victim.disconnects == [] and hub.disconnects == []
        # its own id works: a gateway's client id is its gateway id
        secured.client(THIEF, thief_pw, client_id=THIEF).connect().close()
    finally:
        victim.close()
        hub.close()


def test_retained_uplink_is_refused_except_status(secured: SecuredBroker) -> None:
    thief = _thief(secured).connect()
    try:
        for channel in ("event", "telemetry", "result"):
            thief.publish(str(p.Topic.of(THIEF, channel)), b"planted", retain=True)
        thief.publish(str(p.Topic.of(THIEF, "status")), b"retained-status", retain=True)
        # a hub worker subscribing now is replayed the status only
        hub = secured.hub_client(client_id=hub_client_id("iso-late")).connect()
        try:
            hub.subscribe(f"{p.ROOT}/gw/{THIEF}/+")
            first = hub.get()
            assert (first.payload, first.retain) == (b"retained-status", True)
            thief.publish(str(p.Topic.of(THIEF, "status")), b"live")  # ordered after any replay
            wait_for(lambda: not hub.messages.empty(), what="live status")
            assert [m.payload for m in hub.drain()] == [b"live"]
        finally:
            hub.close()
        assert "refused retained PUBLISH" in secured.broker.log_text()
    finally:
        thief.close()


def test_gateway_ids_cannot_take_the_hub_prefix() -> None:
    with pytest.raises(CredentialError, match="hub's client ids"):
        gateway_username(hub_client_id("w1"))
    assert gateway_username("gw-000001") == "gw-000001"
    with pytest.raises(ValueError, match="must start with"):
        make_client(MqttSettings(), "w1-acks")



def test_a_retained_message_planted_before_the_plugin_can_be_cleared(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path
) -> None:
    """Retained uplink stored by a broker without the plugin is replayed at every subscribe
    until deleted; the gateway may delete it (empty retained), and then nothing is replayed."""
    with_plugin = start_secured_broker(mosquitto_factory, tmp_path / "b")
    secured = with_plugin.broker
    plugin_lines = [ln for ln in secured.extra_config.splitlines() if ln.startswith("plugin")]
    secured.extra_config = "\n".join(ln for ln in secured.extra_config.splitlines() if not ln.startswith("plugin"))
    secured.persistence = True
    secured.restart()
    pw = with_plugin.gateway(THIEF)
    event = str(p.Topic.of(THIEF, "event"))
    old = with_plugin.client(THIEF, pw, client_id=THIEF).connect()
    old.publish(event, b"planted", retain=True)
    old.close()
    secured.extra_config += "\n" + "\n".join(plugin_lines) + "\n"
    secured.restart()

    def replayed(name: str) -> list[bytes]:
        hub = with_plugin.hub_client(client_id=hub_client_id(name)).connect()
        try:
            hub.subscribe(f"{p.ROOT}/gw/{THIEF}/+")
            thief.publish(str(p.Topic.of(THIEF, "status")), b"marker")  # live, after any replay
            got = []
            while (m := hub.get()).payload != b"marker":
                got.append(bytes(m.payload))
            return got
        finally:
            hub.close()

    thief = with_plugin.client(THIEF, pw, client_id=THIEF).connect()
    try:
        assert replayed("before") == [b"planted"]  # it survived the restart
        thief.publish(event, b"", retain=True)  # allowed: deletes, stores nothing
        assert replayed("after") == []
    finally:
        thief.close()


def test_last_will_can_neither_plant_nor_forge(secured: SecuredBroker) -> None:
    """The Last Will is a publish too: retained on its own event, or on another gateway's
    status (a forged "offline"), it is dropped when the connection dies."""
    hub = secured.hub_client(client_id=hub_client_id("iso-will")).connect()
    pw = secured.gateway(THIEF)
    try:
        hub.subscribe(f"{p.ROOT}/gw/+/+")
        closed = f"Client {THIEF} closed its connection."
        for n, will_topic in enumerate((str(p.Topic.of(THIEF, "event")), str(p.Topic.of(VICTIM, "status"))), 1):
            dying = secured.client(THIEF, pw, client_id=THIEF, will=(will_topic, b"will")).connect()
            dying.kill()  # no DISCONNECT: the broker publishes the Will
            wait_for(lambda n=n: secured.broker.log_text().count(closed) >= n,  # type: ignore[misc]
                     what="the broker noticed the dead connection")
        marker = secured.client(THIEF, pw, client_id=THIEF).connect()
        for n in (1, 2):  # the second round trip flushes anything still in flight
            marker.publish(str(p.Topic.of(THIEF, "status")), f"marker-{n}".encode())
        got = [hub.get().payload, hub.get().payload]
        marker.close()
        assert got == [b"marker-1", b"marker-2"]
        assert hub.drain() == []
    finally:
        hub.close()
