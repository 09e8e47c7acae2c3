"""One contract every notification channel passes (webhook, SMS, voice, home, console): what
the outbox relies on, whichever channel it runs.

- its ``name`` is a ``ChannelName`` (the ``channel`` of the rows it is given);
- a recipient that is there: ``Delivered``, reached, and the recipient got exactly one
  message about this notification;
- a recipient that is away for now (HTTP 503, a broken MQTT link, nobody watching): a
  *retryable* ``DeliveryFailed`` (the outbox retries), or ``Delivered`` with ``reached``
  False; never another exception, never "reached";
- a recipient that refuses for good (HTTP 400, an ack with nothing to acknowledge): a
  ``DeliveryFailed`` that is not retryable (dead-lettered, not retried for hours).

HTTP channels get an ``httpx.MockTransport`` (the transport seam: no server needed); the
home channel a recording publisher (its MQTT client is tested in tests/hub/alarms).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from hub.notify.channel import Channel, Delivered, Message
from hub.notify.console import ConsoleBus
from hub.notify.errors import DeliveryFailed
from hub.notify.home import HomeAckChannel
from hub.notify.names import ChannelName
from hub.notify.signing import DELIVERY_HEADER
from hub.notify.sms import HttpProviderChannel, ProviderConfig
from hub.notify.webhook import WebhookChannel
from protocols import Ack, new_event_id
from tests.support.http import LOOPBACK_TARGETS

#: Never connected to (a mock transport answers); an address the webhook guard lets through
#: only because the test allows loopback (the channel resolves and checks the host first).
URL = "http://127.0.0.1:9/hook"
EVENT_ID = new_event_id()  #: the event the home channel acknowledges


@dataclass
class World:
    """A channel and what its recipient saw (one entry per message received)."""

    channel: Channel
    seen: Callable[[], list[str]]  #: the notification ids the recipient got


@dataclass
class Case:
    name: ChannelName
    address: str
    up: Callable[[], World]
    away: Callable[[], World]
    refuses: Callable[[], World] | None
    payload: dict[str, Any] = field(default_factory=dict)


def http_world(make: Callable[[httpx.AsyncClient], Channel], status: int) -> World:
    got: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        got.append(request)
        return httpx.Response(status, json={"ok": status < 300})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))

    def seen() -> list[str]:
        # webhook: the delivery id header; SMS/voice provider: the reference in the JSON body
        return [r.headers.get(DELIVERY_HEADER) or json.loads(r.content)["reference"] for r in got]

    return World(make(client), seen)


def webhook(status: int) -> World:
    return http_world(lambda c: WebhookChannel(c, {URL: "s3cret"}, targets=LOOPBACK_TARGETS), status)


def provider(kind: str, status: int) -> World:
    return http_world(lambda c: HttpProviderChannel(c, ProviderConfig(URL, token="t"), kind), status)


class Publisher:
    def __init__(self, fails: bool) -> None:
        self.fails = fails
        self.acks: list[Ack] = []

    async def publish_ack(self, ack: Ack) -> None:
        if self.fails:
            raise OSError("connection lost")
        self.acks.append(ack)


def home(fails: bool) -> World:
    pub = Publisher(fails)
    return World(HomeAckChannel(pub, wall_ms=lambda: 1_764_316_440_000), lambda: [a.items[0].id for a in pub.acks])


def console(watching: bool) -> World:
    bus = ConsoleBus()
    seen: list[str] = []
    if watching:
        sub = bus.subscribe(["workstation:ws-0001"])

        def drain() -> list[str]:
            while not sub.queue.empty():
                seen.append(str(sub.queue.get_nowait()["notification_id"]))
            return seen

        return World(bus, drain)
    return World(bus, lambda: seen)


def home_refuses() -> World:
    """The home channel refuses for good a message without an event id (see its payload)."""
    return home(False)


CASES = [
    Case(ChannelName.WEBHOOK, URL, lambda: webhook(200), lambda: webhook(503), lambda: webhook(400)),
    Case(ChannelName.SMS, "+86-138", lambda: provider("sms", 200), lambda: provider("sms", 503),
         lambda: provider("sms", 400)),
    Case(ChannelName.VOICE, "+86-138", lambda: provider("voice", 200), lambda: provider("voice", 503),
         lambda: provider("voice", 400)),
    Case(ChannelName.HOME, "gw-1", lambda: home(False), lambda: home(True), None,
         {"event_id": EVENT_ID, "status": "acknowledged", "by": "ws-0001"}),
    Case(ChannelName.CONSOLE, "workstation:ws-0001", lambda: console(True), lambda: console(False), None),
]


def message(case: Case, payload: dict[str, Any] | None = None) -> Message:
    body = {"event": "alarm.raised", "alarm_id": "a-1", "kind": "smoke", "tier": "initial", **case.payload}
    return Message("n-1", "a-1", case.name.value, case.address, "workstation", body if payload is None else payload)


@pytest.fixture(params=CASES, ids=[c.name.value for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    c: Case = request.param
    return c


async def test_its_name_is_the_channel_of_its_rows(case: Case) -> None:
    ch = case.up().channel
    assert isinstance(ch.name, ChannelName) and ch.name == case.name


async def test_a_recipient_that_is_there_gets_the_message_once(case: Case) -> None:
    world = case.up()
    msg = message(case)
    got = await world.channel.send(msg)
    assert isinstance(got, Delivered) and got.reached
    expected = EVENT_ID if case.name is ChannelName.HOME else msg.notification_id  # the home acks its event
    assert world.seen() == [expected]


async def test_a_recipient_away_for_now_is_retried_never_reached(case: Case) -> None:
    world = case.away()
    try:
        got = await world.channel.send(message(case))
    except DeliveryFailed as exc:
        assert exc.retryable, exc
    else:
        assert isinstance(got, Delivered) and not got.reached


async def test_a_recipient_that_refuses_for_good_is_not_retried(case: Case) -> None:
    if case.name is ChannelName.HOME:
        world, msg = home_refuses(), message(case, {"event": "alarm.acknowledged", "status": "acknowledged"})
    elif case.refuses is not None:
        world, msg = case.refuses(), message(case)
    else:
        pytest.skip(f"{case.name} has no recipient that can refuse")
    with pytest.raises(DeliveryFailed) as err:
        await world.channel.send(msg)
    assert not err.value.retryable
