"""Device clocks that say they are synced but are far from the hub's: found here, pure.

A live status (birth, heartbeat, report, shutdown) is published the moment it is stamped,
so its ``ts`` minus the hub's receive time is the gateway's clock offset (plus transit:
milliseconds). That offset, past ``[hub.supervision] clock_tolerance_s``, opens the
gateway's ``clock_suspect`` trouble (:mod:`hub.supervision.core`). Events and telemetry may
be a backlog stamped hours ago, so one of them alone proves a bad clock only when its
``ts`` is *ahead* of the receive time; behind it, it is suspect when the last status this
worker heard from its gateway showed the clock off. A suspect message is stored and
decided as usual; only its device time is not trusted (the hub's receive time orders
and times it, and it stays out of the ingest-lag metric).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from protocols import CommandResult, Event, Status, Telemetry


@dataclass
class ClockWatch:
    tolerance_s: float
    #: gateways whose last live status (heard by this worker) showed the clock off: offset in s
    off: dict[str, float] = field(default_factory=dict)

    def is_off(self, offset_s: float) -> bool:
        return abs(offset_s) > self.tolerance_s

    def status_offset(self, s: Status, received_at: dt.datetime) -> float | None:
        """The clock offset a live status measures; None when it measures nothing: unsynced,
        never set, or the Last-Will (stamped when the gateway connected, not when sent)."""
        if not s.synced or not s.ts or s.reason == "lwt":
            return None
        offset = s.ts / 1000 - received_at.timestamp()
        if self.is_off(offset):
            self.off[s.gw] = offset
        else:
            self.off.pop(s.gw, None)  # keeps the map to the few gateways with a bad clock
        return offset

    def suspect(self, m: Event | Telemetry | CommandResult, received_at: dt.datetime) -> bool:
        """True when ``m`` claims a synced time that is not to be trusted."""
        if not m.synced or not m.ts:
            return False
        offset = m.ts / 1000 - received_at.timestamp()
        if offset > self.tolerance_s:
            return True  # nothing is received before it is sent
        return m.gw in self.off and self.is_off(offset)


def retimed(t: Telemetry, received_at: dt.datetime) -> Telemetry:
    """``t`` timed by the hub: its readings stored at the receive time, not as synced."""
    ms = int(received_at.timestamp() * 1000)
    readings = [r.model_copy(update={"ts": None}) for r in t.readings]
    return t.model_copy(update={"ts": ms, "synced": False, "readings": readings})
