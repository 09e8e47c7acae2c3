"""The hub's MQTT clients send small acks without Nagle's delay, and fail over between a
cluster's listeners."""

from __future__ import annotations

import socket
from collections.abc import Callable

import aiomqtt

from hub.mqtt import LazyPublisher, downlink_client_id, set_nodelay
from hub.settings import MqttSettings
from safehome.testing.mosquitto import Mosquitto
from tests.support.hub_mqtt import Client


async def test_set_nodelay_on_a_connected_client(mosquitto: Mosquitto) -> None:
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="nodelay-probe") as client:
        sock = client._client.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        assert set_nodelay(client) is True
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def cluster_settings(*brokers: Mosquitto) -> MqttSettings:
    """Settings of a cluster's MQTT listeners (two Mosquittos stand for two nodes here: only
    the failover of the publisher is under test)."""
    return MqttSettings(
        backend="nats",
        servers=[f"{b.host}:{b.port}" for b in brokers],
        nats_servers=["nats://127.0.0.1:4222"],  # unused by the MQTT publisher
    )


async def test_the_publisher_fails_over_to_the_next_listener(
    mosquitto_factory: Callable[..., Mosquitto],
) -> None:
    first, second = mosquitto_factory(), mosquitto_factory()
    subs = [Client(b).connect() for b in (first, second)]
    for s in subs:
        s.subscribe("safehome/v1/gw/gw-1/ack")
    settings = cluster_settings(first, second)
    publisher = LazyPublisher(settings, downlink_client_id(settings, "w1", "acks"), timeout_s=5)
    try:
        await publisher.publish("safehome/v1/gw/gw-1/ack", b"one")
        assert subs[0].get().payload == b"one"  # the first listener while it is up
        first.stop(kill=True)
        published = False
        for _ in range(2):  # the publish that finds the node gone fails; the next goes on
            try:
                await publisher.publish("safehome/v1/gw/gw-1/ack", b"two")
                published = True
                break
            except aiomqtt.MqttError:
                continue
        assert published
        assert subs[1].get().payload == b"two"
    finally:
        await publisher.close()
        subs[1].close()


def test_downlink_client_ids_are_unguessable_on_nats() -> None:
    """NATS does not bind a client id to a user: a gateway connecting under the hub's id
    would take its session over, so the id carries 64 random bits there."""
    nats = MqttSettings(backend="nats", nats_servers=["nats://127.0.0.1:4222"])
    ids = {downlink_client_id(nats, "w1", "acks") for _ in range(3)}
    assert len(ids) == 3 and all(i.startswith("hub-w1-acks-") and len(i) == len("hub-w1-acks-") + 16 for i in ids)
    assert downlink_client_id(MqttSettings(), "w1", "acks") == "hub-w1-acks"
