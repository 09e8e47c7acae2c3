"""The hub's MQTT clients send small acks without Nagle's delay."""

from __future__ import annotations

import socket

import aiomqtt

from hub.mqtt import set_nodelay
from safehome.testing.mosquitto import Mosquitto


async def test_set_nodelay_on_a_connected_client(mosquitto: Mosquitto) -> None:
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="nodelay-probe") as client:
        sock = client._client.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        assert set_nodelay(client) is True
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
