"""Webhook subscriptions through the API, on a real database, delivered by the real outbox
and webhook channel to a real local HTTP receiver: create (secret shown once), scoping,
ping, rotation, the delivery log with its attempts, replay of a dead delivery, disable."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hub.alarms.service import AlarmService
from hub.alarms.settings import WebhookSettings
from hub.alarms.store.models import WebhookSubscription
from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.tokens import create_token
from hub.audit import AuditEntry
from hub.notify.channel import RetryPolicy
from hub.notify.models import Notification
from hub.notify.outbox import OutboxWorker
from hub.notify.webhook import WebhookChannel
from hub.sealing import SecretBox, generate_key
from protocols import EventKind
from tests.hub.conftest import Hub, alarm_settings, raise_alarm
from tests.support.http import LOOPBACK_TARGETS, Receiver, http_receiver, serve_app

FAST = RetryPolicy(max_attempts=2, base_s=0.01, max_s=0.05, jitter=False)


@dataclass
class Hooks:
    hub: Hub
    client: httpx.Client
    tokens: dict[str, str]
    receiver: Receiver
    worker: OutboxWorker
    service: AlarmService

    def call(self, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, f"/api/v1/webhooks{path}", headers=headers, **kw)

    async def deliver(self, delivery_id: str, until: set[str], within_s: float = 15) -> str:
        """Run the outbox until the delivery reaches one of ``until``; returns its status."""
        deadline = time.monotonic() + within_s
        while True:
            await self.worker.run_once()
            with self.hub.sessions() as s:
                n = s.get(Notification, delivery_id)
                assert n is not None
                if n.status in until:
                    return n.status
            if time.monotonic() > deadline:
                raise AssertionError(f"delivery {delivery_id} still {n.status} after {within_s} s")
            await asyncio.sleep(0.005)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


@pytest.fixture
async def hooks(hub: Hub, receiver: Receiver) -> AsyncIterator[Hooks]:
    tokens = {}
    with hub.sessions() as s, s.begin():
        for who, role, region in [
            ("sd1", "supervisor", "subdistrict:sd-01"),
            ("sd2", "supervisor", "subdistrict:sd-02"),
            ("district", "supervisor", "district:pudong"),
            ("ws1-op", "operator", "workstation:ws-0001"),
        ]:
            tokens[who], _ = create_token(s, role, region, who, hub.clock.now())
    box = SecretBox([generate_key()])
    service = AlarmService(alarm_settings(), hub.sessions, "api-test", clock=hub.clock, secret_box=box)
    app = make_api_app(ApiContext(hub.sessions, hub.clock, secret_box=box, webhook_targets=LOOPBACK_TARGETS))
    async with httpx.AsyncClient(timeout=5) as http:
        channel = WebhookChannel(http, directory=service.webhooks.target, targets=LOOPBACK_TARGETS)
        worker = OutboxWorker(hub.sessions, channel, "w1", lambda: dt.datetime.now(dt.UTC), FAST)
        with serve_app(app) as base, httpx.Client(base_url=base) as client:
            yield Hooks(hub, client, tokens, receiver, worker, service)
    await service.http.aclose()


def create(h: Hooks, who: str = "sd1", **body: Any) -> httpx.Response:
    return h.call(
        who, "POST", "", json={"url": h.receiver.url + "/hook", "region": "workstation:ws-0001"} | body
    )


def test_create_shows_the_secret_once_and_checks_the_input(hooks: Hooks) -> None:
    r = create(hooks, name="city brain")
    assert r.status_code == 201, r.text
    made = r.json()
    assert r.headers["location"] == f"/api/v1/webhooks/{made['id']}"
    assert len(made["secret"]) >= 32 and made["region"] == "workstation:ws-0001" and made["active"]
    got = hooks.call("sd1", "GET", f"/{made['id']}").json()
    assert "secret" not in got and got["name"] == "city brain"
    with hooks.hub.sessions() as s:  # stored sealed, never in clear
        sealed = s.scalars(select(WebhookSubscription.secret_sealed)).one()
    assert made["secret"] not in sealed

    def refused(r: httpx.Response, field: str) -> None:
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]

    refused(create(hooks, url=hooks.receiver.url + "/other", secret="short"), "body.secret")
    refused(create(hooks, url=hooks.receiver.url + "/other", secret="a" * 40), "body.secret")  # guessable
    refused(create(hooks, url="ftp://example.org/hook"), "body.url")
    refused(create(hooks, url=hooks.receiver.url + "/other", region="workstation:ws-0003"), "body.region")
    refused(create(hooks, url=hooks.receiver.url + "/other", region="workstation:nowhere"), "body.region")
    again = create(hooks)  # the hub signs by URL: one active subscription per URL
    assert again.status_code == 409 and again.json()["error"] == "url_taken"
    assert create(hooks, "ws1-op", url=hooks.receiver.url + "/other").status_code == 403


def test_subscriptions_are_scoped_by_region(hooks: Hooks) -> None:
    wid = create(hooks).json()["id"]
    sd2 = create(hooks, "sd2", url=hooks.receiver.url + "/sd2", region=None).json()
    assert sd2["region"] == "subdistrict:sd-02"  # the caller's own region by default

    def listed(who: str) -> set[int]:
        return {w["id"] for w in hooks.call(who, "GET", "").json()["items"]}

    assert listed("sd1") == {wid}
    assert listed("sd2") == {sd2["id"]}
    assert listed("district") == {wid, sd2["id"]}
    for method, path in [
        ("GET", f"/{wid}"),
        ("PATCH", f"/{wid}"),
        ("DELETE", f"/{wid}"),
        ("POST", f"/{wid}/ping"),
        ("POST", f"/{wid}/rotate-secret"),
        ("GET", f"/{wid}/deliveries"),
    ]:
        r = hooks.call("sd2", method, path, **({"json": {}} if method in ("POST", "PATCH") else {}))
        assert r.status_code == 404, (method, path, r.text)
        assert (
            hooks.call("ws1-op", method, path, **({"json": {}} if method != "GET" else {})).status_code == 403
        )
    assert hooks.call("sd1", "GET", "/999999").status_code == 404


async def test_ping_and_rotation_are_signed_with_the_current_secret(hooks: Hooks) -> None:
    made = create(hooks).json()
    r = hooks.call("sd1", "POST", f"/{made['id']}/ping")
    assert r.status_code == 202
    first = r.json()["delivery_id"]
    assert await hooks.deliver(first, {"delivered"}) == "delivered"
    (req,) = hooks.receiver.wait_for(1)
    assert req.headers["x-safehome-event"] == "ping" and req.headers["x-safehome-delivery"] == first
    assert req.json()["webhook_id"] == made["id"] and req.signed_by(made["secret"])

    rotated = hooks.call("sd1", "POST", f"/{made['id']}/rotate-secret", json={}).json()
    assert rotated["secret"] != made["secret"] and len(rotated["secret"]) >= 32
    # the very next delivery, by the worker that signed the first one: the new secret
    second = hooks.call("sd1", "POST", f"/{made['id']}/ping").json()["delivery_id"]
    assert await hooks.deliver(second, {"delivered"}) == "delivered"
    req = hooks.receiver.wait_for(2)[1]
    assert req.signed_by(rotated["secret"]) and not req.signed_by(made["secret"])
    with hooks.hub.sessions() as s:
        entries = list(
            s.scalars(select(AuditEntry).where(AuditEntry.action.like("webhook.%")).order_by(AuditEntry.id))
        )
    assert [e.action for e in entries] == [
        "webhook.create",
        "webhook.ping",
        "webhook.rotate_secret",
        "webhook.ping",
    ]
    assert {e.target for e in entries} == {f"webhook:{made['id']}"} and {e.actor for e in entries} == {
        "sd1 [" + entries[0].actor.split("[")[1]
    }
    assert not any(
        secret in repr(e.detail) for e in entries for secret in (made["secret"], rotated["secret"])
    )


async def test_delivery_log_and_replay_of_a_dead_delivery(hooks: Hooks) -> None:
    made = create(hooks).json()
    hooks.receiver.script = [503, 503]  # both attempts of FAST fail: dead
    alarm = raise_alarm(hooks.hub, "gw-1")
    log = hooks.call("sd1", "GET", f"/{made['id']}/deliveries").json()["items"]
    assert [(d["event"], d["alarm_id"], d["seq"]) for d in log] == [("alarm.raised", alarm, 1)]
    did = log[0]["id"]
    assert await hooks.deliver(did, {"dead"}) == "dead"

    dead = hooks.call("sd1", "GET", f"/{made['id']}/deliveries", params={"status": "dead"}).json()["items"]
    assert [d["id"] for d in dead] == [did]
    detail = hooks.call("sd1", "GET", f"/{made['id']}/deliveries/{did}").json()
    assert detail["status"] == "dead" and detail["attempts"] == 2
    assert [(a["attempt"], a["ok"], a["status_code"]) for a in detail["attempt_log"]] == [
        (1, False, 503),
        (2, False, 503),
    ]
    assert detail["payload"]["alarm_id"] == alarm

    r = hooks.call("sd1", "POST", f"/{made['id']}/deliveries/{did}/replay")
    assert r.status_code == 202 and r.json() == {"delivery_id": did, "status": "pending"}
    assert await hooks.deliver(did, {"delivered", "dead"}) == "delivered"
    reqs = hooks.receiver.wait_for(3)
    assert {q.headers["x-safehome-delivery"] for q in reqs} == {did}  # the same id: receivers deduplicate
    assert all(q.signed_by(made["secret"]) for q in reqs)
    detail = hooks.call("sd1", "GET", f"/{made['id']}/deliveries/{did}").json()
    assert detail["status"] == "delivered"
    assert [(a["attempt"], a["ok"]) for a in detail["attempt_log"]] == [(1, False), (2, False), (3, True)]

    again = hooks.call("sd1", "POST", f"/{made['id']}/deliveries/{did}/replay")
    assert again.status_code == 409 and again.json()["error"] == "not_dead"
    # another region's caller cannot see the delivery, nor replay it
    assert hooks.call("sd2", "GET", f"/{made['id']}/deliveries/{did}").status_code == 404
    assert hooks.call("sd1", "GET", f"/{made['id']}/deliveries/nope").status_code == 404


def test_disabled_webhook_gets_nothing_and_can_be_enabled_again(hooks: Hooks) -> None:
    made = create(hooks).json()
    assert hooks.call("sd1", "DELETE", f"/{made['id']}").status_code == 204
    assert hooks.call("sd1", "GET", f"/{made['id']}").json()["active"] is False
    raise_alarm(hooks.hub, "gw-1")
    assert hooks.call("sd1", "GET", f"/{made['id']}/deliveries").json()["items"] == []
    # its URL is free again; re-enabling the old one while another uses it is refused
    other = create(hooks).json()
    r = hooks.call("sd1", "PATCH", f"/{made['id']}", json={"active": True})
    assert r.status_code == 409 and r.json()["error"] == "url_taken"
    assert hooks.call("sd1", "DELETE", f"/{other['id']}").status_code == 204
    r = hooks.call("sd1", "PATCH", f"/{made['id']}", json={"active": True, "name": "again", "format": "cap"})
    assert r.status_code == 200 and r.json() | {"id": 0} == {
        "id": 0,
        "url": made["url"],
        "region": "workstation:ws-0001",
        "name": "again",
        "format": "cap",
        "active": True,
    }
    raise_alarm(hooks.hub, "gw-1", EventKind.PANIC, "panic-1")
    assert len(hooks.call("sd1", "GET", f"/{made['id']}/deliveries").json()["items"]) == 1


def test_a_hub_without_a_secrets_key_refuses_to_make_secrets(hub: Hub) -> None:
    with hub.sessions() as s, s.begin():
        token, _ = create_token(s, "supervisor", "subdistrict:sd-01", "sd1", hub.clock.now())
    with serve_app(make_api_app(ApiContext(hub.sessions, hub.clock))) as base:
        r = httpx.post(
            f"{base}/api/v1/webhooks",
            json={"url": "https://x.example/hook"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 503 and r.json()["error"] == "secrets_unavailable", r.text
    with hub.sessions() as s:
        assert s.scalars(select(WebhookSubscription)).first() is None


def test_internal_targets_are_refused_unless_the_operator_allows_them(hub: Hub) -> None:
    """A key holder with webhooks:manage cannot point the hub at its own machine, the cloud
    metadata service or the LAN: 422 naming body.url and the rule; the operator's
    [hub.alarms.webhooks] allow_networks lets an explicit network through."""
    with hub.sessions() as s, s.begin():
        token, _ = create_token(s, "supervisor", "subdistrict:sd-01", "sd1", hub.clock.now())
    auth = {"Authorization": f"Bearer {token}"}
    box = SecretBox([generate_key()])
    refused = {
        "http://127.0.0.1:8080/api/v1/keys": "loopback",
        "http://localhost:5432/": "loopback",
        "http://[::1]:1883/": "loopback",
        "http://169.254.169.254/latest/meta-data/iam/": "link_local",
        "https://10.1.2.3/hook": "private",
        "http://[fd12::1]/hook": "private",
        "http://0.0.0.0:8080/": "not_global",
    }
    with serve_app(make_api_app(ApiContext(hub.sessions, hub.clock, secret_box=box))) as base:
        for url, rule in refused.items():
            r = httpx.post(f"{base}/api/v1/webhooks", json={"url": url}, headers=auth)
            assert r.status_code == 422, (url, r.text)
            (err,) = r.json()["errors"]
            assert err["field"] == "body.url" and err["type"] == "forbidden_target", r.text
            assert f"rule {rule}" in err["message"] and "allow_networks" in err["message"], err
        with hub.sessions() as s:
            assert s.scalars(select(WebhookSubscription)).first() is None
    lan = WebhookSettings(allow_networks=["10.1.0.0/16"]).policy()
    with serve_app(make_api_app(ApiContext(hub.sessions, hub.clock, secret_box=box, webhook_targets=lan))) as base:
        ok = httpx.post(f"{base}/api/v1/webhooks", json={"url": "https://10.1.2.3/hook"}, headers=auth)
        assert ok.status_code == 201, ok.text
        other = httpx.post(f"{base}/api/v1/webhooks", json={"url": "https://10.2.0.1/hook"}, headers=auth)
        assert other.status_code == 422 and "rule private" in other.text
        # disabled, then enabled again after the operator narrowed the rule: checked again
        wid = ok.json()["id"]
        assert httpx.delete(f"{base}/api/v1/webhooks/{wid}", headers=auth).status_code == 204
    with serve_app(make_api_app(ApiContext(hub.sessions, hub.clock, secret_box=box))) as base:
        r = httpx.patch(f"{base}/api/v1/webhooks/{wid}", json={"active": True}, headers=auth)
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["body.active"], r.text
        assert "rule private" in r.text


async def test_a_refused_delivery_is_dead_and_says_why_in_the_delivery_log(hooks: Hooks) -> None:
    """Accepted when it was allowed; the hub worker's channel refuses it by the rules in force
    when it delivers (here the default: no loopback): dead at once, the rule in the log."""
    made = create(hooks).json()
    async with httpx.AsyncClient(timeout=5) as http:
        strict = WebhookChannel(http, directory=hooks.service.webhooks.target)  # the default rules
        hooks.worker = OutboxWorker(hooks.hub.sessions, strict, "w1", lambda: dt.datetime.now(dt.UTC), FAST)
        did = hooks.call("sd1", "POST", f"/{made['id']}/ping").json()["delivery_id"]
        assert await hooks.deliver(did, {"dead"}) == "dead"
    detail = hooks.call("sd1", "GET", f"/{made['id']}/deliveries/{did}").json()
    assert detail["attempts"] == 1 and "rule loopback" in detail["last_error"]
    assert [(a["ok"], a["status_code"]) for a in detail["attempt_log"]] == [(False, None)]
    assert "rule loopback" in detail["attempt_log"][0]["detail"]
    assert hooks.receiver.requests == []
