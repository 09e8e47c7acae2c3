"""API models of webhook subscriptions and their delivery log (``/api/v1/webhooks``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.webhooks_cli import MAX_SECRET_LENGTH, MIN_SECRET_LENGTH

#: An http(s) URL without spaces, within the column (``webhook_subscriptions.url``).
Url = Annotated[str, StringConstraints(min_length=8, max_length=500, pattern=r"^https?://[^\s/?#]+[^\s]*$")]
Region = Annotated[
    str, StringConstraints(max_length=81, pattern=r"^(workstation|subdistrict|district):[^\s:]{1,64}$")
]
Name = Annotated[str, StringConstraints(max_length=200)]
Secret = Annotated[str, StringConstraints(min_length=MIN_SECRET_LENGTH, max_length=MAX_SECRET_LENGTH)]
Format = Literal["json", "cap"]
DeliveryStatus = Literal["pending", "sending", "delivered", "dead", "unconfigured", "folded"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookCreate(_In):
    url: Url = Field(description="http(s) endpoint that receives the signed POSTs")
    region: Region | None = Field(
        default=None, description="whose alarms: `workstation:ID`, `subdistrict:ID` or `district:ID` "
        "inside the caller's region (default: the caller's region)"
    )  # fmt: skip
    name: Name = ""
    format: Format = Field(default="json", description="`cap`: life-safety alarm events as CAP 1.2 XML")
    secret: Secret | None = Field(
        default=None,
        description=f"HMAC-SHA256 signing secret, {MIN_SECRET_LENGTH}-{MAX_SECRET_LENGTH} characters and "
        "not guessable (default: 256 random bits, generated); shown once in the answer",
    )


class WebhookUpdate(_In):
    name: Name | None = None
    format: Format | None = None
    active: bool | None = Field(default=None, description="false: no more deliveries; true: again")


class SecretRotate(_In):
    secret: Secret | None = Field(default=None, description="the new secret (default: generated)")


class WebhookPublic(BaseModel):
    id: int
    url: str
    region: str
    name: str
    format: str
    active: bool


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="the signing secret: shown this once, never again")


class SecretShown(BaseModel):
    id: int
    secret: str = Field(description="the new signing secret: shown this once, never again")


class WebhooksList(BaseModel):
    items: list[WebhookPublic]


class DeliveryQueued(BaseModel):
    delivery_id: str = Field(description="the `X-Safehome-Delivery` header the receiver will see")
    status: DeliveryStatus


class AttemptPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    started_at: dt.datetime
    finished_at: dt.datetime
    ok: bool
    status_code: int | None = Field(description="the receiver's HTTP status; null: no answer")
    detail: str


class DeliveryPublic(BaseModel):
    id: str = Field(description="the delivery id (`X-Safehome-Delivery`), the same on every attempt")
    event: str = Field(description="`alarm.raised` … `alarm.reviewed`, `incident.*`, `ping`")
    alarm_id: str | None
    seq: int | None = Field(description="the alarm's history line (order and deduplicate by it)")
    status: str = Field(description="pending, sending, delivered, dead")
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None = Field(description="pending: when the next attempt is due")
    delivered_at: dt.datetime | None
    last_error: str | None


class DeliveryDetail(DeliveryPublic):
    attempt_log: list[AttemptPublic] = Field(description="every attempt, oldest first")
    payload: dict[str, Any] = Field(
        description="the JSON event as sent (CAP subscriptions: before rendering)"
    )


class DeliveriesPage(BaseModel):
    items: list[DeliveryPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null at the end")
