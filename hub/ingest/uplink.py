"""Where the ingest's uplink comes from: one message type, and a source per broker backend.

The processors (:mod:`hub.ingest.service`) see an :class:`Uplink` — topic, payload, retain
flag — whatever carried it. A source is one lane's connection to the broker: it receives
forever (reconnecting by itself), hands every message to ``deliver``, says when the lane
is up or down, and (for acks) may offer a connected publisher. Mosquitto's source is
:class:`MqttLane` here (``$share/<group>/…`` over aiomqtt); a NATS cluster's is
:class:`hub.ingest.nats_source.NatsLane` (core NATS queue groups).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import NamedTuple, Protocol

import aiomqtt

from hub.broker.plugin import SHED_TOPIC
from hub.ingest.reads import buffer_reads
from hub.mqtt import hub_client_id, make_client, set_nodelay
from hub.settings import MqttSettings
from protocols import hub_subscriptions

log = logging.getLogger(__name__)


class Uplink(NamedTuple):
    """One received uplink message (a tuple: built once per message on the hot path)."""

    topic: str  #: MQTT form, ``safehome/v1/gw/<id>/<channel>``
    payload: bytes
    retain: bool


Deliver = Callable[[Uplink], None]
LaneUp = Callable[[bool], None]


class AckPublisher(Protocol):
    """Publishes one downlink message (an ack); raises when the broker did not take it."""

    async def publish(self, topic: str, payload: bytes, qos: int) -> None: ...


class UplinkSource(Protocol):
    """One lane's connection to the broker."""

    async def run(self) -> None:
        """Receive forever, reconnecting; never returns (cancel it)."""

    def publisher(self) -> AckPublisher | None:
        """A publisher for acks over this lane's own connection, when it has one and it is up."""


def from_mqtt(msg: aiomqtt.Message) -> Uplink:
    payload = msg.payload
    if not isinstance(payload, bytes):
        payload = bytes(payload) if isinstance(payload, bytearray) else str(payload or "").encode()
    return Uplink(msg.topic.value, payload, bool(msg.retain))


class _ClientPublisher:
    """Acks over a connected receiving client: the same connection, no second one to keep."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._client = client

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        await self._client.publish(topic, payload, qos=qos)


class MqttLane:
    """A lane over MQTT shared subscriptions (Mosquitto): one aiomqtt connection, resubscribed
    after every reconnect with backoff (0.5 s doubling to 10 s)."""

    def __init__(
        self, mqtt: MqttSettings, worker_id: str, lane: str, channels: frozenset[str], shed: bool,
        deliver: Deliver, up: LaneUp,
    ) -> None:
        self._mqtt = mqtt
        self._lane = lane
        self._client_id = hub_client_id(worker_id + ("" if lane == "priority" else f"-{lane}"))
        topics = [t for t in hub_subscriptions(mqtt.share_group) if t.rsplit("/", 1)[-1] in channels]
        if shed:
            # the broker's rate limit refused these (shared: one worker counts each notice)
            topics.append(f"$share/{mqtt.share_group}/{SHED_TOPIC}")
        self.topics = topics
        self._deliver = deliver
        self._up = up
        self._client: aiomqtt.Client | None = None

    def publisher(self) -> AckPublisher | None:
        return None if self._client is None else _ClientPublisher(self._client)

    async def run(self) -> None:
        backoff = 0.5
        while True:
            client = make_client(self._mqtt, self._client_id, max_inflight_messages=1000)
            try:
                async with client:
                    set_nodelay(client)
                    buffer_reads(client)  # a flood stays in our fair queue, not the broker's FIFO
                    for topic in self.topics:
                        await client.subscribe(topic, qos=1)
                    self._client = client
                    self._up(True)
                    log.info("ingest subscribed as %s to %s", client.identifier, self.topics)
                    backoff = 0.5
                    deliver = self._deliver
                    async for msg in client.messages:
                        deliver(from_mqtt(msg))
            except aiomqtt.MqttError as exc:
                log.warning("ingest %s lane lost the broker (%s); reconnecting in %.1f s", self._lane, exc, backoff)
            except Exception:
                # never let the consumer die: log it with its traceback and reconnect
                log.exception("ingest %s receiver failed; reconnecting in %.1f s", self._lane, backoff)
            finally:
                self._client = None
                self._up(False)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
