"""The protocol-level state of one simulated gateway: pure, no I/O, no clock of its own.

Builds the messages a real edge agent would send (events, batched telemetry, status),
keeps every Event/Telemetry pending — same id, same bytes — until the hub's ``stored`` or
``rejected`` ack, and decides which pending messages are due for a resend (alarms first).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import protocols as p
from protocols.messages import SensorHealth, Values

#: Metric each sensor kind reports in telemetry, and its idle value.
IDLE_READINGS: dict[str, tuple[str, float]] = {
    "smoke": ("battery_v", 9.1),
    "gas": ("gas_lel", 0.0),
    "panic": ("contact", 0.0),
    "mains_lost": ("battery_v", 4.2),  # the UPS HAT (power-supervisor): its backup cell, charged
}


@dataclass(frozen=True, slots=True)
class SensorSpec:
    id: str
    model: str
    kind: str


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    id: str
    sensors: tuple[SensorSpec, ...]
    home: str = ""
    workstation: str = ""


@dataclass(slots=True)
class Pending:
    id: str
    channel: p.Channel
    payload: bytes
    alarm: bool
    next_at: float = 0.0  #: monotonic time of the next (re)send; 0 = send now
    attempts: int = 0
    sent_at: float = 0.0  #: monotonic time of the last send
    event: p.Event | None = None
    link_sent: float = 0.0  #: monotonic time of its first send on the current link (0: not yet)


@dataclass
class SimGateway:
    spec: GatewaySpec
    seq: int = 0
    pending: dict[str, Pending] = field(default_factory=dict)
    readings: dict[str, float] = field(default_factory=dict)
    config_revision: int | None = None
    resend_s: float = 10.0
    resend_max_s: float = 120.0
    window: int = 16  #: unacked non-alarm messages in flight at most (alarms are never held back)
    rtt_s: float | None = None  #: smoothed time from send to ``stored`` ack (first sends only)
    rng: random.Random = field(default_factory=random.Random)
    #: monotonic time before which :meth:`due` returns nothing (0: ask now). Lets the fleet
    #: skip, on each tick, the thousands of gateways that are only waiting for acks.
    wake_at: float = 0.0
    #: links hung up on for an unacked alarm since an alarm was last acked (as the agent's)
    alarm_hangups: int = 0

    @property
    def id(self) -> str:
        return self.spec.id

    def _next(self) -> tuple[int, str]:
        self.seq += 1
        return self.seq, p.new_event_id()

    def event(
        self,
        kind: p.EventKind,
        state: p.EventState,
        sensor: str | None,
        now_ms: int,
        values: Values | None = None,
    ) -> Pending:
        seq, mid = self._next()
        ev = p.Event(
            gw=self.id,
            seq=seq,
            id=mid,
            ts=now_ms,
            synced=True,
            sensor=sensor,
            kind=kind,
            state=state,
            values=values,
        )
        pend = Pending(mid, p.Channel.EVENT, p.encode(ev), p.class_of(kind) == p.AlarmClass.ALARM, event=ev)
        self.pending[mid] = pend
        self.wake_at = 0.0
        return pend

    def telemetry(self, now_ms: int) -> Pending:
        readings = []
        for s in self.spec.sensors:
            metric, idle = IDLE_READINGS.get(s.kind, ("contact", 0.0))
            value = self.readings.get(f"{s.id}/{metric}", idle)
            if metric == "gas_lel" and value == 0.0:
                value = round(self.rng.uniform(0.0, 1.5), 1)  # sensor noise at clean air
            readings.append(p.Reading(sensor=s.id, metric=metric, value=value))
        seq, mid = self._next()
        msg = p.Telemetry(gw=self.id, seq=seq, id=mid, ts=now_ms, synced=True, readings=readings)
        pend = Pending(mid, p.Channel.TELEMETRY, p.encode(msg), alarm=False)
        self.pending[mid] = pend
        self.wake_at = 0.0
        return pend

    def status(self, state: p.GatewayState, reason: str, now_ms: int, heartbeat_s: int) -> bytes:
        msg = p.Status(
            gw=self.id,
            state=state,
            reason=reason,  # type: ignore[arg-type]
            ts=now_ms,
            synced=True,
            heartbeat_s=heartbeat_s,
            fw="firmware-sim/1",
            config_revision=self.config_revision,
            buffer_depth=len(self.pending),
            alarms_pending=sum(1 for x in self.pending.values() if x.alarm),
            sensors=[SensorHealth(id=s.id, model=s.model) for s in self.spec.sensors],
        )
        return p.encode(msg)

    def due(self, now: float) -> list[Pending]:
        """Pending messages to (re)send now, alarm-class first, then oldest first; schedules the next try.

        Alarm-class events always go; other messages only while fewer than ``window`` are
        in flight (sent, not yet acked, not yet due again), as the edge agent's window does.
        """
        in_flight = sum(1 for x in self.pending.values() if x.attempts and x.next_at > now and not x.alarm)
        room = max(0, self.window - in_flight)
        out: list[Pending] = []
        for x in sorted(self.pending.values(), key=lambda x: not x.alarm):
            if x.next_at > now:
                continue
            if not x.alarm:
                if room == 0:
                    continue
                room -= 1
            out.append(x)
        for x in out:
            x.attempts += 1
            x.sent_at = now
            x.next_at = now + self.resend_after(x.attempts)
        # nothing more is due before the first resend timer (a message held back by the
        # window goes when an ack frees room, and an ack sets wake_at to 0)
        self.wake_at = min((x.next_at for x in self.pending.values() if x.next_at > now), default=float("inf"))
        return out

    def resend_after(self, attempts: int) -> float:
        """Backoff from ``resend_s`` doubling to ``resend_max_s``, but never sooner than 4x the
        observed ack time: a hub that is slow (draining a backlog) is not also flooded with
        duplicates of messages it already has queued."""
        backoff: float = min(self.resend_max_s, self.resend_s * 2.0 ** (attempts - 1))
        return max(backoff, 4 * self.rtt_s) if self.rtt_s is not None else backoff

    def backlog(self, count: int, interval_s: float, now_ms: int) -> list[Pending]:
        """``count`` telemetry batches as if recorded every ``interval_s`` while the link was down."""
        return [self.telemetry(now_ms - int((count - i) * interval_s * 1000)) for i in range(count)]

    def reset_resend(self) -> None:
        """After a reconnect, everything pending goes out again at once (same ids)."""
        for x in self.pending.values():
            x.next_at = 0.0
            x.link_sent = 0.0
        self.wake_at = 0.0

    def alarm_unacked_for(self, now: float) -> float:
        """How long the oldest alarm sent on the current link has waited for its ack (0: none)."""
        return max((now - x.link_sent for x in self.pending.values() if x.alarm and x.link_sent), default=0.0)

    def on_ack(self, ack: p.Ack, now: float | None = None) -> list[p.AckItem]:
        """Drop stored/rejected messages; return the items meant for the people at home.

        With ``now`` (monotonic), an ack of a message sent once updates the ack-time estimate
        (Karn: a resent message's ack is ambiguous and not sampled)."""
        home: list[p.AckItem] = []
        for item in ack.items:
            if item.status in (p.AckStatus.STORED, p.AckStatus.REJECTED):
                done = self.pending.pop(item.id, None)
                if done is not None:
                    self.wake_at = 0.0  # room in the window
                    if done.alarm:
                        self.alarm_hangups = 0
                if done is not None and now is not None and done.attempts == 1:
                    sample = max(0.0, now - done.sent_at)
                    self.rtt_s = sample if self.rtt_s is None else 0.8 * self.rtt_s + 0.2 * sample
            else:
                home.append(item)
        return home
