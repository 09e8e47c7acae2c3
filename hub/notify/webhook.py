"""Webhook channel: POST the alarm as JSON, signed (see :mod:`hub.notify.signing`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import httpx
import orjson

from hub.notify.channel import Delivered, Message, post
from hub.notify.errors import DeliveryFailed
from hub.notify.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        client: httpx.AsyncClient,
        secrets: Mapping[str, str] | Callable[[str], str | None],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._secret = secrets.get if isinstance(secrets, Mapping) else secrets
        self._wall = wall_clock

    async def send(self, message: Message) -> Delivered:
        secret = self._secret(message.address)
        if not secret:
            raise DeliveryFailed(f"no secret configured for webhook {message.address}", retryable=False)
        body = orjson.dumps(dict(message.payload))
        ts = int(self._wall())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(secret, ts, body),
            DELIVERY_HEADER: message.notification_id,
            EVENT_HEADER: str(message.payload.get("event", "alarm")),
        }
        return await post(self._client, message.address, content=body, headers=headers)
