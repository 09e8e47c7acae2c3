"""Outbox delivery against real local HTTP receivers: signed webhooks, retries with backoff,
dead letter, delivery log per attempt, SMS provider adapter, and a down channel that does
not hold up any other channel."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from hub.alarms.engine.actions import mark_notified
from hub.alarms.engine.decide import event_signal
from hub.alarms.store.models import Alarm, WebhookSubscription
from hub.db.engine import make_engine, make_session_factory
from hub.notify.channel import Delivered, Message, RetryPolicy
from hub.notify.console import ConsoleBus
from hub.notify.enqueue import Handover, Outgoing, enqueue
from hub.notify.models import DeliveryAttempt, Notification
from hub.notify.outbox import OutboxWorker
from hub.notify.signing import verify
from hub.notify.sms import HttpProviderChannel, ProviderConfig
from hub.notify.webhook import WebhookChannel
from hub.sealing import dev_box
from protocols import Event, EventKind, EventState, new_event_id
from safehome.testing.mosquitto import free_port
from safehome.testing.poll import until
from tests.hub.conftest import Hub
from tests.hub.notify.conftest import add, row, utcnow
from tests.support.http import LOOPBACK_TARGETS, Receiver, http_receiver

FAST = RetryPolicy(max_attempts=3, base_s=0.01, max_s=0.05, jitter=False)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


async def drain(
    worker: OutboxWorker, hub: Hub, nid: str, until: set[str], within_s: float = 15
) -> Notification:
    deadline = time.monotonic() + within_s
    while True:
        await worker.run_once()
        n, _ = row(hub, nid)
        if n.status in until:
            return n
        if time.monotonic() > deadline:
            raise AssertionError(f"notification still {n.status} after {within_s}s")
        await asyncio.sleep(0.005)


async def test_signed_webhook_delivered_and_verifiable(hub: Hub, receiver: Receiver) -> None:
    url = receiver.url + "/hook"
    nid = add(hub, "webhook", url, {"event": "alarm.raised", "alarm_id": "a-1", "kind": "smoke"})
    async with httpx.AsyncClient() as client:
        w = OutboxWorker(hub.sessions, WebhookChannel(client, {url: "s3cret"}, targets=LOOPBACK_TARGETS), "w1", utcnow, FAST)
        n = await drain(w, hub, nid, {"delivered"})
    (req,) = receiver.requests
    assert req.path == "/hook" and req.json()["kind"] == "smoke"
    assert req.headers["x-safehome-delivery"] == nid and req.headers["x-safehome-event"] == "alarm.raised"
    verify(
        "s3cret",
        req.headers["x-safehome-signature"],
        req.headers["x-safehome-timestamp"],
        req.body,
        now=time.time(),
    )
    _, attempts = row(hub, nid)
    assert n.attempts == 1 and [(a.attempt, a.ok, a.status_code) for a in attempts] == [(1, True, 200)]


async def test_retries_with_backoff_then_delivered(hub: Hub, receiver: Receiver) -> None:
    receiver.script = [500, 503]
    nid = add(hub, "webhook", receiver.url)
    async with httpx.AsyncClient() as client:
        w = OutboxWorker(hub.sessions, WebhookChannel(client, {receiver.url: "k"}, targets=LOOPBACK_TARGETS), "w1", utcnow, FAST)
        await drain(w, hub, nid, {"delivered"})
    _, attempts = row(hub, nid)
    assert [(a.attempt, a.ok, a.status_code) for a in attempts] == [
        (1, False, 500),
        (2, False, 503),
        (3, True, 200),
    ]
    assert len({r.headers["x-safehome-delivery"] for r in receiver.requests}) == 1  # same id on every retry
    assert FAST.delay_after(1) == 0.01 and FAST.delay_after(2) == 0.02 and FAST.delay_after(10) == 0.05


async def test_dead_letter_after_max_attempts(hub: Hub, receiver: Receiver) -> None:
    receiver.script = [500] * 10
    nid = add(hub, "webhook", receiver.url)
    async with httpx.AsyncClient() as client:
        w = OutboxWorker(hub.sessions, WebhookChannel(client, {receiver.url: "k"}, targets=LOOPBACK_TARGETS), "w1", utcnow, FAST)
        n = await drain(w, hub, nid, {"dead"})
    _, attempts = row(hub, nid)
    assert len(attempts) == 3 and not any(a.ok for a in attempts) and "HTTP 500" in (n.last_error or "")
    assert len(receiver.requests) == 3 and w.dead == 1


async def test_client_error_is_dead_at_once(hub: Hub, receiver: Receiver) -> None:
    receiver.script = [410]
    nid = add(hub, "webhook", receiver.url)
    async with httpx.AsyncClient() as client:
        w = OutboxWorker(hub.sessions, WebhookChannel(client, {receiver.url: "k"}, targets=LOOPBACK_TARGETS), "w1", utcnow, FAST)
        await drain(w, hub, nid, {"dead"})
    assert len(receiver.requests) == 1


async def test_sms_and_voice_through_http_provider(hub: Hub, receiver: Receiver) -> None:
    cfg = ProviderConfig(receiver.url + "/send", token="prov-token", sender="safehome")
    payload = {
        "event": "alarm.raised",
        "alarm_id": "a-9",
        "kind": "gas",
        "address": "路1号",
        "location": "kitchen",
        "tier": "initial",
    }
    sms, voice = add(hub, "sms", "+86-1", payload), add(hub, "voice", "+86-1", payload)
    async with httpx.AsyncClient() as client:
        for kind, nid in (("sms", sms), ("voice", voice)):
            w = OutboxWorker(hub.sessions, HttpProviderChannel(client, cfg, kind), "w1", utcnow, FAST)
            await drain(w, hub, nid, {"delivered"})
    bodies = [r.json() for r in receiver.requests]
    assert [b["kind"] for b in bodies] == ["sms", "voice"]
    assert bodies[0]["to"] == "+86-1" and bodies[0]["reference"] == sms
    assert bodies[0]["text"] == "[safehome] GAS 路1号 (kitchen) alarm a-9"
    assert receiver.requests[0].headers["authorization"] == "Bearer prov-token"
    assert "prov-token" not in repr(cfg)


async def test_a_down_channel_never_delays_other_channels(hub: Hub) -> None:
    """A webhook endpoint that accepts connections and never answers; the console channel
    of the same alarm is delivered while the webhook is still hanging."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", free_port()))
    hole.listen(100)
    url = f"http://127.0.0.1:{hole.getsockname()[1]}/hook"
    with hub.sessions() as s, s.begin():
        s.add(WebhookSubscription(url=url, secret_sealed=dev_box().seal("k"), region_kind="workstation", region_id="ws-0001"))
    ev = Event(
        gw="gw-1",
        seq=1,
        id=new_event_id(),
        ts=1,
        synced=True,
        sensor="smoke-1",
        kind=EventKind.SMOKE,
        state=EventState.ALARM,
    )
    alarm_id = hub.alarms.handle(*event_signal(ev, hub.clock.now())).alarm_id
    bus = ConsoleBus()
    sub = bus.subscribe({"workstation:ws-0001"})
    async with httpx.AsyncClient(timeout=30) as client:
        webhook = OutboxWorker(
            hub.sessions, WebhookChannel(client, {url: "k"}, targets=LOOPBACK_TARGETS), "w1", utcnow, FAST, send_timeout_s=30
        )
        console = OutboxWorker(hub.sessions, bus, "w1", utcnow, FAST, on_delivered=mark_notified)
        tasks = [asyncio.create_task(webhook.run(0.01)), asyncio.create_task(console.run(0.01))]
        try:
            item = await asyncio.wait_for(sub.get(), 10)
            assert item["alarm_id"] == alarm_id and item["kind"] == "smoke"
            deadline = time.monotonic() + 10
            # the console's delivery is recorded right after it was handed over; the webhook
            # worker's claim may take the write lock a moment after (SQLite), then hangs
            initial = select(Notification.status).where(
                Notification.channel == "webhook", Notification.tier == "initial"
            )
            while True:
                with hub.sessions() as s:
                    alarm = s.get(Alarm, alarm_id)
                    assert alarm is not None
                    claimed = s.scalars(initial).one() == "sending"
                    if (alarm.state == "notified" and claimed) or time.monotonic() > deadline:
                        break
                await asyncio.sleep(0.01)
            with hub.sessions() as s:
                hook = s.scalars(
                    select(Notification).where(Notification.channel == "webhook", Notification.tier == "initial")
                ).one()
                assert hook.status == "sending"  # still hanging on the dead endpoint
                # the webhook is also owed the alarm.notified line, queued behind it
                followup = s.scalars(
                    select(Notification).where(Notification.channel == "webhook", Notification.tier == "update")
                ).one()
                assert followup.payload["event"] == "alarm.notified" and followup.payload["seq"] == 2
                alarm = s.get(Alarm, alarm_id)
                assert alarm is not None and alarm.state == "notified"
                assert [h.action for h in alarm.history] == ["raise", "notify"]
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            hole.close()


async def test_console_with_nobody_watching_does_not_count_as_notified(hub: Hub) -> None:
    ev = Event(
        gw="gw-1",
        seq=1,
        id=new_event_id(),
        ts=1,
        synced=True,
        sensor="smoke-1",
        kind=EventKind.BATTERY_LOW,
        state=EventState.ALARM,
    )
    alarm_id = hub.alarms.handle(*event_signal(ev, hub.clock.now())).alarm_id  # trouble by day: console only
    bus = ConsoleBus()
    w = OutboxWorker(hub.sessions, bus, "w1", utcnow, FAST, on_delivered=mark_notified)
    assert await w.run_once() == 1
    with hub.sessions() as s:
        alarm = s.get(Alarm, alarm_id)
        assert alarm is not None and alarm.state == "raised"
        (n,) = s.scalars(select(Notification).where(Notification.alarm_id == alarm_id)).all()
        assert n.status == "delivered"
        (att,) = s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.notification_id == n.id)).all()
        assert att.detail == "0 console(s) watching"


def test_life_safety_notifications_are_claimed_before_an_older_backlog(hub: Hub) -> None:
    """A flood of trouble notifications (e.g. after a power cut) is older, yet a smoke alarm's
    notification raised afterwards is claimed first, and the alarm engine sets its priority."""
    earlier = utcnow() - dt.timedelta(seconds=30)
    with hub.sessions() as s, s.begin():
        trouble = [
            enqueue(s, None, [Outgoing("console", "district:pudong", "center")], {"n": i}, earlier, priority=3)[0]
            for i in range(20)
        ]
    ev = Event(gw="gw-1", seq=1, id=new_event_id(), ts=1, synced=True, sensor="smoke-1",
               kind=EventKind.SMOKE, state=EventState.ALARM)
    alarm_id = hub.alarms.handle(*event_signal(ev, hub.clock.now())).alarm_id
    with hub.sessions() as s:
        urgent = s.scalars(
            select(Notification).where(Notification.alarm_id == alarm_id, Notification.channel == "console")
        ).all()
    assert urgent and {n.priority for n in urgent} == {1}
    worker = OutboxWorker(hub.sessions, ConsoleBus(), "w1", utcnow, FAST, batch=len(urgent))
    claimed = worker.claim()
    assert {m.notification_id for m in claimed} == {n.id for n in urgent}
    assert not {m.notification_id for m in claimed} & set(trouble)


async def test_a_handover_claims_its_channels_in_the_enqueuing_transaction(hub: Hub) -> None:
    """Rows of the handover's channels are leased to the worker and attempt 1 already; the
    others stay pending for any worker to claim."""
    now = utcnow()
    ho = Handover("w1", frozenset({"webhook"}), lease_s=60)
    with hub.sessions() as s, s.begin():
        hook, sms = enqueue(
            s,
            "a-1",
            [Outgoing("webhook", "http://x/hook", "webhook"), Outgoing("sms", "+86-1", "operator")],
            {"event": "alarm.raised"},
            now,
            1,
            ho,
        )
    (msg,) = ho.messages
    assert (msg.notification_id, msg.channel, msg.attempt, msg.alarm_id) == (hook, "webhook", 1, "a-1")
    assert msg.payload["role"] == "webhook" and msg.payload["event"] == "alarm.raised"
    n_hook, _ = row(hub, hook)
    n_sms, _ = row(hub, sms)
    assert (n_hook.status, n_hook.lease_owner, n_hook.attempts) == ("sending", "w1", 1)
    assert n_hook.lease_until is not None and n_hook.lease_until > now
    assert (n_sms.status, n_sms.lease_owner, n_sms.attempts) == ("pending", None, 0)
    # a claiming worker does not take the handed-over row while its lease runs
    async with httpx.AsyncClient() as client:
        other = OutboxWorker(hub.sessions, WebhookChannel(client, {}, targets=LOOPBACK_TARGETS), "w2", utcnow, FAST)
        assert other.claim() == []


async def test_a_held_notification_is_not_handed_over_nor_claimed_before_it_is_due(hub: Hub) -> None:
    """``not_before`` (a storm's below-threshold alarm): pending until then, not claimed by the
    enqueuing transaction's handover, not by a worker either."""
    ho = Handover("w1", frozenset({"webhook"}))
    now = utcnow()
    with hub.sessions() as s, s.begin():
        (nid,) = enqueue(s, "a-1", [Outgoing("webhook", "http://127.0.0.1:9/h", "webhook")], {"kind": "mains_lost"},
                         now, 3, ho, now + dt.timedelta(seconds=60))  # fmt: skip
    assert ho.messages == []
    n, _ = row(hub, nid)
    assert (n.status, n.attempts, n.lease_owner) == ("pending", 0, None)
    assert (n.next_attempt_at - n.created_at).total_seconds() == 60
    async with httpx.AsyncClient() as client:
        assert OutboxWorker(hub.sessions, WebhookChannel(client, {}, targets=LOOPBACK_TARGETS), "w2", utcnow, FAST).claim() == []


async def test_handed_messages_are_sent_without_a_claim_and_recorded(hub: Hub, receiver: Receiver) -> None:
    ho = Handover("w1", frozenset({"webhook"}))
    with hub.sessions() as s, s.begin():
        (nid,) = enqueue(s, "a-1", [Outgoing("webhook", receiver.url, "webhook")], {"kind": "gateway_offline"},
                         utcnow(), 2, ho)  # fmt: skip
    async with httpx.AsyncClient() as client:
        w = OutboxWorker(hub.sessions, WebhookChannel(client, {receiver.url: "k"}, targets=LOOPBACK_TARGETS), "w1", utcnow, FAST)
        claims = 0
        real_claim = w.claim

        def counting_claim() -> list:  # type: ignore[type-arg]
            nonlocal claims
            claims += 1
            return real_claim()

        w.claim = counting_claim  # type: ignore[method-assign]
        w.hand([*ho.messages, Message("other", "a-1", "sms", "+86", "operator", {})])  # not this channel's
        assert w.handed == 1
        assert await w.run_once() == 1
    assert claims == 0
    n, attempts = row(hub, nid)
    assert (n.status, n.attempts, n.lease_owner) == ("delivered", 1, None)
    assert [(a.attempt, a.ok) for a in attempts] == [(1, True)]
    assert [r.headers["x-safehome-delivery"] for r in receiver.requests] == [nid]


async def test_a_stopping_worker_releases_handed_messages_it_did_not_send(hub: Hub) -> None:
    ho = Handover("w1", frozenset({"console"}))
    with hub.sessions() as s, s.begin():
        ids = enqueue(s, "a-1", [Outgoing("console", f"workstation:ws-{i}", "operator") for i in range(3)],
                      {"kind": "mains_lost"}, utcnow(), 3, ho)  # fmt: skip
    sent: list[str] = []

    class StopsOnFirstSend:
        name = "console"

        async def send(self, message: Message) -> Delivered:
            sent.append(message.notification_id)
            w.stop()  # the worker is told to stop while two handed messages still wait
            return Delivered()

    w = OutboxWorker(hub.sessions, StopsOnFirstSend(), "w1", utcnow, FAST, batch=1)
    w.hand(ho.messages)
    await asyncio.wait_for(w.run(0.01), 10)
    assert w.handed == 0 and len(sent) == 1
    first, _ = row(hub, sent[0])
    assert (first.status, first.attempts) == ("delivered", 1)
    rest = [nid for nid in ids if nid != sent[0]]
    for nid in rest:
        n, attempts = row(hub, nid)
        assert (n.status, n.attempts, n.lease_owner, n.lease_until) == ("pending", 0, None, None)
        assert attempts == []
    # and any worker claims them now
    assert {m.notification_id for m in OutboxWorker(hub.sessions, ConsoleBus(), "w2", utcnow, FAST).claim()} == set(rest)


def test_an_idle_claim_takes_no_write_lock(hub: Hub) -> None:
    """Nothing due: the claim only reads, so it neither waits for nor holds the write lock
    (on SQLite: it returns while another transaction holds the lock)."""
    if not hub.url.startswith("sqlite"):
        pytest.skip("the single write lock is SQLite's")
    w = OutboxWorker(hub.sessions, ConsoleBus(), "w1", utcnow, FAST)
    with hub.sessions() as holder, holder.begin():
        holder.add(WebhookSubscription(url="http://x", secret_sealed=dev_box().seal("k"), region_kind="district", region_id="pudong"))
        holder.flush()  # BEGIN IMMEDIATE: the write lock is held until this block ends
        fast = make_engine(hub.url, connect_args={"timeout": 0.05})
        try:
            other = OutboxWorker(make_session_factory(fast), ConsoleBus(), "w1", utcnow, FAST)
            assert other.claim() == []  # would fail with "database is locked" if it began IMMEDIATE
        finally:
            fast.dispose()
    assert w.claim() == []


async def test_a_handed_life_safety_message_goes_out_beside_a_storm_batch_in_flight(hub: Hub) -> None:
    """A storm's webhooks are in flight (their receiver not answering yet) and more are
    handed: a smoke alarm's message handed now is sent at once, not after them."""
    storm = Handover("w1", frozenset({"webhook"}))
    smoke = Handover("w1", frozenset({"webhook"}))
    with hub.sessions() as s, s.begin():
        enqueue(s, "a-storm", [Outgoing("webhook", f"http://x/{i}", "webhook") for i in range(6)],
                {"kind": "gateway_offline"}, utcnow(), 2, storm)  # fmt: skip
        (smoke_id,) = enqueue(s, "a-smoke", [Outgoing("webhook", "http://x/smoke", "webhook")],
                              {"kind": "smoke"}, utcnow(), 1, smoke)  # fmt: skip
    sent: list[str] = []
    answer = asyncio.Event()

    class SlowForTheStorm:
        name = "webhook"

        async def send(self, message: Message) -> Delivered:
            sent.append(message.alarm_id)
            if message.alarm_id == "a-storm":
                await answer.wait()
            return Delivered()

    w = OutboxWorker(hub.sessions, SlowForTheStorm(), "w1", utcnow, FAST, batch=3)
    w.hand(storm.messages)
    run = asyncio.create_task(w.run(idle_s=0.05))
    await until(lambda: len(sent) == 3, what="the storm's first batch in flight")
    w.hand(smoke.messages)
    await until(lambda: "a-smoke" in sent, what="the smoke alarm's webhook sent")
    assert sent == ["a-storm"] * 3 + ["a-smoke"]  # the storm's other 3 still wait
    answer.set()
    await until(lambda: len(sent) == 7, what="the storm's rest sent")
    await until(lambda: row(hub, smoke_id)[0].status == "delivered", what="the smoke's delivery recorded")
    w.stop()
    await run
    with hub.sessions() as s:
        assert {n.status for n in s.scalars(select(Notification))} == {"delivered"}


def test_a_backlogged_channel_still_claims_life_safety_rows_in_the_transaction(hub: Hub) -> None:
    """The channel's handed backlog is full (not in ``channels``): a life-safety row is
    claimed anyway (it is sent at once), a supervisory one waits in the table."""
    ho = Handover("w1", frozenset(), express=frozenset({"webhook"}))
    with hub.sessions() as s, s.begin():
        (fire,) = enqueue(s, "a-1", [Outgoing("webhook", "http://x", "webhook")], {"kind": "smoke"}, utcnow(), 1, ho)
        (trouble,) = enqueue(s, "a-2", [Outgoing("webhook", "http://x", "webhook")], {"kind": "mains_lost"},
                             utcnow(), 3, ho)  # fmt: skip
    assert [(m.notification_id, m.priority) for m in ho.messages] == [(fire, 1)]
    assert row(hub, fire)[0].status == "sending" and row(hub, trouble)[0].status == "pending"
