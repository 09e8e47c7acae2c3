"""A throwaway local Mosquitto for demos and benchmarks: generated config, free port, own dir.

Production brokers are configured by ``hub/broker`` (TLS, per-gateway credentials, ACLs);
this one is for loopback runs of the simulator only. Settings that decide loss and
latency follow docs/architecture.md (measured facts): unlimited queue, TCP_NODELAY, no connection cap.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from firmware_sim.errors import SimError
from firmware_sim.procs import die_with_parent


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` different free ports. Each stays bound until all are picked: :func:`free_port`
    called n times may hand out the same port twice (a NATS node's client port was another
    node's MQTT port once, and that node could not start)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SimError(f"nothing listening on {host}:{port} after {timeout} s") from None
            time.sleep(0.05)


@dataclass
class LocalBroker:
    workdir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    extra_config: str = ""
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalBroker:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise SimError("mosquitto not found: run `make setup` (installs the Debian package)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "max_connections -1",
            "max_queued_messages 0",
            "max_inflight_messages 100",
            "set_tcp_nodelay true",
            "persistence false",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "sys_interval 1",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n" + self.extra_config + "\n")
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        try:
            # every listener, not the first only: extra_config may add some (bench/partition.py),
            # and mosquitto binds them one after the other
            wait_port(self.host, self.port)
            for m in re.finditer(r"^listener\s+(\d+)(?:\s+(\S+))?", self.extra_config, re.M):
                wait_port(m.group(2) or self.host, int(m.group(1)))
        except SimError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None
