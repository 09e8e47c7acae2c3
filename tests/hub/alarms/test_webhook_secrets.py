"""The alarm service opens sealed webhook secrets with the hub's key. Every delivery reads
the subscription's current secret, so a rotation signs every delivery that starts after it
committed, on every hub worker (no cache to wait out); only the decryption is memoised, by
the sealed form. A wrong key is a retryable, logged delivery failure, never a secret sent
wrong."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from hub.alarms.service import AlarmService
from hub.alarms.store.models import WebhookSubscription
from hub.notify.channel import RetryPolicy
from hub.notify.errors import DeliveryFailed
from hub.sealing import SecretBox, generate_key
from tests.hub.conftest import Hub, alarm_settings
from tests.hub.notify.conftest import add, row
from tests.support.http import http_receiver

URL = "http://127.0.0.1:9/hook"
FAST = RetryPolicy(max_attempts=2, base_s=0.01, max_s=0.05, jitter=False)


class CountingBox(SecretBox):
    def __init__(self, keys: list[str]) -> None:
        super().__init__(keys)
        self.opened = 0

    def open(self, token: str) -> str:
        self.opened += 1
        return super().open(token)


def _subscribe(hub: Hub, url: str, sealed: str, active: bool = True) -> None:
    with hub.sessions() as s, s.begin():
        s.add(WebhookSubscription(url=url, secret_sealed=sealed, region_kind="district", region_id="pudong",
                                  active=active))  # fmt: skip


async def test_the_current_secret_is_read_for_every_delivery_and_opened_once(hub: Hub) -> None:
    box = CountingBox([generate_key()])
    _subscribe(hub, URL, box.seal("first-secret"))
    svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock, secret_box=box)
    try:
        assert svc.webhooks.secret(URL) == "first-secret"
        assert svc.webhooks.secret(URL) == "first-secret"
        assert box.opened == 1  # memoised by the sealed form
        with hub.sessions() as s, s.begin():
            s.execute(update(WebhookSubscription).values(secret_sealed=box.seal("second-secret"), format="cap"))
        assert svc.webhooks.target(URL) == ("second-secret", "cap")  # at once: nothing to wait out
        assert box.opened == 2
        assert svc.webhooks.target("http://unknown/hook") == (None, "json")
        # a disabled subscription that posted to the same URL before never signs for the active one
        _subscribe(hub, "http://127.0.0.1:9/other", box.seal("new-one"))
        with hub.sessions() as s, s.begin():
            s.execute(update(WebhookSubscription).where(WebhookSubscription.url == URL).values(active=False))
        _subscribe(hub, URL, box.seal("active-one"))
        _subscribe(hub, URL, box.seal("older-disabled"), active=False)
        assert svc.webhooks.secret(URL) == "active-one"

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


async def test_a_rotation_signs_the_next_delivery_of_every_worker(hub: Hub) -> None:
    """Two hub workers (each its own directory) sign a delivery with the old secret; the
    secret is rotated in the database (as the API or another worker does, without telling
    them); the next delivery of each is signed with the new one only."""
    box = SecretBox([generate_key()])
    with http_receiver() as receiver:
        url = receiver.url + "/hook"
        old, new = "o" * 20 + "ld-secret-0123456789", "n" * 20 + "ew-secret-0123456789"
        _subscribe(hub, url, box.seal(old))
        services = [AlarmService(alarm_settings(), hub.sessions, f"w{i}", secret_box=box) for i in (1, 2)]
        # each worker's own webhook outbox, as the service wires it (hub/alarms/notifier.py)
        workers = [w for svc in services for w in svc.outboxes if w.channel.name == "webhook"]
        try:
            for w in workers:
                nid = add(hub, "webhook", url)
                assert await w.run_once() == 1 and row(hub, nid)[0].status == "delivered"
            with hub.sessions() as s, s.begin():
                s.execute(update(WebhookSubscription).values(secret_sealed=box.seal(new)))
            for w in workers:
                nid = add(hub, "webhook", url)
                assert await w.run_once() == 1 and row(hub, nid)[0].status == "delivered"
            reqs = receiver.wait_for(4)
            signed = [(q.signed_by(old), q.signed_by(new)) for q in reqs]
            assert signed == [(True, False)] * 2 + [(False, True)] * 2
        finally:
            for svc in services:
                await svc.http.aclose()
