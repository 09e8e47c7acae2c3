"""A real NATS cluster for tests and benches: N nats-server nodes (default 3) on free
loopback ports in a work directory, configured by the product's own renderer
(:func:`hub.broker.nats.render_config`), with the product's users file and credentials.

``NatsCluster.start`` waits, with a deadline, until every node answers ``/healthz``, the
JetStream meta group has a leader, and each node's MQTT listener accepts the hub's login
(the first MQTT login creates the MQTT streams, replicated on the cluster).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_sim.broker import free_ports
from hub.broker import nats
from hub.broker.config import BrokerSettings, NatsNode
from hub.broker.credentials import gateway_username
from safehome.testing.poll import wait_for

__all__ = ["NatsCluster", "NatsEndpoint"]

#: A cold 3-node cluster elects its meta leader in ~2-5 s here; a loaded CI host is slower.
START_WITHIN_S = 60.0


@dataclass(frozen=True)
class NatsEndpoint:
    """One node's MQTT address (what an MQTT test client needs: ``host``, ``port``)."""

    host: str
    port: int


@dataclass
class NatsCluster:
    """``size`` nats-server nodes on loopback; ``size=1`` is the single-node variant."""

    workdir: Path
    size: int = 3
    host: str = "127.0.0.1"
    settings: BrokerSettings = field(init=False)
    #: (certfile, keyfile) of a self-signed certificate: the MQTT listeners speak TLS only
    #: (safehome.testing.pki.self_signed; the certificate is its own CA)
    tls: tuple[Path, Path] | None = None
    #: BrokerSettings fields to override (e.g. ``{"mqtt_consumer_replicas": 1}``)
    overrides: dict[str, Any] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    hub_password: str = ""
    #: load each node's login rate guard (``nats-<node>.nft``, hub/broker/nats.py) with ``nft``
    #: at start and remove it at stop: needs root and nftables (benches; :func:`can_guard_logins`)
    login_guard: bool = False

    def __post_init__(self) -> None:
        ports = iter(free_ports(4 * self.size))  # all different (free_port() twice may repeat)
        nodes = [
            NatsNode(
                name=f"n{i + 1}",
                host=self.host,
                client_port=next(ports),
                mqtt_port=next(ports),
                cluster_port=next(ports),
                http_port=next(ports),
            )
            for i in range(self.size)
        ]
        self.settings = BrokerSettings(
            backend="nats",
            directory=self.workdir,
            tls=self.tls is not None,
            certfile=self.tls[0] if self.tls else None,
            keyfile=self.tls[1] if self.tls else None,
            nats_bind=self.host,
            nodes=nodes,
            cluster_name="safehome-test",
            **self.overrides,
        )
        self.procs = [None] * self.size
        self.credentials = nats.NatsCredentials(self.settings)

    # addresses
    @property
    def nodes(self) -> list[NatsNode]:
        return self.settings.nodes

    @property
    def mqtt_ports(self) -> list[int]:
        return [n.mqtt_port for n in self.nodes]

    @property
    def nats_urls(self) -> list[str]:
        return [f"nats://{self.host}:{n.client_port}" for n in self.nodes]

    @property
    def http_ports(self) -> list[int]:
        return [n.http_port for n in self.nodes]

    def endpoint(self, i: int) -> NatsEndpoint:
        return NatsEndpoint(self.host, self.mqtt_ports[i])

    def log_path(self, i: int) -> Path:
        return self.workdir / f"nats-{self.nodes[i].name}.log"

    def log_text(self, i: int) -> str:
        path = self.log_path(i)
        return path.read_text(errors="replace") if path.exists() else ""

    # lifecycle
    def start(self) -> NatsCluster:
        nats.write_deployment(self.settings)
        if self.login_guard:
            for node in self.nodes:
                _nft("-f", str(nats.nft_path(self.settings, node)))
        self.hub_password = self.settings.hub_secret_path.read_text().strip()
        for i in range(self.size):
            self._spawn(i)
        try:
            for i in range(self.size):
                self.wait_ready(i)
        except AssertionError as exc:
            logs = "\n".join(f"--- {n.name}\n{self.log_text(i)[-1500:]}" for i, n in enumerate(self.nodes))
            self.stop()
            raise RuntimeError(f"NATS cluster did not start: {exc}\n{logs}") from None
        return self

    def _spawn(self, i: int) -> None:
        with open(self.log_path(i), "ab") as log:
            self.procs[i] = subprocess.Popen(
                nats.run_argv(self.settings, self.nodes[i]), stdout=log, stderr=subprocess.STDOUT
            )

    def monitor(self, i: int, path: str) -> Any:
        """JSON of node ``i``'s monitoring endpoint ``path`` (e.g. ``/connz?auth=true``)."""
        with urllib.request.urlopen(f"http://{self.host}:{self.http_ports[i]}{path}", timeout=2) as r:
            return json.loads(r.read())

    def wait_routed(self, subject: str, node: int, within: float = START_WITHIN_S) -> None:
        """Wait until every other running node has heard of a subscription to ``subject``
        made on ``node``. A client's flush only means its own node has the subscription; the
        others learn of it over the routes, asynchronously, and core NATS forwards a message
        published on them only once they have (measured: a test's first publish on another
        node, right after the subscriber's flush, was sometimes lost)."""

        def known(i: int) -> bool:
            try:
                routes = self.monitor(i, "/routez?subs=1").get("routes") or []
            except (OSError, urllib.error.URLError, ValueError):
                return False  # a busy node's monitor past its 2 s timeout: look again
            return any(
                entry.split(" ", 1)[0] == subject
                for r in routes
                for entry in (r.get("subscriptions_list") or [])
            )

        for i, proc in enumerate(self.procs):
            if i != node and proc is not None and proc.poll() is None:
                wait_for(
                    functools.partial(known, i), within, f"node {self.nodes[i].name} to learn of {subject}"
                )

    def _healthy(self, i: int, server_only: bool = False) -> bool:
        proc = self.procs[i]
        if proc is None or proc.poll() is not None:
            raise AssertionError(f"node {self.nodes[i].name} exited (rc {proc and proc.returncode})")
        try:
            health = self.monitor(i, "/healthz?js-server-only=true" if server_only else "/healthz")
            jsz = self.monitor(i, "/jsz")
        except (OSError, urllib.error.URLError, ValueError):
            return False
        leader = (jsz.get("meta_cluster") or {}).get("leader") if self.size > 1 else "self"
        return health.get("status") == "ok" and bool(leader)

    def wait_ready(self, i: int, within: float = START_WITHIN_S, server_only: bool = False) -> None:
        """``server_only``: the node and its JetStream meta group, not every stream and consumer
        (what :meth:`restart` waits for). A node restarted under traffic reported "JetStream
        consumer '$MQTT_msgs > …' is not current" (the gateways' MQTT session consumers catching
        up) for more than 60 s here while it already took MQTT logins
        (tests/hub/test_cluster_failover.py). A fresh cluster waits for every stream: without
        it a node SIGKILLed right after the start left the survivors without acks for 30 s."""
        what = f"node {self.nodes[i].name} healthy with a meta leader"
        wait_for(lambda: self._healthy(i, server_only), within, what)
        wait_for(lambda: self._mqtt_login(i), within, f"node {self.nodes[i].name} MQTT login")

    def _mqtt_login(self, i: int) -> bool:
        """One MQTT CONNECT as the hub: True on CONNACK success (False: try again)."""
        done = threading.Event()
        ok: list[bool] = []
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hub-ready-{i}", protocol=mqtt.MQTTv311)
        c.username_pw_set("hub", self.hub_password)
        if self.tls:
            c.tls_set(ca_certs=str(self.tls[0]))

        def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: Any, _p: object) -> None:
            ok.append(not rc.is_failure)
            done.set()

        c.on_connect = on_connect
        c.on_disconnect = lambda *_a: done.set()
        try:
            c.connect(self.host, self.mqtt_ports[i], keepalive=10)
        except OSError:
            return False
        c.loop_start()
        try:
            done.wait(5)
        finally:
            c.disconnect()
            c.loop_stop()
        return bool(ok and ok[0])

    def kill(self, i: int) -> None:
        """SIGKILL node ``i`` (no goodbye to its clients or to the cluster)."""
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        self.procs[i] = None

    def terminate(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs[i] = None

    def restart(self, i: int) -> None:
        """Start node ``i`` again (after :meth:`kill`) and wait until it has rejoined."""
        self.terminate(i)
        self._spawn(i)
        self.wait_ready(i, server_only=True)

    def stop(self) -> None:
        for i in range(self.size):
            self.terminate(i)
        if self.login_guard:
            for node in self.nodes:
                _nft("delete", "table", "inet", nats.nft_table(node), check=False)

    def reload(self) -> list[str]:
        """SIGHUP every running node (what credential changes do)."""
        return nats.reload_nodes(self.settings)

    # credentials
    def gateway(self, gw: str) -> str:
        """Create credentials for ``gw`` (every node reloads) and return its password."""
        return self.credentials.create(gw)

    def gateways(self, passwords: dict[str, str]) -> None:
        """Credentials for many gateways in one write and one reload (gateway id → password).
        Before :meth:`start` the nodes read them when they start. Equal passwords share one
        bcrypt hash: 10,000 bench gateways cost one hash, not 30 s of bcrypt here."""
        hashes: dict[str, str] = {}
        entries = {gateway_username(gw): hashes.get(pw) or hashes.setdefault(pw, nats.hash_password(pw))
                   for gw, pw in passwords.items()}  # fmt: skip
        store = self.credentials.passwords
        with store._locked() as current:
            current.update(entries)
        if any(proc is not None for proc in self.procs):
            self.reload()

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def can_guard_logins() -> bool:
    """Whether :attr:`NatsCluster.login_guard` can work here: root and ``nft``."""
    return os.geteuid() == 0 and shutil.which("nft") is not None


def _nft(*args: str, check: bool = True) -> None:
    done = subprocess.run(["nft", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"nft {' '.join(args)} failed: {done.stderr.strip()}")
