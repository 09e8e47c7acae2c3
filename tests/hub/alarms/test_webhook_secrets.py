"""The alarm service opens sealed webhook secrets with the hub's key, caches them for
SECRET_TTL_S (the send path runs on the event loop), and a wrong key is a retryable,
logged delivery failure, never a secret sent wrong."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from hub.alarms.notifier import SECRET_TTL_S
from hub.alarms.service import AlarmService
from hub.alarms.store.models import WebhookSubscription
from hub.notify.errors import DeliveryFailed
from hub.sealing import SecretBox, generate_key
from tests.hub.conftest import Hub, alarm_settings

URL = "http://127.0.0.1:9/hook"


async def test_secrets_are_opened_and_cached(hub: Hub) -> None:
    box = SecretBox([generate_key()])
    with hub.sessions() as s, s.begin():
        s.add(
            WebhookSubscription(
                url=URL, secret_sealed=box.seal("first-secret"), region_kind="district", region_id="pudong"
            )
        )
    svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock, secret_box=box)
    now = [1000.0]
    svc.webhooks.monotonic = lambda: now[0]
    try:
        assert svc.webhooks.secret(URL) == "first-secret"
        with hub.sessions() as s, s.begin():
            s.execute(update(WebhookSubscription).values(secret_sealed=box.seal("second-secret")))
        now[0] += SECRET_TTL_S - 0.1
        assert svc.webhooks.secret(URL) == "first-secret"  # cached: no database read yet
        now[0] += 0.2
        assert svc.webhooks.secret(URL) == "second-secret"  # read again after the TTL
        assert svc.webhooks.secret("http://unknown/hook") is None

        wrong = AlarmService(
            alarm_settings(), hub.sessions, "w2", clock=hub.clock, secret_box=SecretBox([generate_key()])
        )
        try:
            with pytest.raises(DeliveryFailed, match="does not open") as err:
                wrong.webhooks.secret(URL)
            assert err.value.retryable
        finally:
            await wrong.http.aclose()
    finally:
        await svc.http.aclose()
