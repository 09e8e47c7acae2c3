"""A hub-style acker for edge tests: a paho client that plays the hub's part on the wire.

It subscribes like a hub worker (``$share/<group>/safehome/v1/gw/+/{event,telemetry,
status,result}``), records every uplink message, and answers events and telemetry with
``Ack`` items (status ``stored``) on ``…/{gw}/ack`` — unless told not to. Tests use it to
send later statuses (acknowledged / dispatched), configs and commands. The real hub is
built elsewhere; this keeps the edge tests independent of it.
"""

from __future__ import annotations

import asyncio
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
        group: str | None = None,
        username: str | None = None,
        password: str | None = None,
        persistent: bool = False,
    ) -> None:
        """``persistent``: clean_session False, so that a broker with persistence queues
        uplink for the acker while it reconnects after a broker restart."""
        self.auto_ack = auto_ack
        self.group = group or f"hub{uuid.uuid4().hex[:8]}"
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
        for t in hub_subscriptions(self.group):
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
        if self.auto_ack and topic.channel in (Channel.EVENT, Channel.TELEMETRY):
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

    def _found(
        self,
        gw: str,
        channel: Channel,
        predicate: Callable[[Any], bool],
        count: int,
        deadline: float,
        timeout: float,
    ) -> list[Any] | None:
        found = [m for m in self.messages(gw, channel) if predicate(m)]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{len(found)}/{count} matching {channel} messages from {gw} after {timeout}s; "
                f"got {[type(m).__name__ for m in self.messages(gw)]}; errors {self.errors}"
            )
        return None

    async def wait_for(
        self,
        gw: str,
        channel: Channel,
        predicate: Callable[[Any], bool] = lambda m: True,
        within: float = 10.0,
        count: int = 1,
    ) -> list[Any]:
        """Poll (with a deadline, yielding to the event loop) until ``count`` matches arrived."""
        deadline = time.monotonic() + within
        # the list is filled by paho's thread: there is no event to await
        while (found := self._found(gw, channel, predicate, count, deadline, within)) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return found

    def wait_for_sync(
        self,
        gw: str,
        channel: Channel,
        predicate: Callable[[Any], bool] = lambda m: True,
        within: float = 10.0,
        count: int = 1,
    ) -> list[Any]:
        """Blocking variant, for tests whose agent runs in another process."""
        deadline = time.monotonic() + within
        while (found := self._found(gw, channel, predicate, count, deadline, within)) is None:
            time.sleep(0.02)
        return found

    def close(self) -> None:
        self._client.disconnect()  # first: wakes paho's loop thread, so loop_stop joins at once
        self._client.loop_stop()
