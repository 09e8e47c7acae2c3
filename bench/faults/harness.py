"""The fault harness: a whole system on loopback whose parts can be killed, cut and restored.

One Mosquitto (restartable on the same port), one PostgreSQL database reached by the hub
through a :class:`~bench.faults.proxy.TcpProxy` (the database outage), two full
``safehome hub run`` workers on the shared subscription, a webhook receiver subscribed to
the district, and a fleet of simulated gateways (``firmware_sim``) that reach the broker
through another proxy (the partition). Every alarm a gateway raises goes through
:meth:`Harness.raise_alarm`, which records it: that record is what the hub's tables are
counted against (bench/faults/count.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

import protocols as p
from bench.faults.proxy import TcpProxy
from bench.faults.receiver import Receiver
from bench.system import subscribe_webhook
from firmware_sim.broker import LocalBroker
from firmware_sim.fleet import Fleet, FleetSettings, specs_from_registry
from firmware_sim.registry import Registry, generate, registry_to_yaml
from safehome.demo_hub import LOOPBACK_WEBHOOKS_TOML, _hub_process, mqtt_toml

#: the kinds a scenario raises, one per (gateway, sensor): each must become one alarm
ALARM_SENSORS = (("smoke-1", p.EventKind.SMOKE),)


@dataclass(frozen=True)
class Raised:
    """One alarm event as the gateway recorded it."""

    id: str
    gateway_id: str
    sensor_id: str
    kind: str
    at: float  #: wall clock when the gateway raised it
    state: str = "alarm"  #: or "restore" (counted as an event, not as an alarm)


@dataclass
class HarnessConfig:
    gateways: int = 30
    workers: int = 2
    escalate_after_s: int = 2  #: one escalation step per alarm, soon, so that it is counted
    resend_s: float = 2.0  #: the gateways' first resend (the fleet's default is 10 s)
    seed: int = 1
    agents: int = 0  #: the last gateways of the registry, left to real edge agents (bench/faults/power.py)


@dataclass
class Hub:
    name: str
    proc: subprocess.Popen[bytes] | None = None
    api: str = ""


@dataclass
class Harness:
    config: HarnessConfig
    workdir: Path
    registry: Registry
    broker: LocalBroker
    db_url: str  #: direct, for counting
    db_proxy: TcpProxy  #: the hub's way to the database
    mqtt_proxy: TcpProxy  #: the gateways' way to the broker
    receiver: Receiver
    hubs: list[Hub] = field(default_factory=list)
    fleet: Fleet | None = None
    raised: list[Raised] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)  #: gateway ids the fleet leaves to real agents
    clock_skew_s: float = 0.0  #: added to the simulated gateways' wall clock (a clock jump)
    _used: set[str] = field(default_factory=set)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: asyncio.Task[None] | None = None

    # --- hub workers -------------------------------------------------------------------
    def _hub_url(self) -> str:
        url = make_url(self.db_url).set(host=self.db_proxy.host, port=self.db_proxy.port)
        return url.render_as_string(hide_password=False)

    def _extra(self) -> list[str]:
        step = (
            f'{{ name = "ack_{self.config.escalate_after_s}s", after_s = {self.config.escalate_after_s}, '
            'awaits = "acknowledged", tier = "district" }'
        )
        return ["[hub.alarms]", f"escalation = {{ alarm = [ {step} ] }}", *LOOPBACK_WEBHOOKS_TOML]

    async def start_hub(self, hub: Hub) -> None:
        url = self._hub_url()
        proc, base, _log = await asyncio.to_thread(
            _hub_process,
            self.workdir,
            hub.name,
            url,
            mqtt_toml(self.broker.host, self.broker.port),
            None,
            url,
            self._extra(),
        )
        hub.proc, hub.api = proc, base

    def kill_hub(self, hub: Hub) -> None:
        """SIGKILL: no goodbye, no flush, leases and in-flight messages left behind."""
        assert hub.proc is not None
        os.kill(hub.proc.pid, signal.SIGKILL)
        hub.proc.wait(30)
        hub.proc = None

    # --- the broker --------------------------------------------------------------------
    def kill_broker(self) -> None:
        assert self.broker.proc is not None
        os.kill(self.broker.proc.pid, signal.SIGKILL)
        self.broker.proc.wait(30)
        self.broker.proc = None

    def start_broker(self) -> None:
        self.broker.start()  # same port and config: clients reconnect to where it was

    # --- gateways ----------------------------------------------------------------------
    def fresh_gateways(self, n: int) -> list[str]:
        """``n`` gateways that have raised nothing yet (each alarm is then a new alarm)."""
        assert self.fleet is not None
        out = [g for g in self.fleet.gateways if g not in self._used][:n]
        if len(out) < n:
            raise RuntimeError(f"only {len(out)} unused gateways left, {n} wanted: raise --gateways")
        self._used.update(out)
        return out

    def take_agents(self, n: int) -> list[str]:
        """``n`` of the gateways reserved for real edge agents, not used before."""
        out = [g for g in self.agents if g not in self._used][:n]
        if len(out) < n:
            raise RuntimeError(f"{n} real agents wanted, {len(out)} left: raise HarnessConfig.agents")
        self._used.update(out)
        return out

    def raise_alarm(self, gw: str) -> Raised:
        assert self.fleet is not None
        sensor, kind = ALARM_SENSORS[0]
        pend = self.fleet.trigger(gw, kind, sensor=sensor)
        r = Raised(pend.id, gw, sensor, kind.value, time.time())
        self.raised.append(r)
        return r

    async def raise_spread(self, n: int, over_s: float) -> list[Raised]:
        """Raise one alarm on each of ``n`` fresh gateways, spread over ``over_s`` seconds."""
        out = []
        for gw in self.fresh_gateways(n):
            out.append(self.raise_alarm(gw))
            await asyncio.sleep(over_s / max(1, n))
        return out

    def pending(self) -> int:
        assert self.fleet is not None
        return sum(len(g.pending) for g in self.fleet.gateways.values())

    async def close(self) -> None:
        self._stop.set()
        if self._runner is not None:
            await self._runner
        if self.fleet is not None:
            await self.fleet.stop()
        for h in self.hubs:
            if h.proc is not None and h.proc.poll() is None:
                h.proc.terminate()
        for h in self.hubs:
            if h.proc is not None:
                try:
                    h.proc.wait(20)
                except subprocess.TimeoutExpired:
                    h.proc.kill()
                    h.proc.wait()


@contextlib.contextmanager
def _database() -> Iterator[str]:
    from safehome.testing.postgres import postgres_server  # the throwaway server the tests use too

    with postgres_server() as server:
        url = server.create_database("safehome_faults")
        try:
            yield url
        finally:
            server.drop_database(url)


def _prepare(db_url: str, registry_path: Path, hook_url: str, district: str) -> None:
    from hub.db.engine import make_engine, make_session_factory
    from hub.db.migrate import upgrade
    from hub.registry.service import import_register

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        import_register(make_session_factory(engine), [registry_path])
    finally:
        engine.dispose()
    subscribe_webhook(db_url, hook_url, district)


@contextlib.asynccontextmanager
async def harness(config: HarnessConfig | None = None) -> AsyncIterator[Harness]:
    cfg = config or HarnessConfig()
    with contextlib.ExitStack() as stack:
        wd = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="safehome-faults-")))
        db_url = stack.enter_context(_database())
        reg = generate(cfg.gateways + cfg.agents, cfg.seed)
        reg_path = wd / "registry.yaml"
        reg_path.write_text(registry_to_yaml(reg))
        broker = LocalBroker(wd / "broker").start()
        stack.callback(broker.stop)
        direct = make_url(db_url)
        db_proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432).start()
        stack.callback(db_proxy.stop)
        mqtt_proxy = TcpProxy(broker.host, broker.port).start()
        stack.callback(mqtt_proxy.stop)
        receiver = Receiver()
        hook_url = receiver.start()
        stack.callback(receiver.stop)
        await asyncio.to_thread(_prepare, db_url, reg_path, hook_url, reg.district.id)
        h = Harness(cfg, wd, reg, broker, db_url, db_proxy, mqtt_proxy, receiver)
        try:
            h.hubs = [Hub(f"hub-{chr(ord('a') + i)}") for i in range(cfg.workers)]
            await asyncio.gather(*(h.start_hub(x) for x in h.hubs))
            settings = FleetSettings(
                host=mqtt_proxy.host, port=mqtt_proxy.port, seed=cfg.seed, resend_s=cfg.resend_s,
                resend_max_s=4 * cfg.resend_s, keepalive=10, reconnect_min_s=0.2, reconnect_max_s=1.5,
            )  # fmt: skip
            specs = specs_from_registry(reg)
            h.agents = [g.id for g in specs[cfg.gateways :]]
            h.fleet = Fleet(specs[: cfg.gateways], settings, clock=lambda: time.time() + h.clock_skew_s)
            await h.fleet.start()
            h._runner = asyncio.create_task(h.fleet.run(h._stop))
            yield h
        finally:
            await h.close()
