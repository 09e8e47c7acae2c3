"""The notification channels of one hub worker, as the alarm settings configure them, and
the webhook directory they read (each subscription's signing secret and format).

The channels themselves live in ``hub/notify/``; this module only chooses and builds them
(console, webhook and home always; SMS and voice with a provider) and hands them to a
:class:`~hub.notify.dispatch.Dispatcher`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms import cap
from hub.alarms.settings import AlarmSettings, ProviderSettings
from hub.alarms.store.models import WebhookSubscription
from hub.db.engine import read_only
from hub.notify.channel import Channel
from hub.notify.console import ConsoleBus
from hub.notify.errors import DeliveryFailed
from hub.notify.home import AckPublisher, HomeAckChannel
from hub.notify.sms import HttpProviderChannel, ProviderConfig
from hub.notify.webhook import WebhookChannel
from hub.sealing import SealingError, SecretBox

log = logging.getLogger(__name__)

#: A webhook's signing secret is read from the database at most this often (the send path
#: runs on the event loop); a changed secret signs within this many seconds.
SECRET_TTL_S = 10.0


def _provider(p: ProviderSettings) -> ProviderConfig:
    return ProviderConfig(
        p.url,
        token=p.token.get_secret_value() if p.token else None,
        username=p.username,
        password=p.password.get_secret_value() if p.password else None,
        sender=p.sender,
    )


class WebhookDirectory:
    """Each webhook URL's signing secret (opened with the hub's key) and payload format,
    read from the subscriptions at most every :data:`SECRET_TTL_S`."""

    def __init__(
        self, sessions: sessionmaker[Session], box: SecretBox, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.sessions = sessions
        self.box = box
        self.monotonic = monotonic  #: the cache's clock
        self._secrets: dict[str, tuple[str | None, float]] = {}  #: url → (secret, read at)
        self._formats: dict[str, tuple[str, float]] = {}  #: url → (format, read at)

    def secret(self, url: str) -> str | None:
        """The signing secret of the webhook at ``url``, opened."""
        now = self.monotonic()
        cached = self._secrets.get(url)
        if cached is not None and now - cached[1] < SECRET_TTL_S:
            return cached[0]
        with self.sessions() as s:
            sealed = read_only(s).scalars(
                select(WebhookSubscription.secret_sealed).where(WebhookSubscription.url == url).limit(1)
            ).first()
        try:
            secret = self.box.open(sealed) if sealed is not None else None
        except SealingError as exc:
            # A wrong or missing key is a configuration fault: retried (with backoff) so
            # that deliveries go out once the key is fixed, and loud in the log meanwhile.
            log.error("webhook %s: its secret does not open: %s ([hub.secrets] key_file)", url, exc)
            raise DeliveryFailed(
                f"webhook secret of {url} does not open with the configured key", retryable=True
            ) from exc
        self._secrets[url] = (secret, now)
        return secret

    def format(self, url: str) -> str:
        """``json`` or ``cap`` (the subscription's choice)."""
        now = self.monotonic()
        cached = self._formats.get(url)
        if cached is not None and now - cached[1] < SECRET_TTL_S:
            return cached[0]
        with self.sessions() as s:
            fmt = read_only(s).scalars(
                select(WebhookSubscription.format).where(WebhookSubscription.url == url).limit(1)
            ).first()
        self._formats[url] = (fmt or "json", now)
        return fmt or "json"


def channels(
    settings: AlarmSettings,
    http: httpx.AsyncClient,
    bus: ConsoleBus,
    webhooks: WebhookDirectory,
    publisher: AckPublisher | None,
    on_refused: Callable[[str], None] | None = None,
) -> list[Channel]:
    """The channels ``settings`` configure: console and webhook always, SMS and voice with a
    provider, home acks with an MQTT publisher. ``on_refused``: a webhook delivery refused
    by the target rules (``[hub.alarms.webhooks]``), with the rule."""
    hook = WebhookChannel(
        http,
        webhooks.secret,
        formats=webhooks.format,
        renderers={"cap": cap.webhook_body},
        targets=settings.webhooks.policy(),
        on_refused=on_refused,
    )
    out: list[Channel] = [bus, hook]
    if settings.sms:
        out.append(HttpProviderChannel(http, _provider(settings.sms), "sms"))
    if settings.voice:
        out.append(HttpProviderChannel(http, _provider(settings.voice), "voice"))
    if publisher is not None and settings.home_acks:
        out.append(HomeAckChannel(publisher))
    return out
