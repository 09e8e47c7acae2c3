"""SMS and voice through an HTTP provider (carrier gateway): configurable URL and auth.

The request is ``POST {url}`` with JSON ``{"to", "text", "kind", "reference"}`` and either a
bearer token or basic auth. Providers differ; this adapter is the one place to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from hub.notify.channel import Delivered, Message, post
from hub.notify.names import ChannelName


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    url: str
    token: str | None = None
    username: str | None = None
    password: str | None = None
    sender: str = "safehome"

    def __repr__(self) -> str:  # never log secrets
        return f"ProviderConfig(url={self.url!r}, sender={self.sender!r})"


def render_text(payload: dict[str, object]) -> str:
    """A short message a person can act on: what, where, which alarm."""
    kind = str(payload.get("kind", "alarm")).upper()
    where = payload.get("address") or payload.get("home_id") or payload.get("gateway_id")
    loc = payload.get("location")
    tier = payload.get("tier")
    head = "[safehome ESCALATION] " if tier and tier != "initial" else "[safehome] "
    return f"{head}{kind} {where}{f' ({loc})' if loc else ''} alarm {payload.get('alarm_id')}"


class HttpProviderChannel:
    """One instance per kind: ``sms`` or ``voice``."""

    def __init__(self, client: httpx.AsyncClient, config: ProviderConfig, kind: str = ChannelName.SMS) -> None:
        if kind not in (ChannelName.SMS, ChannelName.VOICE):
            raise ValueError(f"provider kind {kind!r} is not sms or voice")
        self.name = ChannelName(kind)
        self._client = client
        self._config = config

    async def send(self, message: Message) -> Delivered:
        c = self._config
        headers = {"Authorization": f"Bearer {c.token}"} if c.token else {}
        auth = httpx.BasicAuth(c.username, c.password or "") if c.username else None
        body = {
            "to": message.address,
            "text": render_text(dict(message.payload)),
            "kind": self.name,
            "sender": c.sender,
            "reference": message.notification_id,
        }
        kwargs: dict[str, Any] = {"json": body, "headers": headers}
        if auth is not None:
            kwargs["auth"] = auth
        return await post(self._client, c.url, **kwargs)
