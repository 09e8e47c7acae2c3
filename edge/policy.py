"""Pure delivery policy: priority lanes, the in-flight window, resend backoff.

Plain functions over plain data (no clock, no I/O), so the rules are tested exactly:

* lane of a message: alarm (an alarm-class event raised) < trouble / supervisory /
  restore / test < telemetry; lower lane = sent first, at every step;
* within the event lanes: oldest first (by ``seq``) so that alarm → restore stay in order;
  within telemetry: ``backlog_order`` (oldest_first or newest_first);
* the window holds the ``window`` highest-priority unacked messages; an arriving alarm
  displaces the lowest-priority message in flight (which is resent later, same id);
* while an alarm is unacked, nothing else is sent (nor resent): the backlog starts only
  once the hub has confirmed every alarm. A broker drops what it cannot route (a broker
  restarted with persistence forgets the hub's ``$share/`` subscriptions until the hub
  resubscribes): an alarm sent into that gap and the telemetry sent after it would
  otherwise reach the hub in the wrong order, the alarm waiting for its resend;
* an unacked message is resent after ``ack_timeout * 2**(attempt-1)``, capped; forever;
  except for alarms, never sooner than ``floor_s`` (4x the observed ack time): a hub
  slowly draining a backlog is not also sent a duplicate of everything it has queued;
  an alarm is resent at least every ``ALARM_RESEND_MAX_S``, whatever the cap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edge.store import LANE_ALARM, LANE_EVENT, LANE_TELEMETRY, Entry
from protocols import AlarmClass, EventKind, EventState, class_of

#: An unacked alarm is resent at least this often: a hub back from an outage has it
#: within this time rather than after a backoff grown to ``resend_max_s`` (300 s).
#: Alarms are rare and ~200 bytes: the duplicates cost nothing (the hub keys on the id).
ALARM_RESEND_MAX_S = 15.0


def lane_for_event(kind: EventKind, state: EventState) -> int:
    if class_of(kind) is AlarmClass.ALARM and state is EventState.ALARM:
        return LANE_ALARM
    return LANE_EVENT


def priority(entry: Entry, newest_first: bool) -> tuple[int, int]:
    if entry.lane == LANE_TELEMETRY and newest_first:
        return (entry.lane, -entry.seq)
    return (entry.lane, entry.seq)


def resend_delay(attempts: int, base_s: float, cap_s: float) -> float:
    """Seconds to wait for the Ack after send number ``attempts`` (1-based)."""
    return float(min(cap_s, base_s * float(2 ** min(max(attempts - 1, 0), 30))))


@dataclass(slots=True)
class Flight:
    """A message sent and not yet acked."""

    entry: Entry
    attempts: int
    due: float  #: resend when now >= due
    sent: float = 0.0  #: when it was last sent (for the ack-time estimate)


def plan(
    candidates: Iterable[Entry],
    flights: dict[str, Flight],
    *,
    window: int,
    now: float,
    newest_first: bool,
    base_s: float,
    cap_s: float,
    floor_s: float = 0.0,
) -> list[Entry]:
    """Decide what to publish now; updates ``flights`` in place. Result is in send order.

    ``candidates`` are the best-ranked unacked messages of each lane (may overlap
    ``flights``).
    """
    pool: dict[str, Entry] = {f.entry.id: f.entry for f in flights.values()}
    for e in candidates:
        pool.setdefault(e.id, e)
    ranked = sorted(pool.values(), key=lambda e: priority(e, newest_first))[:window]
    keep = {e.id for e in ranked}
    for fid in [fid for fid in flights if fid not in keep]:
        del flights[fid]  # displaced by higher-priority messages: resent later, same id

    def delay(e: Entry, attempts: int) -> float:
        if e.lane == LANE_ALARM:
            return resend_delay(attempts, base_s, min(cap_s, ALARM_RESEND_MAX_S))
        return min(cap_s, max(resend_delay(attempts, base_s, cap_s), floor_s))

    # alarms first: nothing else goes out while one is unacked (they rank first)
    gated = bool(ranked) and ranked[0].lane == LANE_ALARM
    out: list[Entry] = []
    for e in ranked:
        if gated and e.lane != LANE_ALARM:
            break
        f = flights.get(e.id)
        if f is None:
            flights[e.id] = Flight(e, 1, now + delay(e, 1), now)
            out.append(e)
        elif now >= f.due:
            f.attempts += 1
            f.due, f.sent = now + delay(e, f.attempts), now
            out.append(e)
    return out


def next_due(flights: dict[str, Flight]) -> float | None:
    """When :func:`plan` next has a resend to make (only alarms count while one is unacked)."""
    alarms = [f.due for f in flights.values() if f.entry.lane == LANE_ALARM]
    return min(alarms or (f.due for f in flights.values()), default=None)
