"""Message models of protocol v1 (pydantic v2, JSON on the wire).

Uplink (gateway → hub): :class:`Event`, :class:`Telemetry`, :class:`Status`,
:class:`CommandResult`. Downlink (hub → gateway): :class:`Ack`, :class:`Config`,
:class:`Command`. Field names are short because every byte crosses a metered link.
All models are frozen, validate strictly (no "5" for 5, no 0 for false, no NaN) and
ignore unknown fields, so that a v1.x gateway can talk to a v1.y hub.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from protocols.ids import ID_PATTERN

#: Version written by this implementation. Decoders accept any ``1.x``.
PROTOCOL_VERSION = "1.1"
VERSION_PATTERN = r"^1\.[0-9]{1,4}$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#: Largest plausible epoch milliseconds (year 2200); 0 is allowed for "clock never set".
MAX_TS_MS = 7_258_118_400_000
MAX_SEQ = 2**63 - 1

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]
Uuid = Annotated[str, StringConstraints(pattern=UUID_PATTERN, min_length=36, max_length=36)]
Version = Annotated[str, StringConstraints(pattern=VERSION_PATTERN)]
TsMs = Annotated[int, Field(ge=0, le=MAX_TS_MS)]
Seq = Annotated[int, Field(ge=0, le=MAX_SEQ)]
ShortText = Annotated[str, StringConstraints(max_length=500)]
Scalar = str | int | float | bool | None


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, strict=True, allow_inf_nan=False, use_enum_values=False
    )


class AlarmClass(enum.StrEnum):
    """Fire-alarm convention: life safety, supervision, trouble; tests are their own class."""

    ALARM = "alarm"
    SUPERVISORY = "supervisory"
    TROUBLE = "trouble"
    TEST = "test"


class EventKind(enum.StrEnum):
    """What happened. The class of each kind is fixed by :func:`class_of`."""

    SMOKE = "smoke"
    GAS = "gas"
    PANIC = "panic"
    HEAT = "heat"
    CO = "co"
    SENSOR_FAULT = "sensor_fault"
    SENSOR_SILENT = "sensor_silent"
    TAMPER = "tamper"
    BATTERY_LOW = "battery_low"
    MAINS_LOST = "mains_lost"
    CLOCK_UNSYNCED = "clock_unsynced"
    BUFFER_FAILED = "buffer_failed"
    TEST = "test"


_CLASS_OF: dict[EventKind, AlarmClass] = {
    EventKind.SMOKE: AlarmClass.ALARM,
    EventKind.GAS: AlarmClass.ALARM,
    EventKind.PANIC: AlarmClass.ALARM,
    EventKind.HEAT: AlarmClass.ALARM,
    EventKind.CO: AlarmClass.ALARM,
    EventKind.SENSOR_FAULT: AlarmClass.SUPERVISORY,
    EventKind.SENSOR_SILENT: AlarmClass.SUPERVISORY,
    EventKind.TAMPER: AlarmClass.TROUBLE,
    EventKind.BATTERY_LOW: AlarmClass.TROUBLE,
    EventKind.MAINS_LOST: AlarmClass.TROUBLE,
    EventKind.CLOCK_UNSYNCED: AlarmClass.TROUBLE,
    EventKind.BUFFER_FAILED: AlarmClass.TROUBLE,
    EventKind.TEST: AlarmClass.TEST,
}


def class_of(kind: EventKind) -> AlarmClass:
    """The alarm class of an event kind (alarm > supervisory > trouble > test)."""
    return _CLASS_OF[kind]


class EventState(enum.StrEnum):
    ALARM = "alarm"  #: the condition started (or is still present)
    RESTORE = "restore"  #: the condition ended


class _Uplink(_Model):
    """Fields every uplink message carries."""

    v: Version = Field(default=PROTOCOL_VERSION, description="Protocol version MAJOR.MINOR")
    gw: Id = Field(description="Gateway id; must equal the gateway id in the topic")
    seq: Seq = Field(description="Per-gateway sequence, +1 per uplink message, kept across reboots")
    id: Uuid = Field(description="Globally unique message id (UUIDv7), kept across resends")
    ts: TsMs = Field(description="Device time, Unix epoch milliseconds")
    synced: bool = Field(description="True when the device clock was NTP-synchronised at ts")


class Values(_Model):
    """Optional measurements attached to an event."""

    ppm: Annotated[float, Field(ge=0, le=1_000_000)] | None = None
    lel: Annotated[float, Field(ge=0, le=100)] | None = Field(default=None, description="% of LEL")
    battery_v: Annotated[float, Field(ge=0, le=60)] | None = None
    rssi: Annotated[int, Field(ge=-150, le=0)] | None = None
    temperature_c: Annotated[float, Field(ge=-60, le=200)] | None = None


class Event(_Uplink):
    """An alarm, supervisory, trouble or test event, or its restore. Acked by the hub."""

    sensor: Id | None = Field(default=None, description="Sensor id; absent for the gateway itself")
    kind: EventKind
    state: EventState
    values: Values | None = None

    @property
    def alarm_class(self) -> AlarmClass:
        return class_of(self.kind)


MAX_READINGS = 1000


class Reading(_Model):
    sensor: Id
    metric: Id = Field(description="e.g. gas_lel, gas_ppm, battery_v, rssi, temperature_c")
    value: Annotated[float, Field(ge=-1e12, le=1e12)]
    ts: TsMs | None = Field(default=None, description="Reading time; defaults to the message ts")


class Telemetry(_Uplink):
    """A batch of periodic readings. Acked by the hub like events."""

    readings: Annotated[list[Reading], Field(min_length=1, max_length=MAX_READINGS)]


class GatewayState(enum.StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class SensorHealth(_Model):
    id: Id
    model: Id
    ok: bool = True


class ConfigRefusal(_Model):
    """Why the gateway did not apply a config revision (protocol 1.1): it keeps running
    the revision in ``config_revision`` and reports this until a newer one applies."""

    revision: Annotated[int, Field(ge=0)]
    reason: Id = Field(description="unknown_sensor, model_mismatch, missing_sensor, invalid, ...")
    detail: ShortText = ""


class Status(_Model):
    """Retained gateway status: birth, heartbeat, and the Last-Will "offline"."""

    v: Version = PROTOCOL_VERSION
    gw: Id
    state: GatewayState
    reason: Literal["birth", "heartbeat", "lwt", "shutdown", "report"] = "heartbeat"
    seq: Seq | None = None
    ts: TsMs
    synced: bool
    heartbeat_s: Annotated[int, Field(ge=1, le=86_400)] = Field(
        default=30, description="Interval the gateway promises between heartbeats"
    )
    fw: Annotated[str, StringConstraints(max_length=64)] | None = None
    config_revision: Annotated[int, Field(ge=0)] | None = None
    buffer_depth: Annotated[int, Field(ge=0)] | None = None
    alarms_pending: Annotated[int, Field(ge=0)] | None = None
    oldest_unacked_s: Annotated[float, Field(ge=0)] | None = None
    uptime_s: Annotated[float, Field(ge=0)] | None = None
    cpu_temp_c: Annotated[float, Field(ge=-60, le=200)] | None = None
    sensors: Annotated[list[SensorHealth], Field(max_length=64)] = []
    config_error: ConfigRefusal | None = Field(
        default=None, description="The newest config revision received and refused (1.1)"
    )


class CommandName(enum.StrEnum):
    """Commands every v1 gateway implements. Others are answered ok=false, unknown_command."""

    SELFTEST = "selftest"
    SILENCE_SIREN = "silence_siren"
    RELOAD_CONFIG = "reload_config"
    REPORT_STATUS = "report_status"


class CommandResult(_Uplink):
    command_id: Uuid
    command: Id
    ok: bool
    detail: ShortText = ""
    data: Annotated[dict[Id, Scalar], Field(max_length=64)] = {}


# --- downlink --------------------------------------------------------------------------


class AckStatus(enum.StrEnum):
    """What the hub did with an uplink message (or with the alarm it raised)."""

    STORED = "stored"  #: durably stored (first time or duplicate): drop it from the buffer
    REJECTED = "rejected"  #: permanently refused (see reason): drop it, do not resend
    ACKNOWLEDGED = "acknowledged"  #: a person at the center has acknowledged the alarm
    DISPATCHED = "dispatched"  #: help is on the way
    ON_SITE = "on_site"  #: the responder has arrived
    RESOLVED = "resolved"  #: the case is closed


class AckItem(_Model):
    id: Uuid = Field(description="Id of the uplink message this is about")
    status: AckStatus
    reason: ShortText | None = Field(
        default=None, description="On rejected: the stable reason code (bad_field, too_large, ...)"
    )
    field: Annotated[str, StringConstraints(max_length=120)] | None = Field(
        default=None, description="On rejected: the offending field, dotted for nested fields"
    )
    detail: ShortText | None = Field(default=None, description="On rejected: a human-readable explanation")
    alarm_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    by: Annotated[str, StringConstraints(max_length=120)] | None = Field(
        default=None, description="Who acted (a role or workstation name, never personal data)"
    )


class Ack(_Model):
    v: Version = PROTOCOL_VERSION
    gw: Id
    ts: TsMs
    items: Annotated[list[AckItem], Field(min_length=1, max_length=1000)]


class SensorConfig(_Model):
    id: Id
    model: Id
    enabled: bool = True
    interval_s: Annotated[int, Field(ge=10, le=86_400)] = Field(
        default=3600, description="Longest silence expected from this sensor"
    )
    params: Annotated[dict[Id, Scalar], Field(max_length=32)] = {}


class Config(_Model):
    """Desired gateway configuration, retained on the config topic."""

    v: Version = PROTOCOL_VERSION
    gw: Id
    revision: Annotated[int, Field(ge=0)]
    ts: TsMs
    heartbeat_s: Annotated[int, Field(ge=5, le=3600)] = 30
    telemetry_s: Annotated[int, Field(ge=10, le=86_400)] = 60
    backlog_order: Literal["oldest_first", "newest_first"] = "oldest_first"
    siren_enabled: bool = True
    siren_timeout_s: Annotated[int, Field(ge=0, le=3600)] = 600
    sensors: Annotated[list[SensorConfig], Field(max_length=64)] = []


class Command(_Model):
    v: Version = PROTOCOL_VERSION
    gw: Id
    id: Uuid
    name: Id = Field(description="One of CommandName; unknown names are answered ok=false")
    ts: TsMs
    expires: TsMs | None = Field(default=None, description="Do not run after this time")
    args: Annotated[dict[Id, Scalar], Field(max_length=16)] = {}
