"""The generated ACL against a real Mosquitto: a gateway speaks only on its own topics."""

from __future__ import annotations

import protocols as p
from safehome.testing.poll import wait_for
from tests.support.hub_mqtt import SecuredBroker

GW_A, GW_B = "acl-gw-a", "acl-gw-b"


def _topics(msgs: list[object]) -> list[str]:
    return [m.topic for m in msgs]  # type: ignore[attr-defined]


def test_gateway_cannot_publish_as_another(secured: SecuredBroker) -> None:
    pw_a = secured.gateway(GW_A)
    secured.gateway(GW_B)
    hub = secured.hub_client(client_id="acl-hub").connect()
    assert hub.subscribe(f"$share/hub/{p.ROOT}/gw/+/event") == [1]
    a = secured.client(GW_A, pw_a, client_id=GW_A).connect()
    try:
        # MQTT 3.1.1: a denied PUBLISH is acked and silently dropped; publish the forged
        # message first, then a legitimate one on the same connection (ordered delivery).
        a.publish(str(p.Topic.of(GW_B, "event")), b"forged", qos=1)
        a.publish(str(p.Topic.of(GW_A, "event")), b"own", qos=1)
        first = hub.get()
        assert (first.topic, first.payload) == (str(p.Topic.of(GW_A, "event")), b"own")
        assert hub.drain() == []
        # downlink topics are not the gateway's to write either
        a.publish(str(p.Topic.of(GW_B, "ack")), b"forged-ack", qos=1)
        a.publish(str(p.Topic.of(GW_A, "ack")), b"forged-own-ack", qos=1)
        a.publish(str(p.Topic.of(GW_A, "status")), b"own-status", qos=1)
        hub.subscribe(f"{p.ROOT}/gw/+/ack")
        hub.subscribe(f"{p.ROOT}/gw/+/status")
        a.publish(str(p.Topic.of(GW_A, "status")), b"own-status-2", qos=1)
        got = hub.get()
        assert got.payload == b"own-status-2"
        assert hub.drain() == []
    finally:
        a.close()
        hub.close()


def test_gateway_is_not_authorised_under_mqtt5(secured: SecuredBroker) -> None:
    """MQTT 5 makes the denial visible: PUBACK reason "Not authorized" (0x87)."""
    pw_a = secured.gateway(GW_A)
    a = secured.client(GW_A, pw_a, client_id=GW_A, v5=True)
    acks: dict[int, int] = {}
    a.c.on_publish = lambda _c, _u, mid, rc, _p: acks.__setitem__(mid, int(rc.value))
    a.connect()
    try:
        forged = a.c.publish(str(p.Topic.of(GW_B, "event")), b"forged", qos=1)
        own = a.c.publish(str(p.Topic.of(GW_A, "event")), b"own", qos=1)
        wait_for(lambda: forged.mid in acks and own.mid in acks, what="PUBACKs")
        assert acks[forged.mid] == 0x87
        assert acks[own.mid] in (0x00, 0x10)  # success / no matching subscribers
    finally:
        a.close()


def test_gateway_cannot_subscribe_to_another_downlink(secured: SecuredBroker) -> None:
    pw_a = secured.gateway(GW_A)
    pw_b = secured.gateway(GW_B)
    a = secured.client(GW_A, pw_a, client_id=GW_A).connect()
    b = secured.client(GW_B, pw_b, client_id=GW_B).connect()
    hub = secured.hub_client(client_id="acl-hub-2").connect()
    try:
        denied = a.subscribe(str(p.Topic.of(GW_B, "ack")))
        wildcard = a.subscribe(f"{p.ROOT}/gw/+/cmd")
        own = a.subscribe(str(p.Topic.of(GW_A, "ack")))
        assert own == [1]
        b.subscribe(str(p.Topic.of(GW_B, "ack")))
        hub.publish(str(p.Topic.of(GW_B, "ack")), b"for-b")
        hub.publish(str(p.Topic.of(GW_B, "cmd")), b"cmd-for-b")
        hub.publish(str(p.Topic.of(GW_A, "ack")), b"for-a")
        assert b.get().payload == b"for-b"
        got = a.get()
        assert got.payload == b"for-a", f"gateway A received B's downlink (SUBACK {denied}, {wildcard})"
        assert a.drain() == []
        # nor may it read B's uplink
        a.subscribe(str(p.Topic.of(GW_B, "event")))
        b.publish(str(p.Topic.of(GW_B, "event")), b"b-event")
        hub.publish(str(p.Topic.of(GW_A, "ack")), b"for-a-2")
        assert a.get().payload == b"for-a-2"
        assert a.drain() == []
    finally:
        for c in (a, b, hub):
            c.close()


def test_wrong_password_and_anonymous_are_refused(secured: SecuredBroker) -> None:
    secured.gateway(GW_A)
    bad = secured.client(GW_A, "not-the-password", client_id="acl-bad").connect(expect_ok=False)
    anon = secured.client(None, None, client_id="acl-anon").connect(expect_ok=False)
    try:
        assert bad.refused
        assert anon.refused
    finally:
        bad.close()
        anon.close()
