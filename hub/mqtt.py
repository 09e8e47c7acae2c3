"""aiomqtt clients of the hub, built from its settings (ingest, $SYS monitor, downlink)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from contextlib import AsyncExitStack
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.broker.plugin import HUB_CLIENT_PREFIX
from hub.settings import MqttSettings

log = logging.getLogger(__name__)

#: MQTT 5 persistent sessions live as long as the broker's persistent_client_expiration (7 d).
SESSION_EXPIRY_S = 7 * 24 * 3600


#: outstanding QoS 1 publishes of one client before aiomqtt warns (see make_client)
PENDING_CALLS_WARN = 5_000


def hub_client_id(*parts: str) -> str:
    """The client id of one of the hub's connections: ``hub-<parts>``.

    The prefix is reserved: no gateway id may start with it (hub.broker.credentials), and
    the broker binds a gateway's client id to its username, so no gateway can connect
    with one of these ids and take the hub's session over."""
    return HUB_CLIENT_PREFIX + "-".join(parts)


def downlink_client_id(s: MqttSettings, *parts: str) -> str:
    """The client id of a clean-session publisher of the hub (acks, commands).

    On Mosquitto :func:`hub_client_id` is enough: the broker binds a gateway's client id to
    its username. NATS does not, and a second connection with a client id takes the first's
    session over: there the id ends in 64 random bits, so no gateway can guess it and
    disconnect the hub's publisher by connecting under it."""
    if s.backend == "nats":
        parts = (*parts, secrets.token_hex(8))
    return hub_client_id(*parts)


def make_client(
    s: MqttSettings, identifier: str, address: tuple[str, int] | None = None, **kwargs: Any
) -> aiomqtt.Client:
    """A client for the hub account, to ``address`` (default: the first of
    ``s.addresses()``). MQTT 3.1.1 unless ``s.protocol == "5"``: aiomqtt over MQTT 5
    measured ~3x slower here (docs/architecture.md, measured facts). ``identifier`` must be
    made by :func:`hub_client_id`."""
    if not identifier.startswith(HUB_CLIENT_PREFIX):
        raise ValueError(f"hub client id {identifier!r} must start with {HUB_CLIENT_PREFIX!r} (use hub_client_id)")
    tls: aiomqtt.TLSParameters | None = None
    if s.tls:
        tls = aiomqtt.TLSParameters(
            ca_certs=str(s.cafile) if s.cafile else None,
            certfile=str(s.certfile) if s.certfile else None,
            keyfile=str(s.keyfile) if s.keyfile else None,
        )
    protocol = aiomqtt.ProtocolVersion.V5 if s.protocol == "5" else aiomqtt.ProtocolVersion.V311
    if protocol is aiomqtt.ProtocolVersion.V5:
        # MQTT 5 has clean start + session expiry instead of clean session (paho refuses both)
        clean = bool(kwargs.pop("clean_session", s.clean_session))
        kwargs.setdefault("clean_start", clean)
        if not clean:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            kwargs.setdefault("properties", props)
    else:
        kwargs.setdefault("clean_session", s.clean_session)
    host, port = address or s.addresses()[0]
    client = aiomqtt.Client(
        host,
        port,
        username=s.username,
        password=s.secret(),
        identifier=identifier,
        protocol=protocol,
        keepalive=s.keepalive,
        tls_params=tls,
        **kwargs,
    )
    # aiomqtt logs a warning for every call made while more than 10 are awaiting their
    # PUBACK. The ingest acks a 1,000-message batch with up to 1,000 concurrent publishes:
    # during a 5,000-gateway recovery that was ~60,000 log lines (and their CPU) for
    # nothing. Warn only when far more than a batch is outstanding.
    client.pending_calls_threshold = PENDING_CALLS_WARN
    return client


def set_nodelay(client: aiomqtt.Client) -> bool:
    """Disable Nagle's algorithm on a connected client (neither paho nor aiomqtt does).

    Acks are small PUBLISHes; with Nagle on, one can wait for the TCP ACK of the previous
    segment (~40 ms with delayed ACK, docs/architecture.md), which the edge agent
    measured as a 20x slower backlog drain. Returns whether the option was set.
    """
    sock = client._client.socket()
    if not isinstance(sock, socket.socket):  # ssl.SSLSocket is a socket.socket too
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        return False
    return True


class LazyPublisher:
    """QoS 1 publishes over one aiomqtt connection of the hub's account, connected on the
    first publish and dropped after a failure (the next publish connects again). Used by
    the gateway acks (hub/notify/mqtt_acks.py) and the gateway commands
    (hub/api/command_mqtt.py); each turns :class:`aiomqtt.MqttError` into its own error.

    With several ``mqtt.servers`` (a NATS cluster's MQTT listeners) a connect that fails
    tries the next one, each at most once per publish; the one that answered is kept."""

    def __init__(
        self, settings: MqttSettings, identifier: str, timeout_s: float = 10.0, max_inflight: int | None = None
    ) -> None:
        self._settings = settings
        self._identifier = identifier
        self._timeout = timeout_s
        #: QoS 1 publishes awaiting their PUBACK at once (None: paho's 20)
        self._inflight = max_inflight
        self._addresses = settings.addresses()
        self._next = 0  #: the address to try first
        self._stack: AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()
        self._connecting: asyncio.Task[None] | None = None

    async def _connected(self) -> aiomqtt.Client:
        async with self._lock:
            if self._client is None:
                self._stack, self._client = await self._connect()
            return self._client

    async def _connect(self) -> tuple[AsyncExitStack, aiomqtt.Client]:
        n = len(self._addresses)
        for attempt in range(n):
            i = (self._next + attempt) % n
            stack = AsyncExitStack()
            extra: dict[str, Any] = {} if self._inflight is None else {"max_inflight_messages": self._inflight}
            client = make_client(
                self._settings, self._identifier, self._addresses[i], clean_session=True, timeout=self._timeout, **extra
            )
            try:
                await stack.enter_async_context(client)
            except aiomqtt.MqttError as exc:
                if attempt == n - 1:
                    raise
                log.warning("%s: broker %s:%d refused or unreachable (%s); trying the next", self._identifier,
                            *self._addresses[i], exc)
                continue
            self._next = i
            set_nodelay(client)
            return stack, client
        raise AssertionError("unreachable: at least one address")

    async def ready(self, wait_s: float) -> bool:
        """True when connected. Otherwise a connect runs in the background (one at a time) and
        this waits for it at most ``wait_s`` when it has just started, else not at all: a
        caller that can drop what it would publish (acks: the gateways resend) never waits
        behind a node that holds the CONNECT. A NATS node answers CONNECT only once the MQTT
        session stream has a leader again: after a node's SIGKILL a connect to a live node
        hung until its 10 s timeout, and the ingest of both hub workers, awaiting their acks,
        stood still for those 10 s (tests/hub/test_cluster_failover.py)."""
        if self._client is not None:
            return True
        task = self._connecting
        if task is None or task.done():
            task = self._connecting = asyncio.create_task(self._connect_quietly())
            await asyncio.wait({task}, timeout=wait_s)
        return self._client is not None

    async def _connect_quietly(self) -> None:
        try:
            await self._connected()
        except aiomqtt.MqttError as exc:
            self._next = (self._next + 1) % len(self._addresses)
            log.warning("%s: no broker reachable (%s); connecting again on the next publish", self._identifier, exc)

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish (QoS 1 by default); on failure the connection is dropped and the error re-raised."""
        try:
            client = await self._connected()
            await client.publish(topic, payload, qos=qos, timeout=self._timeout)
        except aiomqtt.MqttError:
            # the node that failed is tried last next time: a dead host's connect timeout
            # would otherwise come first on every publish
            self._next = (self._next + 1) % len(self._addresses)
            await self.close()
            raise

    async def close(self) -> None:
        task, self._connecting = self._connecting, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
        async with self._lock:
            stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            try:
                await stack.aclose()
            except aiomqtt.MqttError:
                pass  # already gone; nothing to clean up
