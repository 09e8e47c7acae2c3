"""The shared Mosquitto fixture: a real broker that carries a QoS 1 protocol message."""

from __future__ import annotations

import queue
import time

import paho.mqtt.client as mqtt
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
