"""One MQTT session as an ``asyncio.Protocol``: no task, no timer of its own.

The owner calls :meth:`MqttSession.tick` from its own periodic loop to keep the session
alive; incoming messages go to ``on_message``; a lost link calls ``on_lost`` once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from firmware_sim.errors import LoginFailed, MqttError, SubscriptionRefused
from firmware_sim.mqtt import packets as pk

#: How long the TCP connect may take: paho's default socket timeout, which the edge agent
#: keeps (SYNs a node's login rate guard drops are sent again after 1 and 3 s within it).
TCP_CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class MqttSession(asyncio.Protocol):
    def __init__(
        self,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        will: Will | None = None,
        keepalive: int = 60,
        clean: bool = False,
        on_message: Callable[[pk.Incoming], None] | None = None,
        on_lost: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self.client_id = client_id
        self.username = username
        self.password = password
        self.will = will
        self.keepalive = keepalive
        self.clean = clean
        self.on_message = on_message
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.connected = False
        self._connack: asyncio.Future[None] | None = None
        self._reader = pk.PacketReader()
        self._next_pid = 0
        self._last_sent = 0.0
        self._closing = False
        self._failure: BaseException | None = None  #: why this side dropped the link

    # --- lifecycle -----------------------------------------------------------------------
    async def connect(
        self, host: str, port: int, connect_timeout: float = 10.0, tcp_timeout: float = TCP_CONNECT_TIMEOUT_S
    ) -> None:
        """TCP within ``tcp_timeout``, then CONNACK within ``connect_timeout``: as the edge
        agent (paho's socket timeout, then aiomqtt's). LoginFailed when the broker took the
        connection but did not log us in; MqttError when it could not be reached."""
        loop = asyncio.get_running_loop()
        self._connack = loop.create_future()
        self._closing = False
        try:
            async with asyncio.timeout(tcp_timeout):
                await loop.create_connection(lambda: self, host, port)
        except (OSError, TimeoutError) as exc:
            self.abort()
            raise MqttError(f"{self.client_id}: cannot connect to {host}:{port}: {exc!r}") from exc
        try:
            async with asyncio.timeout(connect_timeout):
                await self._connack
        except (OSError, TimeoutError, MqttError) as exc:
            self.abort()
            if isinstance(exc, MqttError):  # CONNACK refused, or closed before it
                raise LoginFailed(str(exc)) from exc
            raise LoginFailed(f"{self.client_id}: {host}:{port} took the connection, no CONNACK: {exc!r}") from exc

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._reader = pk.PacketReader()
        w = self.will
        self._write(
            pk.connect(
                self.client_id,
                keepalive=self.keepalive,
                clean=self.clean,
                username=self.username,
                password=self.password,
                will_topic=w.topic if w else None,
                will_payload=w.payload if w else b"",
                will_qos=w.qos if w else 0,
                will_retain=w.retain if w else False,
            )
        )

    def data_received(self, data: bytes) -> None:
        try:
            for p in self._reader.feed(data):
                self._handle(p)
        except MqttError as exc:
            self._fail(exc)

    def connection_lost(self, exc: BaseException | None) -> None:
        was = self.connected or (self._connack is not None and not self._connack.done())
        self.connected = False
        self.transport = None
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(MqttError(f"{self.client_id}: connection closed before CONNACK"))
            self._connack.exception()  # mark retrieved: connect() may already have given up
        if was and not self._closing and self.on_lost is not None:
            self.on_lost(exc or self._failure)

    def hang_up(self, reason: str) -> None:
        """Drop the connection as lost (``on_lost`` gets an MqttError saying ``reason``)."""
        self._fail(MqttError(f"{self.client_id}: {reason}"))

    def _fail(self, exc: BaseException) -> None:
        self._failure = exc
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def _handle(self, p: pk.Packet) -> None:
        if p.type == pk.PUBLISH:
            msg = pk.parse_publish(p)
            if msg.qos == 1:
                self._write(pk.puback(msg.packet_id))
            if self.on_message is not None:
                self.on_message(msg)
        elif p.type == pk.CONNACK:
            code = p.body[1] if len(p.body) >= 2 else 255
            if code:
                why = pk.CONNACK_REASONS.get(code, f"code {code}")
                self._fail(MqttError(f"{self.client_id}: broker refused the connection: {why}"))
            else:
                self.connected = True
                if self._connack is not None and not self._connack.done():
                    self._connack.set_result(None)
        elif p.type == pk.SUBACK and pk.SUBACK_FAILURE in p.body[2:]:
            # a link without its downlink subscriptions never hears the hub: drop it, as the
            # agent does (docs/protocol.md section 1); a NATS node that just lost a peer does this
            self._fail(SubscriptionRefused(f"{self.client_id}: subscription refused (SUBACK {p.body[2:].hex()})"))
        # PUBACK, granted SUBACK, PINGRESP: nothing to do; the application ack is what counts.

    # --- sending -------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise MqttError(f"{self.client_id}: not connected")
        self.transport.write(data)
        self._last_sent = time.monotonic()

    def _pid(self) -> int:
        self._next_pid = self._next_pid % 0xFFFF + 1
        return self._next_pid

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self._write(pk.publish(topic, payload, qos, retain, self._pid() if qos else 0))

    def subscribe(self, filters: list[str], qos: int = 1) -> None:
        self._write(pk.subscribe(self._pid(), [(f, qos) for f in filters]))

    def tick(self, now: float) -> None:
        """Send PINGREQ when nothing was sent for half the keep-alive."""
        if self.connected and now - self._last_sent > self.keepalive / 2:
            self._write(pk.PINGREQ_BYTES)

    def disconnect(self) -> None:
        """Clean DISCONNECT: the broker discards the will."""
        self._closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(pk.DISCONNECT_BYTES)
            self.transport.close()
        self.connected = False

    def abort(self) -> None:
        """Drop the TCP connection without DISCONNECT, like a power cut: the broker sends the will."""
        self._closing = True
        if self.transport is not None:
            self.transport.abort()
        self.connected = False
