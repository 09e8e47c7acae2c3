"""The whole system for benchmarks: local Mosquitto, the real hub on SQLite (child process,
as the demo starts it), a generated registry and a local webhook receiver subscribed to
the district's alarms (the "console/webhook subscriber" that alarm latency is measured at).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import procstat
from firmware_sim.broker import LocalBroker
from firmware_sim.registry import Registry, generate, registry_to_yaml
from safehome.demo_hub import HubHandle, start_real_hub


@dataclass
class Webhooks:
    """Records the arrival time of every webhook POST (first per gateway kept separately)."""

    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    first_by_gateway: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                t = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(200)
                self.end_headers()
                try:
                    doc = json.loads(body)
                except ValueError:
                    return
                gw = str(doc.get("gateway_id") or (doc.get("alarm") or {}).get("gateway_id") or "")
                with hooks.lock:
                    hooks.received.append((t, doc))
                    hooks.first_by_gateway.setdefault(gw, t)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/alarms"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class System:
    workdir: Path
    registry: Registry
    registry_path: Path
    broker: LocalBroker
    hub: HubHandle
    webhooks: Webhooks
    db_url: str


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
    from tests.support.postgres import postgres_server  # bench reuses the tests' server

    with postgres_server() as server:
        url = server.create_database("safehome_bench")
        try:
            yield url
        finally:
            server.drop_database(url)


@contextlib.contextmanager
def system(homes: int, seed: int = 1, split_lanes: bool = False, postgres: bool = False) -> Iterator[System]:
    with tempfile.TemporaryDirectory(prefix="safehome-bench-") as tmp, _database(Path(tmp), postgres) as db_url:
        wd = Path(tmp)
        reg = generate(homes, seed)
        path = wd / "registry.yaml"
        path.write_text(registry_to_yaml(reg))
        broker = LocalBroker(wd / "broker").start()
        hooks = Webhooks()
        hub: HubHandle | None = None
        try:
            url = hooks.start()
            hub = start_real_hub(wd, broker.host, broker.port, path, reg, split_lanes=split_lanes, db_url=db_url)
            subscribe_webhook(db_url, url, reg.district.id)
            yield System(wd, reg, path, broker, hub, hooks, db_url)
        finally:
            if hub is not None:
                hub.stop()
            hooks.stop()
            broker.stop()


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
