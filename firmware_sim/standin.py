"""A stand-in for the hub that only acks (paho): for demos and benchmarks without the hub.

Acks every event and telemetry message with ``stored`` (like the hub after its commit),
counts messages per channel and records receive times of events (for latency figures).
Replaced by the real hub (hub/runner.py) in the benchmarks that measure the hub.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import protocols as p


class StandIn:
    def __init__(self, host: str, port: int, ack: bool = True) -> None:
        self.counts: Counter[str] = Counter()
        self.event_latency_ms: list[float] = []
        self.lock = threading.Lock()
        self.ack = ack
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-standin-{time.monotonic_ns()}",
                                  clean_session=True)  # fmt: skip
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=60)
        self.client.subscribe([(f, 1) for f in p.hub_subscriptions(shared=False)])
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        channel = parts[-1]
        self.counts[channel] += 1
        if channel in ("event", "telemetry"):
            doc = orjson.loads(msg.payload)
            if channel == "event":
                with self.lock:
                    self.event_latency_ms.append(time.time() * 1000 - doc["ts"])
            if self.ack:
                ack = {"v": "1.0", "gw": parts[3], "ts": int(time.time() * 1000),
                       "items": [{"id": doc["id"], "status": "stored"}]}  # fmt: skip
                self.client.publish(f"{p.ROOT}/gw/{parts[3]}/ack", orjson.dumps(ack), qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
