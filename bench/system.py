"""The whole system for benchmarks: local Mosquitto (or a 3-node NATS cluster), the real hub
on SQLite (child process, as the demo starts it), a generated registry and a local webhook
receiver subscribed to the district's alarms (the "console/webhook subscriber" that alarm
latency is measured at). Mosquitto loads the deployment's rate-limit plugin with its default
limits (docs/broker.md); NATS has no rate limit (docs/broker.md, NATS's MQTT limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from bench import procstat
from firmware_sim.broker import LocalBroker, free_port
from firmware_sim.fleet import FleetSettings
from firmware_sim.procs import die_with_parent
from firmware_sim.registry import Registry, generate, registry_to_yaml
from protocols.failover import FAILOVER_SPREAD_S, parse_servers
from safehome.bundle import HubAddress
from safehome.demo_hub import LOOPBACK_WEBHOOKS_TOML, HubHandle, mqtt_toml, nats_mqtt_toml, start_real_hub
from safehome.testing.nats import NatsCluster, can_guard_logins


class _Receiver:
    """The ASGI app of the receiver process: answers 200 at once, appends one line per POST
    (arrival time, client, body) to a file that the bench process reads."""

    def __init__(self, out: Path) -> None:
        self.out = out.open("ab")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        t = time.time()
        body, more = b"", True
        while more:
            msg = await receive()
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        client = ":".join(map(str, scope.get("client") or ()))
        self.out.write(f"{t}\t{client}\t".encode() + body.replace(b"\n", b" ") + b"\n")
        self.out.flush()


def _serve(out: Path, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: the response head and body are two writes, and
    # Nagle + delayed ACK held each answer ~40 ms
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(_Receiver(out), log_level="warning", access_log=False, lifespan="off",
                            backlog=2048, timeout_keep_alive=30)  # fmt: skip
    uvicorn.Server(config).run(sockets=[sock])


@dataclass
class Webhooks:
    """Records the arrival time of every webhook POST (first per gateway, and per gateway and
    alarm kind, kept separately).

    The receiver is an asyncio server (uvicorn, listen backlog 2048, HTTP keep-alive) in a
    process of its own: Python's ``http.server`` (backlog 5, one connection per request) was
    itself the bottleneck under a burst (a storm p99 of 130 ms became 2.6 s in a trial), and
    in the bench's process it would wait for the GIL behind the simulated gateways.
    ``clients`` counts the distinct connections the hub used (its client keeps them alive)."""

    path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    _received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    _first_gw: dict[str, float] = field(default_factory=dict)
    _first_kind: dict[tuple[str, str], float] = field(default_factory=dict)
    _clients: set[str] = field(default_factory=set)
    _offset: int = 0

    def start(self, workdir: Path | None = None) -> str:
        self.path = (workdir or Path(tempfile.mkdtemp(prefix="safehome-hooks-"))) / "webhooks.log"
        self.path.touch()
        port = free_port()
        code = f"from pathlib import Path; from bench.system import _serve; _serve(Path({str(self.path)!r}), {port})"
        self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                                     preexec_fn=die_with_parent)  # fmt: skip
        url = f"http://127.0.0.1:{port}/alarms"
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return url
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the bench webhook receiver did not start") from None
                time.sleep(0.05)

    def _poll(self) -> None:
        if self.path is None:
            return
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        for line in data[:end].splitlines():
            t_raw, client, body = line.split(b"\t", 2)
            t = float(t_raw)
            self._clients.add(client.decode())
            try:
                doc = json.loads(body)
            except ValueError:
                continue
            gw = str(doc.get("gateway_id") or (doc.get("alarm") or {}).get("gateway_id") or "")
            self._received.append((t, doc))
            self._first_gw.setdefault(gw, t)
            self._first_kind.setdefault((gw, str(doc.get("kind", ""))), t)

    @property
    def received(self) -> list[tuple[float, dict[str, Any]]]:
        self._poll()
        return self._received

    @property
    def first_by_gateway(self) -> dict[str, float]:
        self._poll()
        return self._first_gw

    @property
    def first_by_kind(self) -> dict[tuple[str, str], float]:
        self._poll()
        return self._first_kind

    @property
    def clients(self) -> set[str]:
        self._poll()
        return self._clients

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


#: The bench gateways' one password on a NATS cluster (every gateway logs in there; one
#: bcrypt hash for all: NatsCluster.gateways). Mosquitto's bench gateways log in by username.
BENCH_PASSWORD = "bench-gateway-secret"


@dataclass
class NatsBroker:
    """A 3-node NATS cluster seen as the benches see a broker: ``host``/``port``/``pid`` are
    its first node's, :attr:`servers` every node's MQTT listener."""

    cluster: NatsCluster

    @property
    def host(self) -> str:
        return self.cluster.host

    @property
    def port(self) -> int:
        return self.cluster.mqtt_ports[0]

    @property
    def pid(self) -> int | None:
        proc = self.cluster.procs[0]
        return proc.pid if proc is not None else None


@dataclass
class System:
    workdir: Path
    registry: Registry
    registry_path: Path
    broker: LocalBroker | NatsBroker
    hub: HubHandle
    webhooks: Webhooks
    db_url: str

    @property
    def backend(self) -> str:
        return "nats" if isinstance(self.broker, NatsBroker) else "mosquitto"

    @property
    def servers(self) -> list[str]:
        """Every broker address a gateway may use, host:port."""
        if isinstance(self.broker, NatsBroker):
            c = self.broker.cluster
            return [f"{c.host}:{port}" for port in c.mqtt_ports]
        return [f"{self.broker.host}:{self.broker.port}"]

    @property
    def broker_pids(self) -> list[int]:
        if isinstance(self.broker, NatsBroker):
            return [p.pid for p in self.broker.cluster.procs if p is not None and p.poll() is None]
        return [self.broker.pid] if self.broker.pid else []

    def credentials(self, gw: str) -> tuple[str | None, str | None]:
        """A bench gateway's login (for :class:`firmware_sim.fleet.Fleet`)."""
        return gw, BENCH_PASSWORD if self.backend == "nats" else None

    @property
    def gateway_link(self) -> HubAddress:
        """What the system's bundles tell a gateway about its broker (QoS, retain, spread): the
        bench's simulated gateways do what a provisioned one does."""
        return HubAddress.for_backend(self.backend, parse_servers(self.servers, 1883), tls=False)

    def fleet_settings(self, **kw: Any) -> FleetSettings:
        """Fleet settings for the system's broker: every address of a cluster, and the link
        settings its bundles give (:attr:`gateway_link`)."""
        a = self.gateway_link
        given = {
            "servers": self.servers,
            "downlink_qos": a.downlink_qos,
            "failover_spread_s": FAILOVER_SPREAD_S if a.failover_spread_s is None else a.failover_spread_s,
            "uplink_qos": a.uplink_qos,
            "retain_status": a.retain_status,
        }
        return FleetSettings.model_validate({**given, **kw})

    def fleet_args(self) -> list[str]:
        """``safehome sim fleet`` options for the system's broker (as :meth:`fleet_settings`)."""
        s = self.fleet_settings()
        out = [arg for server in self.servers for arg in ("--server", server)]
        out += ["--downlink-qos", str(s.downlink_qos), "--failover-spread", str(s.failover_spread_s)]
        out += ["--uplink-qos", str(s.uplink_qos), "--retain-status" if s.retain_status else "--no-retain-status"]
        return out + (["--password-template", BENCH_PASSWORD] if self.backend == "nats" else [])


def subscribe_webhook(db_url: str, url: str, district: str) -> None:
    from hub.alarms.store.models import WebhookSubscription
    from hub.db.engine import make_engine, make_session_factory
    from hub.sealing import dev_box

    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as s, s.begin():
            # the bench hub runs with env = "dev": its secrets key is the development key
            s.add(WebhookSubscription(url=url, secret_sealed=dev_box().seal("bench-webhook-secret"), region_kind="district",
                                      region_id=district, name="bench receiver", active=True))  # fmt: skip
    finally:
        engine.dispose()


@contextlib.contextmanager
def _database(wd: Path, postgres: bool) -> Iterator[str]:
    """The hub's database URL: a SQLite file, or a throwaway PostgreSQL database."""
    if not postgres:
        yield f"sqlite:///{wd / 'hub.db'}"
        return
    from safehome.testing.postgres import postgres_server  # the server the tests use too

    with postgres_server() as server:
        url = server.create_database("safehome_bench")
        try:
            yield url
        finally:
            server.drop_database(url)


def broker_ratelimit(workdir: Path, homes: int, rate: float | None = None) -> str:
    """mosquitto.conf lines loading the deployment's rate-limit plugin (``rate`` None: the
    deployment's default, ``[broker] gateway_rate``; 0: loaded, limits nothing). The bench's
    gateways log in by username only, so the isolation plugin and the password file are not
    loaded here (``safehome bench attack`` runs the generated broker whole)."""
    from hub.broker import plugin
    from hub.broker.config import BrokerSettings, render_ratelimit

    default = BrokerSettings(tls=False)
    so = plugin.build(workdir / "safehome_ratelimit.so", source=plugin.RATELIMIT_SOURCE)
    # With `max_queued_messages 0` (LocalBroker's "unlimited"), Mosquitto 2.0.11 drops the
    # connection of a client whose QoS 1 PUBLISH is refused instead of answering it; a later
    # line overrides it (the deployment sizes it the same way: docs/broker.md).
    queue = f"max_queued_messages {BrokerSettings(tls=False, gateways=homes).queued_messages}\n"
    return render_ratelimit(so, default.gateway_rate if rate is None else rate, default.gateway_burst) + queue


def _start_broker(wd: Path, reg: Registry, backend: str, broker_rate: float | None) -> LocalBroker | NatsBroker:
    """Mosquitto with the rate-limit plugin, or a 3-node NATS cluster (the product's config,
    users and ACL: safehome/testing/nats.py) with every gateway's credentials."""
    if backend == "nats":
        # with each node's login rate guard (hub/broker/nats.py render_nftables) where it can load
        cluster = NatsCluster(wd / "nats", size=3, login_guard=can_guard_logins())
        cluster.gateways({g.id: BENCH_PASSWORD for g in reg.gateways})
        return NatsBroker(cluster.start())
    return LocalBroker(wd / "broker", extra_config=broker_ratelimit(wd, len(reg.gateways), broker_rate)).start()


def _hub_mqtt(broker: LocalBroker | NatsBroker) -> list[str]:
    if isinstance(broker, NatsBroker):
        c = broker.cluster
        return nats_mqtt_toml([(c.host, port) for port in c.mqtt_ports], c.nats_urls, c.hub_password)
    return mqtt_toml(broker.host, broker.port)


@contextlib.contextmanager
def system(
    homes: int,
    seed: int = 1,
    split_lanes: bool = False,
    postgres: bool = False,
    broker_rate: float | None = None,
    *,
    broker: str = "mosquitto",
    workers: int = 1,
    keep_logs: Path | None = None,
) -> Iterator[System]:
    """``broker``: "mosquitto" (one process) or "nats" (a 3-node cluster; the hub on backend
    nats). ``workers``: identical hub processes (each every lane), when not ``split_lanes``.
    ``keep_logs``: a directory the hub workers' and NATS nodes' logs are copied to at the end
    (the work directory is deleted)."""
    with tempfile.TemporaryDirectory(prefix="safehome-bench-") as tmp, _database(Path(tmp), postgres) as db_url:
        wd = Path(tmp)
        reg = generate(homes, seed)
        path = wd / "registry.yaml"
        path.write_text(registry_to_yaml(reg))
        b = _start_broker(wd, reg, broker, broker_rate)
        hooks = Webhooks()
        hub: HubHandle | None = None
        try:
            url = hooks.start()
            hub = start_real_hub(wd, b.host, b.port, path, reg, split_lanes=split_lanes, db_url=db_url,
                                 mqtt=_hub_mqtt(b), workers=workers, extra=LOOPBACK_WEBHOOKS_TOML)  # fmt: skip
            subscribe_webhook(db_url, url, reg.district.id)
            yield System(wd, reg, path, b, hub, hooks, db_url)
        finally:
            if hub is not None:
                hub.stop()
            hooks.stop()
            b.cluster.stop() if isinstance(b, NatsBroker) else b.stop()
            if keep_logs is not None:
                keep_logs.mkdir(parents=True, exist_ok=True)
                for log in [*wd.glob("*.log"), *wd.glob("nats/*.log")]:
                    shutil.copyfile(log, keep_logs / log.name)


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def hub_cpu_s(s: System) -> float:
    """CPU-seconds of every hub process of the system."""
    return sum(procstat.cpu_s(p.pid) for p in s.hub.processes)


def hub_rss(s: System) -> str:
    return " + ".join(f"{procstat.rss_mb(p.pid):.0f} MB" for p in s.hub.processes)


async def wait_load_connected(load: subprocess.Popen[bytes], homes: int, within: float = 300.0) -> None:
    """Until the load fleet (``safehome sim fleet --report-every 1``, which prints
    "connected N/N" once a second) has every one of its ``homes`` connected, or ``within``
    seconds passed (the bench then runs with what is connected); SystemExit if it exited."""
    assert load.stderr is not None
    t0 = time.monotonic()
    while True:
        line = (await asyncio.to_thread(load.stderr.readline)).decode()
        if f"connected {homes}/{homes}" in line or time.monotonic() - t0 > within:
            return
        if load.poll() is not None:
            raise SystemExit("the load fleet exited")
