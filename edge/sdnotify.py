"""A small sd_notify(3) sender: datagrams to ``$NOTIFY_SOCKET`` (READY, WATCHDOG, STOPPING).

No-op when not started by systemd. The agent sends ``WATCHDOG=1`` only while its loop is
healthy (see ``edge/agent.py``), so a hung or failing agent is restarted by systemd.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self.sent: list[str] = []

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, message: str) -> bool:
        if not self.address:
            return False
        addr = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(message.encode(), addr)
        except OSError as exc:
            log.warning("sd_notify %r to %s failed: %s", message, self.address, exc)
            return False
        self.sent.append(message)
        return True


def watchdog_interval_s(env: dict[str, str] | None = None) -> float | None:
    """Half of systemd's WatchdogSec (from ``$WATCHDOG_USEC``), or None when not watched."""
    e = os.environ if env is None else env
    usec = e.get("WATCHDOG_USEC")
    pid = e.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.5, int(usec) / 2_000_000)
    except ValueError:
        return None
