"""Settings of the alarm engine and its notifications (table ``[hub.alarms]``,
env ``SAFEHOME_HUB_ALARMS__*``). Part of :class:`hub.settings.HubSettings`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from hub.alarms.errors import PolicyError
from hub.alarms.escalation import EscalationPolicy


class ProviderSettings(BaseModel):
    """An SMS or voice HTTP provider (carrier gateway)."""

    model_config = ConfigDict(extra="forbid")
    url: str
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "safehome"


class AlarmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: District that alarms of unregistered gateways go to (default: the first one).
    default_district: str | None = None
    #: Escalation policy as data, per alarm class; None = the built-in default
    #: (alarm: not acknowledged in 60 s → subdistrict, not dispatched in 10 min → district).
    escalation: dict[str, list[dict[str, Any]]] | None = None
    timer_tick_s: float = Field(default=1.0, gt=0)
    reconcile_every_s: float = Field(default=60.0, gt=0, description="re-check stored events/conditions")
    reconcile_window_s: float = Field(default=86_400.0, gt=0, description="how far back the re-check looks")
    outbox_idle_s: float = Field(default=0.5, gt=0)
    send_timeout_s: float = Field(default=15.0, gt=0)
    retry_max_attempts: int = Field(default=8, ge=1)
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    sms: ProviderSettings | None = None
    voice: ProviderSettings | None = None
    #: Tell the home (MQTT Ack acknowledged/dispatched/…) when a person acts.
    home_acks: bool = True

    @field_validator("escalation")
    @classmethod
    def _policy_ok(cls, v: dict[str, list[dict[str, Any]]] | None) -> dict[str, list[dict[str, Any]]] | None:
        if v is not None:
            try:
                EscalationPolicy.from_data(v)
            except PolicyError as exc:
                raise ValueError(str(exc)) from exc
        return v

    def escalation_policy(self) -> EscalationPolicy | None:
        return EscalationPolicy.from_data(self.escalation) if self.escalation is not None else None
