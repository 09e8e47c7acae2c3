"""The hostile gateway of ``safehome bench flood``: one gateway publishing N events at QoS 1
as fast as paho goes, counting the hub's ``stored`` acks. A process of its own, so that its
CPU is not the measuring process's. Prints one JSON line when it starts publishing and one
at the end (or on SIGTERM): ``{"published_s": …, "stored": …, "stored_s": …}``.

    python -m bench.flooder --port P --gateway GW --count 20000 --kind smoke --sensors 10
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import protocols as p


def events(gw: str, count: int, kind: p.EventKind, sensors: int) -> list[bytes]:
    now = int(time.time() * 1000)
    return [
        p.encode(
            p.Event(gw=gw, seq=i + 1, id=p.new_event_id(), ts=now, synced=True, sensor=f"flood-{i % sensors}",
                    kind=kind, state=p.EventState.ALARM)
        )
        for i in range(count)
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--kind", default="smoke")
    ap.add_argument("--sensors", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=600.0)
    a = ap.parse_args()
    payloads = events(a.gateway, a.count, p.EventKind(a.kind), a.sensors)
    stored: set[str] = set()
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        ack = p.decode(p.Channel.ACK, bytes(m.payload), p.Ack)
        stored.update(i.id for i in ack.items if i.status is p.AckStatus.STORED)
        if len(stored) >= a.count:
            done.set()

    signal.signal(signal.SIGTERM, lambda *_: done.set())  # report what was acked so far
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=a.gateway)
    c.max_inflight_messages_set(1000)  # "as fast as it can": not the edge's window of 16
    c.on_message = on_message
    c.on_subscribe = lambda *_a: subscribed.set()
    c.connect(a.host, a.port)
    c.loop_start()
    c.subscribe(str(p.Topic.of(a.gateway, "ack")), qos=1)
    subscribed.wait(10)
    topic = str(p.Topic.of(a.gateway, "event"))
    print(json.dumps({"started": True}), flush=True)
    t0 = time.monotonic()
    infos = [c.publish(topic, m, qos=1) for m in payloads]
    for info in infos:
        while not info.is_published() and not done.is_set():
            info.wait_for_publish(0.5)
    published = time.monotonic() - t0
    done.wait(a.timeout)
    stored_s = time.monotonic() - t0
    c.disconnect()
    c.loop_stop()
    print(json.dumps({"published_s": published, "stored": len(stored), "stored_s": stored_s}), flush=True)


if __name__ == "__main__":
    main()
