"""The webhook receiver of the fault matrix: HTTP/1.1 keep-alive, a deep accept backlog,
and a record of every delivery (event, delivery id, alarm id, arrival time).

Unlike bench/system.py's receiver (HTTP/1.0, one connection per POST) it keeps the hub's
connections open, as a real subscriber does, and keeps the delivery id, so a redelivery
after a crash (at least once, by design) is told apart from a duplicate alarm.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Delivery:
    at: float  #: wall clock (time.time) of arrival
    event: str  #: X-Safehome-Event: alarm.raised, alarm.escalated
    delivery: str  #: X-Safehome-Delivery: the notification id, the same on every retry
    alarm_id: str
    gateway_id: str


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # a storm of reconnecting hub connections is queued, not refused
    daemon_threads = True


@dataclass
class Receiver:
    deliveries: list[Delivery] = field(default_factory=list)
    #: seconds each POST is held before it is answered (a slow subscriber); a POST counts as
    #: delivered only once answered, as for the hub: one whose sender died first is not
    hold_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if rec.hold_s > 0:
                    time.sleep(rec.hold_s)
                t = time.time()
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.wfile.flush()
                except OSError:
                    return  # the sender is gone: not delivered
                try:
                    doc: dict[str, Any] = json.loads(body)
                except ValueError:
                    return
                d = Delivery(
                    t,
                    self.headers.get("X-Safehome-Event", str(doc.get("event", ""))),
                    self.headers.get("X-Safehome-Delivery", ""),
                    str(doc.get("alarm_id", "")),
                    str(doc.get("gateway_id", "")),
                )
                with rec.lock:
                    rec.deliveries.append(d)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, name="webhooks", daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/alarms"

    def snapshot(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
