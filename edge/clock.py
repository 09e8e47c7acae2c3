"""Device time and whether it is NTP-synchronised (most Pis have no RTC).

``SyncProbe`` is the seam: :class:`AdjtimexProbe` asks the kernel (``adjtimex(2)``
returns TIME_ERROR while the clock is unsynchronised, which is what chrony and
systemd-timesyncd clear), :class:`TimedatectlProbe` asks systemd, and tests use
:class:`FixedProbe`. Ordering never relies on time: every message also carries ``seq``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import subprocess
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)
TIME_ERROR = 5


class SyncProbe(Protocol):
    def synced(self) -> bool: ...


class FixedProbe:
    def __init__(self, value: bool) -> None:
        self.value = value

    def synced(self) -> bool:
        return self.value


class AdjtimexProbe:
    """``adjtimex(2)`` with modes=0 (read only): state TIME_ERROR means 'not synchronised'."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    def synced(self) -> bool:
        buf = ctypes.create_string_buffer(512)  # struct timex is ~208 bytes; modes=0 (zeroed)
        state = int(self._libc.adjtimex(buf))
        if state < 0:
            log.warning("adjtimex failed (errno %d); treating clock as unsynchronised", ctypes.get_errno())
            return False
        return state != TIME_ERROR


class TimedatectlProbe:
    def synced(self) -> bool:
        try:
            out = subprocess.run(
                ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("timedatectl failed (%s); treating clock as unsynchronised", exc)
            return False
        return out == "yes"


def make_probe(name: str) -> SyncProbe:
    if name == "adjtimex":
        return AdjtimexProbe()
    if name == "timedatectl":
        return TimedatectlProbe()
    return FixedProbe(name == "assume_synced")


class Clock:
    """Wall time in epoch ms plus a cached sync flag (probed at most every ``cache_s``)."""

    def __init__(
        self,
        probe: SyncProbe,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        cache_s: float = 30.0,
    ) -> None:
        self.probe = probe
        self.wall = wall
        self.mono = mono
        self.cache_s = cache_s
        self._synced = False
        self._checked = -1e18

    def now_ms(self) -> int:
        return max(0, int(self.wall() * 1000))

    def synced(self) -> bool:
        now = self.mono()
        if now - self._checked >= self.cache_s:
            self._synced = self.probe.synced()
            self._checked = now
        return self._synced

    def stamp(self) -> tuple[int, bool]:
        return self.now_ms(), self.synced()


class SyncWatch:
    """When to raise / restore the ``clock_unsynced`` trouble (pure; ``now`` in seconds).

    A Pi without RTC boots unsynchronised: only a clock still unsynchronised ``grace_s``
    after start is a trouble; the restore follows the first synchronised probe after it.
    """

    def __init__(self, start: float, grace_s: float = 600.0) -> None:
        self.start = start
        self.grace_s = grace_s
        self.raised = False

    def update(self, synced: bool, now: float) -> bool | None:
        """True: raise the trouble now; False: restore it now; None: nothing to report."""
        if not synced and not self.raised and now - self.start >= self.grace_s:
            self.raised = True
            return True
        if synced and self.raised:
            self.raised = False
            return False
        return None
