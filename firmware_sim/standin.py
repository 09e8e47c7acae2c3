"""A stand-in for the hub that only acks (paho): for demos and benchmarks without the hub.

Acks every event and telemetry message with ``stored`` (like the hub after its commit),
counts messages per channel and records receive times of events (for latency figures).
Replaced by the real hub (hub/runner.py) in the benchmarks that measure the hub.
Given several broker addresses (the nodes of a cluster) it fails over between them like a
gateway (protocols/failover.py, :func:`follow`) and subscribes again on every connect.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import protocols as p
from protocols.failover import Address, Rotation


def follow(
    client: mqtt.Client, addresses: Sequence[Address], key: str, on_down: Callable[[], None] = lambda: None
) -> Rotation:
    """Make paho's own reconnect loop (its delay: ``reconnect_delay_set``) go to the next
    address after a failed connect or a lost link, and stay on one that works (call
    ``rotation.up()`` in ``on_connect``). Start the client with
    ``connect_async(rotation.current…)`` and ``loop_start()``."""
    rot = Rotation(addresses, key, lambda _rounds: 0.0, spread_s=0.0)

    def next_address(*_: object) -> None:
        on_down()
        rot.down()
        # paho's host/port setters refuse until the socket state is "closed", which it is
        # not yet inside these callbacks; reconnect() reads these two fields
        client._host, client._port = rot.current.host, rot.current.port

    client.on_connect_fail = next_address
    client.on_disconnect = next_address
    return rot


class StandIn:
    def __init__(self, host: str, port: int, ack: bool = True, servers: Sequence[Address] = ()) -> None:
        """``servers``: every node of a clustered broker (then ``host``/``port`` are unused)."""
        self.counts: Counter[str] = Counter()
        self.event_latency_ms: list[float] = []
        self.lock = threading.Lock()
        self.ack = ack
        self.connected = threading.Event()  #: linked (to :attr:`server`)
        client_id = f"bench-standin-{time.monotonic_ns()}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(1, 4)
        self.rotation = follow(self.client, tuple(servers) or (Address(host, port),), client_id, self.connected.clear)
        first = self.rotation.current
        if len(self.rotation.addresses) == 1:
            self.client.connect(first.host, first.port, keepalive=60)  # a refused connect: an error now
        else:
            self.client.connect_async(first.host, first.port, keepalive=60)  # any node will do
        self.client.loop_start()
        if not self.connected.wait(10):
            self.close()
            raise TimeoutError(f"stand-in hub: no broker answered at {', '.join(map(str, self.rotation.addresses))}")

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object = None) -> None:
        if getattr(rc, "is_failure", False):
            return
        self.rotation.up()
        # clean session: the subscriptions are made again on every (re)connect
        client.subscribe([(f, 1) for f in p.hub_subscriptions(shared=False)])
        self.connected.set()

    @property
    def server(self) -> Address:
        return self.rotation.current

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
