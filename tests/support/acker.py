"""A tiny stand-in for the hub's ingest in simulator tests: records uplink, acks on demand.

Subscribes to every gateway's uplink (not shared), records each message, and publishes
an Ack ``stored`` for events/telemetry whose id ``should_ack`` accepts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

import protocols as p


class Acker:
    def __init__(self, host: str, port: int, should_ack: Callable[[Any], bool] = lambda _m: True) -> None:
        self.should_ack = should_ack
        self.messages: list[tuple[p.Topic, Any]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"acker-{time.monotonic_ns()}")
        self.client.on_message = self._on_message
        self._subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe([(f, 1) for f in p.hub_subscriptions(shared=False)])
        if not self._subscribed.wait(10):
            raise TimeoutError("acker: no SUBACK")

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        topic, m = p.decode_for(msg.topic, msg.payload)
        with self.lock:
            self.messages.append((topic, m))
        if topic.channel in (p.Channel.EVENT, p.Channel.TELEMETRY) and self.should_ack(m):
            self.ack(m.gw, m.id, p.AckStatus.STORED)

    def ack(self, gw: str, mid: str, status: p.AckStatus, by: str | None = None) -> None:
        ack = p.Ack(gw=gw, ts=int(time.time() * 1000), items=[p.AckItem(id=mid, status=status, by=by)])
        self.client.publish(str(p.Topic.of(gw, p.Channel.ACK)), p.encode(ack), qos=1)

    def of(self, gw: str, channel: p.Channel) -> list[Any]:
        with self.lock:
            return [m for t, m in self.messages if t.gateway_id == gw and t.channel == channel]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
