"""Settings of the alarm engine and its notifications (table ``[hub.alarms]``,
env ``SAFEHOME_HUB_ALARMS__*``). Part of :class:`hub.settings.HubSettings`."""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from hub.alarms.classes import is_life_safety
from hub.alarms.errors import PolicyError
from hub.alarms.escalation import EscalationPolicy
from hub.alarms.storm import STORM_KINDS, StormPolicy
from hub.notify.targets import TargetPolicy


class ProviderSettings(BaseModel):
    """An SMS or voice HTTP provider (carrier gateway)."""

    model_config = ConfigDict(extra="forbid")
    url: str
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "safehome"


class StormSettings(BaseModel):
    """Mass events (``[hub.alarms.storm]``): see :class:`hub.alarms.storm.StormPolicy`."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    kinds: list[str] = Field(default_factory=lambda: sorted(STORM_KINDS))
    area: Literal["subdistrict", "workstation"] = "subdistrict"
    threshold: int = Field(default=10, ge=1, description="storm alarms of one area within window_s")
    window_s: float = Field(default=60.0, gt=0)
    quiet_s: float = Field(default=300.0, gt=0, description="an incident ends after this long without a member")
    unfold_max: int = Field(default=10, ge=0, description="members still open at the end routed one by one")
    update_every_s: float = Field(default=10.0, gt=0, description="running count pushed at most this often")
    hold_s: float = Field(default=5.0, ge=0, description="a below-threshold storm alarm's notifications wait this long")

    @field_validator("kinds")
    @classmethod
    def _never_life_safety(cls, v: list[str]) -> list[str]:
        bad = sorted(k for k in v if is_life_safety(k))
        if bad:
            raise ValueError(f"life-safety kinds are never folded into a mass event: {', '.join(bad)}")
        return v

    def policy(self) -> StormPolicy:
        return StormPolicy(
            enabled=self.enabled,
            kinds=frozenset(self.kinds),
            area=self.area,
            threshold=self.threshold,
            window_s=self.window_s,
            quiet_s=self.quiet_s,
            unfold_max=self.unfold_max,
            update_every_s=self.update_every_s,
            hold_s=self.hold_s,
        )


class WebhookSettings(BaseModel):
    """Where webhooks may post (``[hub.alarms.webhooks]``): public addresses only unless
    allowed here (:mod:`hub.notify.targets`). Applies to every subscription, made through
    the API or with ``safehome hub webhook add``."""

    model_config = ConfigDict(extra="forbid")
    allow_private: bool = Field(
        default=False,
        description="also post to private networks (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7); "
        "never loopback, link-local or the hub's own addresses",
    )
    allow_networks: list[str] = Field(
        default_factory=list,
        description='networks webhooks may post to whatever the rules say, e.g. ["10.1.0.0/16"]',
    )

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for i, net in enumerate(v):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"allow_networks[{i}] = {net!r} is not a network (e.g. 10.1.0.0/16): {exc}") from None
        return v

    def policy(self) -> TargetPolicy:
        return TargetPolicy.of(self.allow_private, self.allow_networks)


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
    #: The periodic re-check leaves signals younger than this to the live path (the inbox
    #: decides a storm's 4,000 within ~20 s); the re-check at start takes every one. A
    #: signal lost with a worker that never comes back: decided by another within
    #: reconcile_min_age_s + reconcile_every_s (90 s).
    reconcile_min_age_s: float = Field(default=30.0, ge=0, description="the re-check skips younger signals")
    outbox_idle_s: float = Field(default=0.5, gt=0)
    send_timeout_s: float = Field(default=15.0, gt=0)
    #: How long a worker's claim on a notification holds unrenewed: renewed every third of
    #: it while the worker still has the notification in hand, so this is the longest a
    #: killed worker's notifications wait before another worker sends them (a worker
    #: restarted under the same worker_id sends them again at once). Keep it just above
    #: send_timeout_s: shorter costs more renewals, longer delays alarms after a crash.
    outbox_lease_s: float = Field(default=20.0, ge=3)
    retry_max_attempts: int = Field(default=8, ge=1)
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    sms: ProviderSettings | None = None
    voice: ProviderSettings | None = None
    #: Tell the home (MQTT Ack acknowledged/dispatched/…) when a person acts.
    home_acks: bool = True
    storm: StormSettings = Field(default_factory=StormSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    #: Non-life-safety signals decided per transaction at most (a supervision round opening
    #: 2,000 conditions: 2,000 / batch_max commits, each holding SQLite's write lock briefly).
    batch_max: int = Field(default=50, ge=1, le=1000)
    #: Run the outbox workers (deliver notifications) in this worker. None: only a worker that
    #: consumes the priority lane does (a telemetry-lane worker would compete for SQLite's
    #: write lock with the alarm path, settling deliveries it adds nothing to).
    deliver: bool | None = None

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
