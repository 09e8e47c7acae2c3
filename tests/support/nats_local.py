"""A minimal real NATS cluster for the ingest's tests: ``size`` nats-server nodes with
JetStream and an MQTT listener on free loopback ports, no authentication.

Stand-in until the product's harness (safehome/testing/nats.py, configured by
hub/broker/nats.py with its users and ACL) is on main; the same attribute names.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from firmware_sim.broker import free_port, wait_port
from safehome.testing.poll import wait_for
from tests.support.hub_mqtt import Client

START_WITHIN_S = 60.0


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


@dataclass
class LocalNats:
    workdir: Path
    size: int = 1
    host: str = "127.0.0.1"
    hub_password: str = "unused-without-authentication"
    gateway_node: int = 0  #: the node ScriptedGateway's clients connect to
    ports: list[dict[str, int]] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ports = [{k: free_port() for k in ("client", "mqtt", "cluster", "http")} for _ in range(self.size)]
        self.procs = [None] * self.size

    @property
    def mqtt_ports(self) -> list[int]:
        return [p["mqtt"] for p in self.ports]

    @property
    def nats_urls(self) -> list[str]:
        return [f"nats://{self.host}:{p['client']}" for p in self.ports]

    def endpoint(self, i: int) -> Endpoint:
        return Endpoint(self.host, self.mqtt_ports[i])

    def _config(self, i: int) -> Path:
        p = self.ports[i]
        lines = [
            f"server_name: n{i + 1}",
            f"listen: {self.host}:{p['client']}",
            f"http: {self.host}:{p['http']}",
            f'jetstream {{ store_dir: "{self.workdir / f"js-{i}"}" }}',
            f"mqtt {{ listen: {self.host}:{p['mqtt']} }}",
        ]
        if self.size > 1:
            routes = ", ".join(f"nats-route://{self.host}:{q['cluster']}" for q in self.ports)
            lines.append(f"cluster {{ name: ingest-test, listen: {self.host}:{p['cluster']}, routes: [{routes}] }}")
        path = self.workdir / f"n{i + 1}.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> LocalNats:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for i in range(self.size):
            self._spawn(i)
        for i in range(self.size):
            self.wait_ready(i)
        return self

    def _spawn(self, i: int) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        with open(self.workdir / f"n{i + 1}.log", "ab") as log:
            self.procs[i] = subprocess.Popen([binary, "-c", str(self._config(i))], stdout=log, stderr=log)

    def _ready(self, i: int) -> bool:
        url = f"http://{self.host}:{self.ports[i]['http']}/jsz"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                jsz = json.loads(r.read())
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return self.size == 1 or bool((jsz.get("meta_cluster") or {}).get("leader"))

    def wait_ready(self, i: int) -> None:
        wait_for(lambda: self._ready(i), START_WITHIN_S, f"NATS node n{i + 1} with a JetStream leader")
        wait_port(self.host, self.mqtt_ports[i], START_WITHIN_S)
        # the first MQTT login creates the MQTT streams (replicated on a cluster)
        wait_for(lambda: self._mqtt_login(i), START_WITHIN_S, f"MQTT login on n{i + 1}")

    def _mqtt_login(self, i: int) -> bool:
        c = Client(self.endpoint(i), client_id=f"ready-{i}")  # type: ignore[arg-type]
        try:
            c.connect(expect_ok=False)
            return not c.refused
        except (OSError, AssertionError):
            return False
        finally:
            c.close()

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        self.procs[i] = None

    def restart(self, i: int) -> None:
        self.kill(i)
        self._spawn(i)
        self.wait_ready(i)

    def stop(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.procs[i] = None

    # what tests.support.hub_gateway.ScriptedGateway asks of a broker
    def gateway(self, gw: str) -> str:
        return ""  # no authentication on this stand-in

    def client(self, username: str | None, password: str | None, **kw: object) -> Client:
        return Client(self.endpoint(self.gateway_node), None, None, **kw)  # type: ignore[arg-type]
