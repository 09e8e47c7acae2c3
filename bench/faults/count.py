"""Count a fault run from the databases: what the gateways raised against what the hub
stored, the alarms it opened, the webhooks the receiver got and the escalations fired.

Pure over plain rows (:func:`tally`), with one function that reads the rows
(:func:`read`): a test can build rows by hand and check every rule here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import create_engine, text

from bench.faults.harness import Raised
from bench.faults.receiver import Delivery


@dataclass(frozen=True)
class Rows:
    events: list[tuple[str, str, int]]  #: id, gateway_id, seq (every stored event)
    alarms: list[tuple[str, str, str, str]]  #: id, gateway_id, sensor_id, kind (class alarm)
    timers: list[tuple[str, int, str]]  #: alarm_id, step_index, status


@dataclass(frozen=True)
class Tally:
    raised: int
    keys: int  #: distinct (gateway, sensor, kind) raised: one alarm each (repeats count on it)
    stored: int  #: raised events found in the hub's events table
    duplicates: int  #: a second event row for one (gateway, seq), or a second alarm for one sensor/kind
    alarms: int  #: alarms opened for the raised events' (gateway, sensor, kind)
    webhooks: int  #: alarms with an alarm.raised delivery
    redeliveries: int  #: deliveries received more than once (at least once: allowed, counted)
    escalations: int  #: escalation timers fired (each should fire once per alarm)
    escalation_hooks: int  #: alarms with an alarm.escalated delivery
    worst_delay_s: float | None  #: max over alarms of first alarm.raised webhook - max(raise, recovery)

    def complete(self, steps: int = 1) -> bool:
        """Everything accounted for: stored, one alarm each, its webhook and its escalation."""
        return (
            self.stored == self.raised
            and self.alarms == self.keys
            and self.webhooks == self.keys
            and self.escalations == steps * self.keys
            and self.escalation_hooks == self.keys
        )

    def ok(self, steps: int = 1) -> bool:
        return self.complete(steps) and self.duplicates == 0


def tally(raised: list[Raised], rows: Rows, hooks: list[Delivery], recovered_at: float) -> Tally:
    ids = {r.id for r in raised}
    stored = sum(1 for e in rows.events if e[0] in ids)
    gws = {r.gateway_id for r in raised}
    seq_dups = sum(n - 1 for n in Counter((e[1], e[2]) for e in rows.events if e[1] in gws).values() if n > 1)
    wanted: dict[tuple[str, str, str], Raised] = {}  # each key's first alarm event
    for r in sorted((r for r in raised if r.state == "alarm"), key=lambda r: r.at):
        wanted.setdefault((r.gateway_id, r.sensor_id, r.kind), r)
    mine = [a for a in rows.alarms if (a[1], a[2], a[3]) in wanted]
    per_key = Counter((a[1], a[2], a[3]) for a in mine)
    alarm_dups = sum(n - 1 for n in per_key.values() if n > 1)
    alarm_of = {a[0]: wanted[(a[1], a[2], a[3])] for a in mine}
    first_raised: dict[str, float] = {}
    escalated: set[str] = set()
    seen: Counter[tuple[str, str]] = Counter()
    for d in hooks:
        if d.alarm_id not in alarm_of:
            continue
        seen[(d.event, d.delivery)] += 1
        if d.event == "alarm.raised":
            first_raised[d.alarm_id] = min(first_raised.get(d.alarm_id, d.at), d.at)
        elif d.event == "alarm.escalated":
            escalated.add(d.alarm_id)
    # an alarm delivered before the fault ended waited for nothing: 0, not a negative delay
    delays = [max(0.0, t - max(alarm_of[a].at, recovered_at)) for a, t in first_raised.items()]
    fired = sum(1 for t in rows.timers if t[0] in alarm_of and t[2] == "fired")
    return Tally(
        raised=len(raised),
        keys=len(wanted),
        stored=stored,
        duplicates=seq_dups + alarm_dups,
        alarms=len(per_key),
        webhooks=len(first_raised),
        redeliveries=sum(n - 1 for n in seen.values() if n > 1),
        escalations=fired,
        escalation_hooks=len(escalated),
        worst_delay_s=max(delays) if delays else None,
    )


def read(db_url: str) -> Rows:
    engine = create_engine(db_url)
    try:
        with engine.connect() as c:
            events = [
                (str(a), str(b), int(s))
                for a, b, s in c.execute(text("SELECT id, gateway_id, seq FROM events"))
            ]
            alarms = [
                (str(a), str(b), str(s or ""), str(k))
                for a, b, s, k in c.execute(
                    text("SELECT id, gateway_id, sensor_id, kind FROM alarms WHERE alarm_class = 'alarm'")
                )
            ]
            timers = [
                (str(a), int(i), str(s))
                for a, i, s in c.execute(text("SELECT alarm_id, step_index, status FROM alarm_timers"))
            ]
    finally:
        engine.dispose()
    return Rows(events, alarms, timers)
