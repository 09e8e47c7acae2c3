"""A scripted gateway for hub tests: real MQTT login, publishes protocol messages, collects
the hub's acks. Not the edge agent: only what the hub's tests need to drive it."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import protocols as p
from safehome.testing.poll import until
from tests.support.hub_mqtt import Client


class GatewayBroker(Protocol):
    """What a scripted gateway needs of a broker (SecuredBroker: Mosquitto; a NATS cluster)."""

    def gateway(self, gw: str) -> str: ...

    def client(self, username: str | None, password: str | None, **kw: object) -> Client: ...


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ScriptedGateway:
    secured: GatewayBroker
    gw: str
    heartbeat_s: int = 30
    lwt: bool = True
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    acks: dict[str, list[p.AckItem]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        password = self.secured.gateway(self.gw)
        will = None
        if self.lwt:
            lwt = p.Status(gw=self.gw, state=p.GatewayState.OFFLINE, reason="lwt", ts=now_ms(), synced=True,
                           heartbeat_s=self.heartbeat_s)
            will = (str(p.Topic.of(self.gw, "status")), p.encode(lwt))
        self.client: Client = self.secured.client(self.gw, password, client_id=self.gw, will=will)

    def connect(self) -> ScriptedGateway:
        self.client.connect()
        assert self.client.subscribe(str(p.Topic.of(self.gw, "ack"))) == [1]
        return self

    def event(self, kind: p.EventKind = p.EventKind.SMOKE, sensor: str | None = "smoke-1",
              seq: int | None = None, **kw: object) -> p.Event:
        fields: dict[str, object] = {
            "gw": self.gw, "seq": next(self.seq) if seq is None else seq, "id": p.new_event_id(),
            "ts": now_ms(), "synced": True, "sensor": sensor, "kind": kind, "state": p.EventState.ALARM,
        }
        fields.update(kw)
        return p.Event.model_validate(fields, strict=False)

    def telemetry(self, readings: Iterable[tuple[str, str, float]], ts: int | None = None) -> p.Telemetry:
        """Readings keyed (sensor, metric, ts) are stored once: pass distinct ``ts`` per batch."""
        return p.Telemetry(gw=self.gw, seq=next(self.seq), id=p.new_event_id(), ts=ts or now_ms(), synced=True,
                           readings=[p.Reading(sensor=s, metric=m, value=v) for s, m, v in readings])

    def status(self, state: p.GatewayState = p.GatewayState.ONLINE, reason: str = "heartbeat",
               sensors: Iterable[str] = ()) -> p.Status:
        return p.Status.model_validate({
            "gw": self.gw, "state": state, "reason": reason, "seq": next(self.seq), "ts": now_ms(),
            "synced": True, "heartbeat_s": self.heartbeat_s,
            "sensors": [{"id": s, "model": "smoke-dry-contact"} for s in sensors],
        }, strict=False)

    def send(self, msg: p.Event | p.Telemetry | p.Status, retain: bool = False, wait: bool = True) -> None:
        """``wait`` False: do not wait for the PUBACK (:meth:`Client.publish` with ``within`` None)."""
        channel = {p.Event: "event", p.Telemetry: "telemetry", p.Status: "status"}[type(msg)]
        self.client.publish(str(p.Topic.of(self.gw, channel)), p.encode(msg), qos=1,
                            retain=retain or channel == "status", within=10 if wait else None)

    def send_raw(self, channel: str, payload: bytes) -> None:
        self.client.publish(f"{p.ROOT}/gw/{self.gw}/{channel}", payload, qos=1)

    def collect_acks(self) -> dict[str, list[p.AckItem]]:
        for m in self.client.drain():
            ack = p.decode(p.Channel.ACK, bytes(m.payload), p.Ack)
            assert ack.gw == self.gw
            for item in ack.items:
                self.acks.setdefault(item.id, []).append(item)
        return self.acks

    async def acked(self, ids: Iterable[str], times: int = 1, within: float = 20) -> None:
        wanted = list(ids)
        await until(lambda: all(len(self.collect_acks().get(i, [])) >= times for i in wanted), within,
                    f"{len(wanted)} acks on {self.gw}")

    def close(self) -> None:
        self.client.close()
