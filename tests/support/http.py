"""Real HTTP on free loopback ports: run an ASGI app under uvicorn in a thread, and a tiny
recording HTTP receiver (webhook / SMS provider stand-in) whose answers a test scripts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn

from hub.alarms.settings import WebhookSettings
from hub.notify.errors import SignatureError
from hub.notify.signing import verify
from safehome.testing.mosquitto import free_port

#: The receivers here listen on loopback, which webhooks may not post to by default
#: (hub/notify/targets.py): the tests allow it explicitly, with these, and nothing wider.
LOOPBACK_NETWORKS = ["127.0.0.0/8", "::1/128"]
LOOPBACK_WEBHOOKS = WebhookSettings(allow_networks=LOOPBACK_NETWORKS)
LOOPBACK_TARGETS = LOOPBACK_WEBHOOKS.policy()


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1:<free port>; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise TimeoutError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def signed_by(self, secret: str) -> bool:
        """A webhook delivery whose signature verifies with ``secret`` (and is fresh)."""
        try:
            verify(secret, self.headers["x-safehome-signature"], self.headers["x-safehome-timestamp"], self.body,
                   time.time())  # fmt: skip
        except SignatureError:
            return False
        return True


@dataclass
class Receiver:
    """Records every POST. ``script`` gives the status of each successive request (then 200)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_request: Callable[[Received], None] | None = None

    def wait_for(self, n: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.requests)} of {n} requests arrived at {self.url}")
            time.sleep(0.01)


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    port = free_port()
    rec = Receiver(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            item = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with rec.lock:
                rec.requests.append(item)
                status = rec.script.pop(0) if rec.script else 200
            if rec.on_request:
                rec.on_request(item)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
