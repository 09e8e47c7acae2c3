"""The notification channels of one hub worker, as the alarm settings configure them, and
the webhook directory they read (each subscription's signing secret and format).

The channels themselves live in ``hub/notify/``; this module only chooses and builds them
(console, webhook and home always; SMS and voice with a provider) and hands them to a
:class:`~hub.notify.dispatch.Dispatcher`.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

import httpx
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
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

#: Opened webhook secrets memoised at most (by their sealed form: a rotation seals anew).
OPENED_MAX = 1024


def _provider(p: ProviderSettings) -> ProviderConfig:
    return ProviderConfig(
        p.url,
        token=p.token.get_secret_value() if p.token else None,
        username=p.username,
        password=p.password.get_secret_value() if p.password else None,
        sender=p.sender,
    )


class WebhookDirectory:
    """Each webhook URL's signing secret (opened with the hub's key) and payload format, read
    from its subscription for every delivery (one read of a small table, in a worker
    thread: :class:`~hub.notify.webhook.WebhookChannel` calls :meth:`target` off the event
    loop), so a rotated secret or a changed format applies to every delivery that starts
    after the change committed, on every hub worker. Only the decryption is memoised, keyed
    by the sealed secret itself: a rotation stores a new sealed form, which misses."""

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox) -> None:
        self.sessions = sessions
        self.box = box
        self._opened: OrderedDict[str, str] = OrderedDict()  #: sealed → opened
        self._lock = threading.Lock()  #: targets are read from several threads at once

    def target(self, url: str) -> tuple[str | None, str]:
        """``(secret, format)`` of the webhook at ``url`` now: its active subscription (else
        the newest one); ``(None, "json")`` when there is none."""
        try:
            with self.sessions() as s:
                row = read_only(s).execute(
                    select(WebhookSubscription.secret_sealed, WebhookSubscription.format)
                    .where(WebhookSubscription.url == url)
                    .order_by(WebhookSubscription.active.desc(), WebhookSubscription.id.desc())
                    .limit(1)
                ).first()
        except SQLAlchemyError as exc:  # the database is away: retried with backoff
            raise DeliveryFailed(f"webhook {url}: its subscription cannot be read: {exc}") from exc
        if row is None:
            return None, "json"
        return self._open(url, row.secret_sealed), row.format or "json"

    def secret(self, url: str) -> str | None:
        """The signing secret of the webhook at ``url`` now, opened."""
        return self.target(url)[0]

    def _open(self, url: str, sealed: str) -> str:
        with self._lock:
            opened = self._opened.get(sealed)
            if opened is not None:
                self._opened.move_to_end(sealed)
                return opened
        try:
            opened = self.box.open(sealed)
        except SealingError as exc:
            # A wrong or missing key is a configuration fault: retried (with backoff) so
            # that deliveries go out once the key is fixed, and loud in the log meanwhile.
            log.error("webhook %s: its secret does not open: %s ([hub.secrets] key_file)", url, exc)
            raise DeliveryFailed(
                f"webhook secret of {url} does not open with the configured key", retryable=True
            ) from exc
        with self._lock:
            self._opened[sealed] = opened
            while len(self._opened) > OPENED_MAX:
                self._opened.popitem(last=False)
        return opened


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
        directory=webhooks.target,
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
