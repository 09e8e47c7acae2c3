"""Build uplink messages (pure: the caller passes seq, id and time)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from devices.runtime import Change
from edge.policy import lane_for_event
from edge.store import LANE_TELEMETRY, Entry
from protocols import (
    Channel,
    Event,
    EventKind,
    EventState,
    GatewayState,
    Reading,
    Status,
    Telemetry,
    encode,
)
from protocols.codec import LIMITS
from protocols.messages import MAX_READINGS, ConfigRefusal, SensorHealth, Values


@dataclass(frozen=True, slots=True)
class Stamp:
    seq: int
    id: str
    ts: int
    synced: bool


#: Change values that an Event carries (protocols.Values fields)
EVENT_VALUES = ("lel", "battery_v")


def event_from_change(gw: str, change: Change, st: Stamp) -> Event:
    carried = {k: change.values[k] for k in EVENT_VALUES if k in change.values}
    values = Values.model_validate(carried) if carried else None
    return Event(
        gw=gw,
        seq=st.seq,
        id=st.id,
        ts=st.ts,
        synced=st.synced,
        sensor=change.sensor or None,
        kind=EventKind(change.kind),
        state=EventState.ALARM if change.alarm else EventState.RESTORE,
        values=values,
    )


def event_entry(ev: Event) -> Entry:
    return Entry(ev.id, lane_for_event(ev.kind, ev.state), "event", ev.seq, ev.ts, encode(ev))


#: Room for a Telemetry message's own fields (v, gw, seq, id, ts, synced) at their widest.
ENVELOPE = 256


def readings_of(readings: Mapping[str, Mapping[str, float]]) -> list[Reading]:
    return [
        Reading(sensor=sensor, metric=metric, value=float(value))
        for sensor, values in readings.items()
        for metric, value in sorted(values.items())
    ]


def split(rows: list[Reading], limit: int = LIMITS[Channel.TELEMETRY]) -> list[list[Reading]]:
    """Rows in batches that each encode within the telemetry payload limit (and at most
    ``MAX_READINGS``): above the broker's packet limit Mosquitto disconnects the gateway,
    which would resend the same packet for ever."""
    batches: list[list[Reading]] = []
    batch: list[Reading] = []
    size = ENVELOPE
    for r in rows:
        n = len(r.model_dump_json(exclude_none=True)) + 1  # (+1: the comma)
        if batch and (size + n > limit or len(batch) >= MAX_READINGS):
            batches.append(batch)
            batch, size = [], ENVELOPE
        batch.append(r)
        size += n
    if batch:
        batches.append(batch)
    return batches


def telemetry(gw: str, rows: list[Reading], st: Stamp) -> Telemetry:
    return Telemetry(gw=gw, seq=st.seq, id=st.id, ts=st.ts, synced=st.synced, readings=rows)


def telemetry_entry(t: Telemetry) -> Entry:
    return Entry(t.id, LANE_TELEMETRY, "telemetry", t.seq, t.ts, encode(t))


@dataclass(frozen=True, slots=True)
class Health:
    depth: int
    alarms_pending: int
    oldest_unacked_s: float | None
    uptime_s: float
    cpu_temp_c: float | None
    config_revision: int | None
    sensors: tuple[tuple[str, str, bool], ...]  # (id, model, ok)
    config_error: ConfigRefusal | None = None


def status(
    gw: str,
    state: GatewayState,
    reason: str,
    ts: int,
    synced: bool,
    heartbeat_s: int,
    fw: str,
    health: Health | None = None,
) -> Status:
    extra: dict[str, object] = {}
    if health is not None:
        extra = {
            "buffer_depth": health.depth,
            "alarms_pending": health.alarms_pending,
            "oldest_unacked_s": health.oldest_unacked_s,
            "uptime_s": round(health.uptime_s, 1),
            "cpu_temp_c": health.cpu_temp_c,
            "config_revision": health.config_revision,
            "config_error": health.config_error,
            "sensors": [SensorHealth(id=i, model=m, ok=ok) for i, m, ok in health.sensors[:64]],
        }
    return Status.model_validate(
        {
            "gw": gw,
            "state": state,
            "reason": reason,
            "ts": ts,
            "synced": synced,
            "heartbeat_s": heartbeat_s,
            "fw": fw,
            **{k: v for k, v in extra.items() if v is not None},
        },
        strict=False,
    )
