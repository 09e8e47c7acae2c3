"""A real Mosquitto for tests: own config, own free loopback port(s), own data dir.

Used by every test that talks MQTT. ``Mosquitto.start`` waits (with a deadline) until the
broker's log says it is running: every listener bound, not only the first one (Mosquitto
binds its listeners one after another and exits when one of them fails). A port the helper
picked that another process took before the broker bound it (EADDRINUSE) is picked again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from firmware_sim.broker import free_port, free_ports, wait_port
from safehome.testing.poll import wait_for

__all__ = ["Mosquitto", "free_port", "mosquitto_binary", "wait_port"]

#: Until the broker runs: well under a second on a quiet host, seconds on a loaded one.
START_WITHIN_S = 30.0
#: Starts with freshly picked ports when one of the helper's was taken meanwhile.
PORT_ATTEMPTS = 5
#: What Mosquitto 2.0 logs once every listener is bound / when a bind failed.
_RUNNING = b" running\n"
_IN_USE = b"Address already in use"


def mosquitto_binary() -> str:
    path = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if path is None:
        raise RuntimeError("mosquitto not found: run `make test`, which installs it")
    return path


@dataclass
class Mosquitto:
    """One broker process. ``extra_config`` is appended to the generated config.

    ``port`` 0 (the default): a free loopback port picked here, picked again if another
    process takes it before the broker's first start binds it. ``extra_listeners``: that many
    more plain listeners on ports picked the same way (:attr:`extra_ports`), after
    ``extra_config`` (whose listener options apply to the first listener)."""

    workdir: Path
    port: int = 0
    host: str = "127.0.0.1"
    extra_config: str = ""
    persistence: bool = False
    allow_anonymous: bool = True
    extra_listeners: int = 0
    proc: subprocess.Popen[bytes] | None = None
    extra_ports: list[int] = field(default_factory=list, init=False)
    #: the port was picked here and no start has bound it yet: another may be picked
    _repick: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self._repick = self.port == 0
        self._pick_ports()

    def _pick_ports(self) -> None:
        """The main port (when it is picked here) and one per extra listener, all different:
        ``free_port()`` called twice in a row may return the same port."""
        if self._repick:
            self.port, *self.extra_ports = free_ports(1 + self.extra_listeners)
        else:  # the given port may be free too: never hand it out again
            self.extra_ports = [q for q in free_ports(1 + self.extra_listeners) if q != self.port]
            del self.extra_ports[self.extra_listeners :]

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "set_tcp_nodelay true",
            "max_queued_messages 0",
            "max_inflight_messages 100",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/", "autosave_interval 1"]
        more = "".join(f"listener {port} {self.host}\n" for port in self.extra_ports)
        self.config_path.write_text("\n".join(lines) + "\n" + self.extra_config + "\n" + more)

    def start(self) -> Mosquitto:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.write_config()
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            self.proc = subprocess.Popen(
                [mosquitto_binary(), "-c", str(self.config_path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            log = self._wait_running(offset)
            if log is None:
                break
            self.stop()
            if _IN_USE in log and self._repick and attempt < PORT_ATTEMPTS:
                self._pick_ports()  # taken since it was picked: others
                continue
            text = log.decode(errors="replace")[-2000:]
            raise RuntimeError(f"mosquitto did not start (attempt {attempt}); log: {text}")
        self._repick = False  # clients know this port now: a restart keeps it
        return self

    def _wait_running(self, offset: int) -> bytes | None:
        """None once this start's log says it runs; what it logged when it exited or did not
        get there within :data:`START_WITHIN_S` (the process is then still to be stopped)."""
        proc = self.proc
        assert proc is not None

        def settled() -> bool:  # exited, or its log says it runs
            return proc.poll() is not None or _RUNNING in self._log_since(offset)

        try:
            wait_for(settled, START_WITHIN_S, "mosquitto running")
        except AssertionError:
            return self._log_since(offset) + b"(not running after %d s)" % START_WITHIN_S
        if proc.poll() is None:
            return None
        return self._log_since(offset) or b"(nothing logged)"  # read after the exit: all of it

    def _log_since(self, offset: int) -> bytes:
        try:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return f.read()
        except FileNotFoundError:
            return b""

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def reload(self) -> None:
        """SIGHUP: re-read password and ACL files without dropping clients."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
