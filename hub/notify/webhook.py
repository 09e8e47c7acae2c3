"""Webhook channel: POST the alarm as JSON, signed (see :mod:`hub.notify.signing`); a
subscription of another format (``cap``: life-safety alarm events as CAP 1.2 XML) gets the
body its renderer makes, handed in by whoever builds the channel (``hub/alarms/notifier.py``:
the notify layer knows no alarm formats).

Every delivery first resolves the URL's host and checks each address against the target
policy (:mod:`hub.notify.targets`; default: public addresses only), then posts to the
addresses it checked, in the resolver's order, going on to the next only when no connection
could be made at one. A refused target is a permanent failure (dead at once)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from hub.notify.channel import Delivered, Message, post
from hub.notify.errors import DeliveryFailed
from hub.notify.names import ChannelName
from hub.notify.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from hub.notify.targets import TargetPolicy, TargetRefused

#: A format's body of a payload: ``(body, media type)``; None: this payload goes as JSON.
Render = Callable[[Mapping[str, Any]], tuple[bytes, str] | None]
#: A subscriber URL's ``(signing secret or None, format)`` now (blocking).
Directory = Callable[[str], tuple[str | None, str]]


def _hosts(urls: list[httpx.URL], failed: list[DeliveryFailed]) -> str:
    """``address: error`` of each address tried in vain (``failed`` in the order of ``urls``)."""
    return "; ".join(f"{u.host}: {f.__cause__!r}" for u, f in zip(urls, failed, strict=False))


class WebhookChannel:
    name = ChannelName.WEBHOOK

    def __init__(
        self,
        client: httpx.AsyncClient,
        secrets: Mapping[str, str] | Callable[[str], str | None] | None = None,
        wall_clock: Callable[[], float] = time.time,
        formats: Callable[[str], str] | None = None,
        renderers: Mapping[str, Render] | None = None,
        targets: TargetPolicy | None = None,
        on_refused: Callable[[str], None] | None = None,
        directory: Directory | None = None,
    ) -> None:
        """Each subscriber URL's secret and format come from ``directory`` (the hub's: read
        from the subscription for every delivery, in a worker thread), or else from
        ``secrets`` and ``formats`` (``json`` unless told); ``renderers``: the body of each
        format other than ``json``; ``targets``: where posts may go (default: public
        addresses only); ``on_refused``: called with the rule of each refused delivery
        (metrics)."""
        self._client = client
        secrets = secrets if secrets is not None else {}
        self._secret = secrets.get if isinstance(secrets, Mapping) else secrets
        self._directory = directory
        self._wall = wall_clock
        self._format = formats or (lambda _url: "json")
        self._renderers = dict(renderers or {})
        self._targets = targets or TargetPolicy()
        self._on_refused = on_refused

    async def send(self, message: Message) -> Delivered:
        if self._directory is not None:  # blocking (a database read): off the event loop
            secret, fmt = await asyncio.to_thread(self._directory, message.address)
        else:
            secret, fmt = self._secret(message.address), self._format(message.address)
        if not secret:
            raise DeliveryFailed(f"no secret configured for webhook {message.address}", retryable=False)
        try:
            urls, host, extensions = await self._targets.pinned(message.address)
        except TargetRefused as exc:
            if self._on_refused is not None:
                self._on_refused(exc.rule)
            raise DeliveryFailed(f"refused: {exc}", retryable=False) from exc
        except OSError as exc:  # DNS down or the name gone: may come back
            raise DeliveryFailed(f"cannot resolve the host of {message.address}: {exc}") from exc
        body, content_type = self._body(message, fmt)
        ts = int(self._wall())
        headers = {
            "Content-Type": content_type,
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(secret, ts, body),
            DELIVERY_HEADER: message.notification_id,
            EVENT_HEADER: str(message.payload.get("event", "alarm")),
            **host,
        }
        failed: list[DeliveryFailed] = []
        for url in urls:
            try:
                return await post(
                    self._client, url, content=body, headers=headers, extensions=extensions, shown=message.address
                )
            except DeliveryFailed as exc:
                # no connection at this address (refused, unreachable, connect timeout): the
                # receiver may answer at its next one (a dual-stack name whose IPv6 is down, a
                # name with several servers); anything after the connect is the receiver's answer
                if isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout):
                    failed.append(exc)
                    continue
                if not failed:
                    raise
                raise DeliveryFailed(
                    f"{exc} (at {url.host}; no connection before at {_hosts(urls, failed)})",
                    retryable=exc.retryable,
                    status_code=exc.status_code,
                ) from exc
        if len(failed) == 1:
            raise failed[0]
        raise DeliveryFailed(
            f"cannot post to {message.address}: no connection at any of its {len(urls)} addresses "
            f"({_hosts(urls, failed)})"
        ) from failed[-1]

    def _body(self, message: Message, fmt: str) -> tuple[bytes, str]:
        payload = message.payload
        render = self._renderers.get(fmt) if self._renderers else None
        rendered = render(payload) if render is not None else None
        return rendered or (orjson.dumps(dict(payload)), "application/json")
