"""Exceptions of the notification channels.

NotifyError
    base of everything raised by ``hub.notify``.
DeliveryFailed
    one attempt to deliver failed. ``retryable`` says whether another attempt can help
    (timeouts, connection errors, 5xx, 408, 429) or not (other 4xx: the request is wrong);
    ``status_code`` is the HTTP status if there was one.
SignatureError
    a webhook signature or timestamp that does not verify (used by receivers, and tests).
"""

from __future__ import annotations


class NotifyError(Exception):
    """Base of the notification exceptions."""


class DeliveryFailed(NotifyError):
    def __init__(self, detail: str, *, retryable: bool = True, status_code: int | None = None) -> None:
        self.detail = detail
        self.retryable = retryable
        self.status_code = status_code
        super().__init__(detail)


class SignatureError(NotifyError, ValueError):
    pass
