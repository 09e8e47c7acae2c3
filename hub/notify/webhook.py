"""Webhook channel: POST the alarm as JSON, signed (see :mod:`hub.notify.signing`); a
subscription of format ``cap`` gets life-safety alarm events as CAP 1.2 XML instead."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import httpx
import orjson

from hub.alarms.cap import MEDIA_TYPE as CAP_MEDIA_TYPE
from hub.alarms.cap import to_cap
from hub.alarms.classes import is_life_safety
from hub.notify.channel import Delivered, Message, post
from hub.notify.errors import DeliveryFailed
from hub.notify.names import ChannelName
from hub.notify.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign


class WebhookChannel:
    name = ChannelName.WEBHOOK

    def __init__(
        self,
        client: httpx.AsyncClient,
        secrets: Mapping[str, str] | Callable[[str], str | None],
        wall_clock: Callable[[], float] = time.time,
        formats: Callable[[str], str] | None = None,
    ) -> None:
        self._client = client
        self._secret = secrets.get if isinstance(secrets, Mapping) else secrets
        self._wall = wall_clock
        self._format = formats or (lambda _url: "json")

    async def send(self, message: Message) -> Delivered:
        secret = self._secret(message.address)
        if not secret:
            raise DeliveryFailed(f"no secret configured for webhook {message.address}", retryable=False)
        body, content_type = self._body(message)
        ts = int(self._wall())
        headers = {
            "Content-Type": content_type,
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(secret, ts, body),
            DELIVERY_HEADER: message.notification_id,
            EVENT_HEADER: str(message.payload.get("event", "alarm")),
        }
        return await post(self._client, message.address, content=body, headers=headers)

    def _body(self, message: Message) -> tuple[bytes, str]:
        payload = message.payload
        if (
            self._format(message.address) == "cap"
            and str(payload.get("event", "")).startswith("alarm.")
            and is_life_safety(str(payload.get("kind", "")))
        ):
            return to_cap(payload), CAP_MEDIA_TYPE
        return orjson.dumps(dict(payload)), "application/json"
