"""The documented shape of an alarm event (a webhook body and a live-stream item): what
``alarm_payload``/``event_payload`` in :mod:`hub.alarms.engine.actions` produce, plus what
the outbox adds (``tier``, ``role``). docs/api.md's examples are validated against it, and
tests check the code's payloads against it, so the two cannot drift apart."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventName = Literal[
    "alarm.raised",
    "alarm.notified",
    "alarm.acknowledged",
    "alarm.dispatched",
    "alarm.on_site",
    "alarm.resolved",
    "alarm.reviewed",
    "alarm.restored",
    "alarm.reactivated",
    "alarm.escalated",
]


class AlarmEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    event: EventName
    alarm_id: str
    kind: str
    class_: str = Field(alias="class")
    priority: int
    state: str
    gateway_id: str
    sensor_id: str | None
    home_id: str | None
    workstation_id: str | None
    subdistrict_id: str | None
    district_id: str | None
    address: str
    location: str
    device_model: str | None
    raised_at: str
    count: int
    flags: list[str]
    seq: int = Field(ge=1, description="the alarm's own line number: 1 = raised, gap-free")
    # a follow-up line (every event but the routed raise/escalation) says what happened
    action: str | None = None
    at: str | None = None
    actor: str | None = None
    outcome: str | None = None
    responder: str | None = None
    routing_error: str | None = None
    # added by the outbox for a webhook delivery (absent on the live stream)
    tier: str | None = None
    role: str | None = None
