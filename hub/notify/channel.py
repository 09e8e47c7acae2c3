"""The one interface every notification channel implements, and the retry schedule."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from hub.notify.errors import DeliveryFailed


@dataclass(frozen=True, slots=True)
class Message:
    """One notification to one recipient, as the outbox hands it to a channel."""

    notification_id: str
    alarm_id: str
    channel: str
    address: str  #: phone number, webhook URL, console region, gateway id
    role: str
    payload: Mapping[str, Any]
    attempt: int = 1
    #: the notification's priority (lower is sooner; the alarm class's, 1 = life safety)
    priority: int = 9


@dataclass(frozen=True, slots=True)
class Delivered:
    status_code: int | None = None
    detail: str = ""
    #: False when the channel accepted it but nobody was there (a console bus with no
    #: console watching): delivered, but it does not count as the alarm being notified.
    reached: bool = True


class Channel(Protocol):
    """Deliver one message or raise :class:`DeliveryFailed`. Must not block the event loop and
    must give up within its own timeout: the outbox runs each channel on its own."""

    @property
    def name(self) -> str:
        """A :class:`~hub.notify.models.ChannelName` (the ``channel`` of its rows)."""
        ...

    async def send(self, message: Message) -> Delivered: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter; dead-letter after ``max_attempts``."""

    max_attempts: int = 8
    base_s: float = 2.0
    max_s: float = 300.0
    jitter: bool = True
    _rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_s, self.base_s * 2 ** (attempt - 1))
        return self._rng.uniform(ceiling / 2, ceiling) if self.jitter else ceiling


def classify_http(response: httpx.Response) -> Delivered:
    """2xx is delivered; 408/429/5xx are worth retrying; other statuses are not."""
    code = response.status_code
    if 200 <= code < 300:
        return Delivered(code, response.reason_phrase)
    retryable = code in (408, 429) or code >= 500
    raise DeliveryFailed(f"HTTP {code} {response.text[:200]!r}", retryable=retryable, status_code=code)


async def post(client: httpx.AsyncClient, url: str | httpx.URL, *, shown: str | None = None, **kwargs: Any) -> Delivered:
    """POST and classify; network errors and timeouts become retryable :class:`DeliveryFailed`.
    Redirects are not followed (a 3xx is a failure that is not retried). ``shown``: the URL
    named in errors (the webhook's, when ``url`` is the address it was pinned to)."""
    try:
        response = await client.post(url, follow_redirects=False, **kwargs)
    except httpx.TimeoutException as exc:
        raise DeliveryFailed(f"timeout posting to {shown or url}: {exc!r}") from exc
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"cannot post to {shown or url}: {exc!r}") from exc
    return classify_http(response)
