"""Gateway power cut at random points, on REAL edge agents (``firmware_sim``'s simulated Pi:
the agent in a child process that a power cut SIGKILLs, then boots on the same data).

Each cycle: smoke closes the detector's relay; at a random moment (before the agent has
debounced it, while it stores it, while it sends it, after the ack) the supply is cut;
dark for a random while; the Pi boots with the relay as the house left it (still closed);
then the smoke clears. The invariant: every incident (relay closed for a while) ends as a
smoke alarm event stored at the hub, raised either before the cut or at boot, and every
event that any agent put on the wire is stored once.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import protocols as p
from bench.faults.count import Tally
from bench.faults.harness import Harness, Raised
from firmware_sim.firmware.models import Drive
from firmware_sim.firmware.pi import SimulatedPi

SENSOR = {"id": "smoke-1", "model": "smoke-dry-contact"}


def agent_settings(workdir: Path, gw: str, host: str, port: int) -> dict[str, Any]:
    return {
        "gateway_id": gw,
        "environment": "development",
        "data_dir": workdir / gw / "data",
        "state_dir": workdir / gw / "run",
        "pin_factory": "mock",
        "mqtt": {"host": host, "port": port, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
        "sensors": [SENSOR],
        "outputs": [],
        "poll_ms": 10,
        "heartbeat_s": 30,
        "telemetry_s": 3600,
        "ack_timeout_s": 1.0,
        "resend_max_s": 2.0,
        "time_sync": "assume_synced",
        "watchdog": False,
    }


@dataclass(frozen=True)
class Incident:
    gateway_id: str
    start: float  #: wall clock when the relay closed
    end: float  #: when it opened


async def _cycles(h: Harness, gw: str, cycles: int, rng: random.Random, out: list[Incident]) -> SimulatedPi:
    pi = SimulatedPi(None, agent_settings(h.workdir / "agents", gw, h.broker.host, h.broker.port))
    await pi.boot()
    for _ in range(cycles):
        start = time.time()
        await pi.apply(Drive(0, "smoke-1", "contact", 1.0, "smoke"))
        await asyncio.sleep(rng.uniform(0.0, 1.0))  # the cut lands anywhere from debounce to ack
        await pi.power_off()
        await asyncio.sleep(rng.uniform(0.1, 1.5))
        await pi.boot()
        await asyncio.sleep(1.0)  # the relay is still closed: longer than the debounce after boot
        await pi.apply(Drive(0, "smoke-1", "contact", 0.0, "smoke cleared"))
        out.append(Incident(gw, start, time.time()))
        await asyncio.sleep(rng.uniform(0.3, 1.0))
    return pi


class Wire:
    """Records every event the gateways publish (a plain subscriber: it never acks)."""

    def __init__(self, host: str, port: int) -> None:
        self.events: dict[str, Raised] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"faults-wire-{time.monotonic_ns()}")
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe("safehome/v1/gw/+/event", qos=1)
        if not subscribed.wait(10):
            raise TimeoutError("wire recorder: no SUBACK")

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            _topic, e = p.decode_for(msg.topic, bytes(msg.payload))
        except p.ProtocolError:
            return  # the hub counts bad input; here only events matter
        if isinstance(e, p.Event):
            with self.lock:
                self.events.setdefault(
                    e.id, Raised(e.id, e.gw, e.sensor or "", e.kind.value, e.ts / 1000, e.state.value)
                )

    def raised(self, gateways: list[str]) -> list[Raised]:
        with self.lock:
            return [r for r in self.events.values() if r.gateway_id in set(gateways)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def run(
    h: Harness, agents: list[str], cycles: int, seed: int, settle: Callable[[list[Raised]], Awaitable[Tally]]
) -> tuple[Tally, list[Incident], list[str]]:
    """Play the cycles on every agent at once, then (agents still up, so they can resend)
    settle on every event they put on the wire. Returns the tally, the incidents and the
    incidents that no stored smoke alarm covers."""
    wire = Wire(h.broker.host, h.broker.port)
    incidents: list[Incident] = []
    pis: list[SimulatedPi] = []
    try:
        pis = list(await asyncio.gather(
            *(_cycles(h, gw, cycles, random.Random(f"{seed}/{gw}"), incidents) for gw in agents)
        ))  # fmt: skip
        t = await settle(wire.raised(agents))
        raised = wire.raised(agents)
        if len(raised) != t.raised:  # resends after boot brought ids the first count had not seen
            t = await settle(raised)
    finally:
        for pi in pis:
            await pi.shutdown()
        wire.close()
    stored = await asyncio.to_thread(stored_ids, h.db_url, agents)
    alarms = [r for r in raised if r.state == "alarm" and r.id in stored]
    problems = [
        f"{i.gateway_id}: no smoke alarm stored for the incident at {time.strftime('%H:%M:%S', time.gmtime(i.start))}"
        for i in incidents
        if not any(r.gateway_id == i.gateway_id and i.start - 0.5 <= r.at <= i.end + 0.5 for r in alarms)
    ]
    return t, incidents, problems


def stored_ids(db_url: str, gateways: list[str]) -> set[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as c:
            rows = c.execute(text("SELECT id, gateway_id FROM events")).all()
    finally:
        engine.dispose()
    return {str(i) for i, g in rows if g in set(gateways)}
