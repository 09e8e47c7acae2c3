"""The MQTT client for one gateway: persistent session, QoS 1, TLS, credentials, Last-Will.

One aiomqtt client per connection attempt (same client id = gateway id, clean_session
False, so the broker keeps our subscriptions and queues QoS 1 downlink while we are away).
With several broker addresses (a clustered broker, ``mqtt.servers``), a failed connect or a
lost link moves to the next address within ``failover_spread_s`` (protocols/failover.py);
only after a whole round of addresses failed do reconnects use exponential backoff with
full jitter, so that 5,000 gateways coming back after a neighbourhood power cut do not
reconnect in lock-step; while an alarm waits in the buffer, the gateway retries within
~2 s instead (the alarm matters more than the spread).
"""

from __future__ import annotations

import random
import socket
import ssl
from typing import Any

import aiomqtt

from edge.errors import ConfigError
from edge.settings import EdgeSettings
from protocols import Channel, Topic
from protocols.failover import ALARM_RECONNECT_S, Address, Rotation, alarm_reconnect_delay, reconnect_delay

__all__ = ["ALARM_RECONNECT_S", "alarm_reconnect_delay", "reconnect_delay", "rotation"]


def topic(gateway_id: str, channel: Channel | str) -> str:
    return str(Topic.of(gateway_id, channel))


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the TLS handshake fails (a node whose certificate does not name the
    address it was given): paho drops such a socket without closing it, one per attempt."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def tls_context(s: EdgeSettings) -> ssl.SSLContext | None:
    """The client's TLS context: the broker's certificate must chain to ``ca_file`` (or the
    system's CAs) and name the host of the address connected to (check_hostname)."""
    m = s.mqtt
    if not m.tls:
        return None
    for name, path in (("ca_file", m.ca_file), ("cert_file", m.cert_file), ("key_file", m.key_file)):
        if path is not None and not path.is_file():
            raise ConfigError(f"mqtt.{name} {path} does not exist")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # TLS 1.2+, CERT_REQUIRED, check_hostname
    try:
        if m.ca_file is not None:
            ctx.load_verify_locations(cafile=str(m.ca_file))
        else:
            ctx.load_default_certs()
        if m.cert_file is not None:
            ctx.load_cert_chain(str(m.cert_file), str(m.key_file) if m.key_file else None)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"mqtt TLS files ca_file/cert_file/key_file not usable: {exc}") from exc
    ctx.sslsocket_class = _ClosingSSLSocket
    return ctx


#: While an alarm waits in the buffer: reconnect after ALARM_RECONNECT_S (protocols/failover.py),
#: not after the spread or the wide backoff (up to reconnect_max_s = 60 s, ~45 s seen after a partition).
#: ... and give up a connection attempt after this long: in a partition the SYN is
#: dropped, and the kernel retries it at 1, 3, 7 s; a new attempt (a new SYN) right after
#: the heal beats waiting for the 7 s retry of an attempt that began before it
ALARM_CONNECT_TIMEOUT_S = 4.0


def make_client(
    s: EdgeSettings, address: Address, will_payload: bytes, *, alarm_waiting: bool = False
) -> aiomqtt.Client:
    """A client for one attempt at ``address``. Under TLS the broker's certificate is checked
    against that address's host name (paho passes it as the server name): each node's
    certificate must name the address the gateway was given for it."""
    m = s.mqtt
    timeout = min(m.connect_timeout_s, ALARM_CONNECT_TIMEOUT_S) if alarm_waiting else m.connect_timeout_s
    client = aiomqtt.Client(
        address.host,
        address.port,
        username=s.mqtt_username,
        password=m.password.get_secret_value() if m.password else None,
        identifier=s.gateway_id,
        clean_session=False,
        protocol=aiomqtt.ProtocolVersion.V311,
        will=aiomqtt.Will(topic(s.gateway_id, Channel.STATUS), will_payload, qos=m.uplink_qos, retain=m.retain_status),
        keepalive=m.keepalive_s,
        timeout=timeout,
        tls_context=tls_context(s),
    )
    _watch_login(client)
    return client


def _watch_login(client: aiomqtt.Client) -> None:
    """End the attempt at once when the node closes the connection before CONNACK (chained
    to aiomqtt's own paho on_disconnect). aiomqtt ignores a disconnect before CONNACK and
    waits for the CONNACK until its timeout: a NATS node that fails a login (its session
    store timed out while the cluster elected) closes the connection, and the agent then sat
    out ``connect_timeout_s`` (10 s) before its next try."""
    paho = client._client
    closed = paho.on_disconnect

    def on_disconnect(c: Any, userdata: Any, *args: Any) -> None:
        if closed is not None:
            closed(c, userdata, *args)
        pending = client._connected
        if not pending.done():
            pending.set_exception(aiomqtt.MqttError("the broker closed the connection before CONNACK"))

    paho.on_disconnect = on_disconnect


def dispose(client: aiomqtt.Client) -> None:
    """After an attempt, failed or ended: close the client's socket if it is still open,
    and take the outcome of its disconnect so that asyncio does not log it at GC.

    aiomqtt leaves the socket of a connect that timed out waiting for CONNACK open (and
    registered with the event loop). A node that answers late (a NATS node electing new
    stream leaders holds logins for seconds) would then give the gateway a second session
    under its client id besides the one on the next node, and the broker drops one of the
    two: at times the live one. A connect refused by a closed connection leaves its
    "Unexpected disconnection" unretrieved: "Future exception was never retrieved" at ERROR."""
    if client._client.socket() is not None:
        client._client._sock_close()
    for outcome in (client._disconnected, client._connected):
        if outcome.done() and not outcome.cancelled():
            outcome.exception()


def set_nodelay(client: aiomqtt.Client) -> bool:
    """Disable Nagle on the connection (neither paho nor aiomqtt does).

    Without it a small PUBLISH (an alarm) can wait for the ACK of the previous segment:
    tens of ms per message, which made a 24 h backlog drain ~20x slower here."""
    sock = client._client.socket()  # paho's socket (an SSLSocket under TLS)
    if not isinstance(sock, socket.socket):  # ssl.SSLSocket is one too
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        return False
    return True


def rotation(s: EdgeSettings, rng: random.Random) -> Rotation:
    """The agent's walk over its broker addresses (its own order, seeded by the gateway id)."""
    m = s.mqtt
    return Rotation(
        m.addresses,
        s.gateway_id,
        lambda rounds: reconnect_delay(rounds, m.reconnect_min_s, m.reconnect_max_s, rng),
        spread_s=m.failover_spread_s,
        rng=rng,
    )

