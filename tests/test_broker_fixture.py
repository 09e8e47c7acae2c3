"""The shared Mosquitto fixture: a real broker that carries a QoS 1 protocol message; the
helper's start (every listener bound, ports taken meanwhile picked again)."""

from __future__ import annotations

import queue
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import protocols as p
from safehome.testing.mosquitto import Mosquitto


def test_mosquitto_carries_an_event(mosquitto: Mosquitto) -> None:
    got: queue.Queue[bytes] = queue.Queue()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fixture-sub")
    sub.on_message = lambda _c, _u, msg: got.put(bytes(msg.payload))
    sub.connect(mosquitto.host, mosquitto.port)
    sub.loop_start()
    try:
        result, _ = sub.subscribe(str(p.Topic.of("fixture-gw", "event")), qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS
        event = p.Event(gw="fixture-gw", seq=1, id=p.new_event_id(), ts=int(time.time() * 1000),
                        synced=True, sensor="s1", kind=p.EventKind.PANIC, state=p.EventState.ALARM)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fixture-pub")
        pub.connect(mosquitto.host, mosquitto.port)
        pub.loop_start()
        deadline = time.monotonic() + 10
        received = None
        while received is None and time.monotonic() < deadline:
            pub.publish(str(p.Topic.of("fixture-gw", "event")), p.encode(event), qos=1).wait_for_publish(5)
            try:
                received = got.get(timeout=0.5)
            except queue.Empty:
                continue
        pub.loop_stop()
        pub.disconnect()
        assert received is not None
        assert p.decode(p.Channel.EVENT, received) == event
    finally:
        sub.loop_stop()
        sub.disconnect()


@contextmanager
def listening(*ports: int) -> Iterator[None]:
    """Another process's listeners on ``ports`` (what a parallel test could hold)."""
    socks = []
    try:
        for port in ports:
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            s.listen()
            socks.append(s)
        yield
    finally:
        for s in socks:
            s.close()


def test_a_started_broker_listens_on_every_port(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "m", extra_listeners=2).start()
    try:
        for port in (broker.port, *broker.extra_ports):  # no waiting: start() returned
            socket.create_connection((broker.host, port), timeout=5).close()
    finally:
        broker.stop()


def test_ports_taken_before_the_start_are_picked_again(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "m", extra_listeners=1)
    picked = broker.port, broker.extra_ports[0]
    with listening(picked[1]):  # the extra listener's: mosquitto binds the first, then fails
        broker.start()
    try:
        assert broker.extra_ports[0] != picked[1]
        socket.create_connection((broker.host, broker.extra_ports[0]), timeout=5).close()
        assert broker.log_text().count("Address already in use") == 1
        port = broker.port
        broker.restart()  # clients know the port now: it stays
        assert broker.port == port
    finally:
        broker.stop()


def test_a_port_given_by_the_caller_is_not_replaced(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        broker = Mosquitto(tmp_path / "m", port=port)
        with pytest.raises(RuntimeError, match="Address already in use"):
            broker.start()
    assert broker.proc is None


def test_free_ports_are_all_different_and_free() -> None:
    """NatsCluster takes 4 ports per node from one call: picked one at a time and released,
    the same port came back twice and a node could not bind it (CI, 16:34 on 2026-12-01)."""
    from firmware_sim.broker import free_ports

    ports = free_ports(400)
    assert len(set(ports)) == 400
    for port in ports[:20]:  # released: each can be bound now
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
