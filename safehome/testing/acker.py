"""A hub-style acker: a paho client that plays the hub's part on the wire, for the edge and
simulator tests and the edge benches.

It subscribes like a hub worker (``$share/<group>/safehome/v1/gw/+/{event,telemetry,
status,result}``; ``shared=False`` for plain subscriptions, which also get retained
statuses), records every uplink message, and answers events and telemetry with ``Ack``
items (status ``stored``) on ``…/{gw}/ack`` — unless told not to (``auto_ack=False``), or
only those ``should_ack`` accepts. Tests use it to send later statuses (acknowledged /
dispatched), configs and commands. The real hub is built elsewhere; this keeps the edge
tests independent of it.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel

from protocols import (
    Ack,
    AckItem,
    AckStatus,
    Channel,
    Topic,
    decode_for,
    encode,
    hub_subscriptions,
)
from safehome.testing.poll import until, wait_for


@dataclass(frozen=True)
class Received:
    topic: Topic
    message: Any
    retained: bool
    at: float


class HubAcker:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        auto_ack: bool = True,
        should_ack: Callable[[Any], bool] | None = None,
        group: str | None = None,
        shared: bool = True,
        username: str | None = None,
        password: str | None = None,
        persistent: bool = False,
    ) -> None:
        """``persistent``: clean_session False, so that a broker with persistence queues
        uplink for the acker while it reconnects after a broker restart."""
        self.auto_ack = auto_ack
        self.should_ack = should_ack
        self.group = group or f"hub{uuid.uuid4().hex[:8]}"
        self.shared = shared
        self.received: list[Received] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"acker-{self.group}",
            protocol=mqtt.MQTTv311,
            clean_session=not persistent,
        )
        self._client.reconnect_delay_set(1, 2)
        if username:
            self._client.username_pw_set(username, password)
        self._connected = threading.Event()
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError("acker could not connect")

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object = None
    ) -> None:
        sock = client.socket()
        if isinstance(sock, socket.socket):  # like a real hub: no Nagle delay on acks
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for t in hub_subscriptions(self.group, shared=self.shared):
            client.subscribe(t, qos=1)
        # SUBACKs arrive before any message routed by the new subscription
        self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            topic, decoded = decode_for(msg.topic, bytes(msg.payload))
        except ValueError as exc:
            self.errors.append(f"{msg.topic}: {exc}")
            return
        with self._lock:
            message: Any = decoded
            self.received.append(Received(topic, message, bool(msg.retain), time.monotonic()))
        wanted = self.should_ack(message) if self.should_ack is not None else self.auto_ack
        if wanted and topic.channel in (Channel.EVENT, Channel.TELEMETRY):
            self.ack(topic.gateway_id, message.id, wait=False)

    # --- downlink ------------------------------------------------------------------------

    def publish(
        self,
        gw: str,
        channel: Channel,
        payload: bytes | BaseModel,
        *,
        retain: bool = False,
        wait: bool = True,
    ) -> None:
        data = encode(payload) if isinstance(payload, BaseModel) else payload
        info = self._client.publish(str(Topic.of(gw, channel)), data, qos=1, retain=retain)
        if wait:  # never from paho's own callback thread: it would wait for itself
            info.wait_for_publish(10)

    def ack(
        self, gw: str, message_id: str, status: AckStatus = AckStatus.STORED, *, wait: bool = True, **kw: Any
    ) -> None:
        ack = Ack(gw=gw, ts=int(time.time() * 1000), items=[AckItem(id=message_id, status=status, **kw)])
        self.publish(gw, Channel.ACK, ack, wait=wait)

    # --- inspection ----------------------------------------------------------------------

    def messages(self, gw: str, channel: Channel | None = None) -> list[Any]:
        with self._lock:
            return [
                r.message
                for r in self.received
                if r.topic.gateway_id == gw and (channel is None or r.topic.channel is channel)
            ]

    def of(self, gw: str, channel: Channel) -> list[Any]:
        """The messages of one gateway on one channel, in arrival order."""
        return self.messages(gw, channel)

    def uplink(self) -> list[tuple[Topic, Any]]:
        """Every message received so far, with its topic, in arrival order."""
        with self._lock:
            return [(r.topic, r.message) for r in self.received]

    def _matching(self, gw: str, channel: Channel, predicate: Callable[[Any], bool], count: int) -> list[Any]:
        """The matches once there are ``count`` of them, else an empty list."""
        found = [m for m in self.messages(gw, channel) if predicate(m)]
        return found if len(found) >= count else []

    def _what(self, gw: str, channel: Channel, count: int) -> str:
        got = [type(m).__name__ for m in self.messages(gw)]
        return f"{count} matching {channel} messages from {gw} (got {got}; errors {self.errors})"

    async def wait_for(
        self,
        gw: str,
        channel: Channel,
        predicate: Callable[[Any], bool] = lambda m: True,
        within: float = 10.0,
        count: int = 1,
    ) -> list[Any]:
        """Poll (with a deadline, yielding to the event loop) until ``count`` matches arrived;
        the list is filled by paho's thread: there is no event to await."""
        try:
            return await until(lambda: self._matching(gw, channel, predicate, count), within, "matches")
        except AssertionError:
            raise TimeoutError(f"timed out after {within}s waiting for {self._what(gw, channel, count)}") from None

    def wait_for_sync(
        self,
        gw: str,
        channel: Channel,
        predicate: Callable[[Any], bool] = lambda m: True,
        within: float = 10.0,
        count: int = 1,
    ) -> list[Any]:
        """Blocking variant, for tests whose agent runs in another process."""
        try:
            return wait_for(lambda: self._matching(gw, channel, predicate, count), within, "matches")
        except AssertionError:
            raise TimeoutError(f"timed out after {within}s waiting for {self._what(gw, channel, count)}") from None

    def close(self) -> None:
        self._client.disconnect()  # first: wakes paho's loop thread, so loop_stop joins at once
        self._client.loop_stop()
