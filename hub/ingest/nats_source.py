"""A lane of the ingest on a NATS cluster: core NATS queue-group subscriptions (nats-py).

NATS's MQTT listener has no ``$share`` shared subscriptions, so the hub's workers consume
the gateways' uplink natively: the MQTT topic ``safehome/v1/gw/<id>/event`` is the NATS
subject ``safehome.v1.gw.<id>.event`` (gateway ids never hold a dot: protocols/ids.py),
and every worker subscribes to ``safehome.v1.gw.*.<channel>`` in the queue group
``mqtt.share_group``: the server hands each message to one member.

Core NATS is at most once to the hub, which is all the hub needs: a gateway resends until
the hub's ack, published after the commit, reaches it (docs/protocol.md). Whatever is lost
between the server and the store — a node killed, a connection closed as a slow consumer
(the server's ``max_pending`` / ``write_deadline``), a message nats-py drops past its
pending limit — was never acked, so it costs a resend, never an acked event. The drops of
nats-py are counted (``safehome_messages_rejected_total{reason="slow_consumer"}``), the
connection losses too (``safehome_ingest_lane_lost_total``).

Natively the hub never sees MQTT's retain flag (NATS puts only ``Nmqtt-Pub`` in the
headers) and never gets retained messages replayed: every message is live, ``retain`` False.
Acks and commands go back over MQTT QoS 1 (:class:`hub.mqtt.LazyPublisher`), not natively:
a native publish reaches a gateway's QoS 1 subscription as QoS 0 and is lost while the
gateway is disconnected (measured on nats-server 2.9.10; docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import SlowConsumerError

from hub.ingest.uplink import AckPublisher, Deliver, LaneUp, Uplink
from hub.mqtt import hub_client_id
from hub.settings import MqttSettings
from protocols import hub_subscriptions

log = logging.getLogger(__name__)

#: nats-py's own queue per subscription, between its socket reader and our callback, which
#: only puts the message in the hub's fair queue (bounded by ``ingest.max_pending``). Past
#: this a message is dropped and counted as a slow consumer: the event loop was stuck for
#: that many messages, and the gateways resend. Its defaults (524,288 messages, 128 MiB)
#: would hide a stuck loop behind minutes of backlog.
PENDING_MSGS = 65_536
PENDING_BYTES = 64 * 1024 * 1024
#: a node that was just tried is tried again after this at the earliest (nats-py waits only
#: when it comes back to the same server: with 3 nodes a dead one costs no wait)
RECONNECT_WAIT_S = 0.5
CONNECT_TIMEOUT_S = 2.0
#: an error other than a slow consumer (reconnect attempts while a node is down) is logged
#: at most this often
ERROR_LOG_EVERY_S = 10.0


def nats_subject(topic_filter: str) -> str:
    """``safehome/v1/gw/+/event`` → ``safehome.v1.gw.*.event``."""
    return topic_filter.replace("/", ".").replace("+", "*").replace("#", ">")


def tls_context(s: MqttSettings) -> ssl.SSLContext | None:
    if not s.tls:
        return None
    ctx = ssl.create_default_context(cafile=str(s.cafile) if s.cafile else None)
    if s.certfile:
        ctx.load_cert_chain(str(s.certfile), str(s.keyfile) if s.keyfile else None)
    return ctx


class NatsLane:
    """A lane over core NATS: one nats-py connection to the cluster, the lane's subjects in
    the queue group. nats-py reconnects by itself, to any node of ``mqtt.nats_servers`` or
    one the cluster told it of, forever, and subscribes again; the lane is down meanwhile."""

    def __init__(
        self,
        mqtt: MqttSettings,
        worker_id: str,
        lane: str,
        channels: frozenset[str],
        deliver: Deliver,
        up: LaneUp,
        dropped: Callable[[str], None],
    ) -> None:
        self._mqtt = mqtt
        self._lane = lane
        self._name = hub_client_id(worker_id, lane)
        self.subjects = [
            nats_subject(t) for t in hub_subscriptions(mqtt.share_group, shared=False) if t.rsplit("/", 1)[-1] in channels
        ]
        self._deliver = deliver
        self._up = up
        self._dropped = dropped
        self._error_logged = 0.0
        self._nc: NatsClient | None = None
        self._closed = asyncio.Event()

    def publisher(self) -> AckPublisher | None:
        return None  # acks go over MQTT QoS 1 (module docstring)

    @property
    def connected_port(self) -> int | None:
        """The port of the node this lane is connected to (None while not connected)."""
        nc = self._nc
        url = nc.connected_url if nc is not None and nc.is_connected else None
        return url.port if url is not None else None

    async def run(self) -> None:
        backoff = 0.5
        while True:
            self._closed.clear()
            try:
                self._nc = nc = await self._connect()
            except (OSError, TimeoutError, NatsError) as exc:  # refused, unreachable, TLS, auth
                log.warning("ingest %s lane: no NATS node of %s answered (%s); again in %.1f s",
                            self._lane, self._mqtt.nats_servers, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            try:
                for subject in self.subjects:
                    await nc.subscribe(
                        subject,
                        queue=self._mqtt.share_group,
                        cb=self._on_message,
                        pending_msgs_limit=PENDING_MSGS,
                        pending_bytes_limit=PENDING_BYTES,
                    )
                await nc.flush()
                self._up(True)
                url = nc.connected_url
                log.info("ingest %s lane on NATS %s: %s in queue group %s", self._lane, url.netloc if url else "?",
                         self.subjects, self._mqtt.share_group)
                await self._closed.wait()  # only if nats-py gives up (it is told never to)
                log.warning("ingest %s lane: the NATS connection closed; connecting again", self._lane)
            finally:
                self._nc = None  # its close below is ours, not a lost node
                self._up(False)
                if not nc.is_closed:
                    await asyncio.shield(nc.close())

    async def _connect(self) -> NatsClient:
        m = self._mqtt
        return await nats.connect(
            servers=m.nats_servers,
            name=self._name,
            user=m.username,
            password=m.secret(),
            tls=tls_context(m),
            allow_reconnect=True,
            max_reconnect_attempts=-1,  # never give up on the cluster
            reconnect_time_wait=RECONNECT_WAIT_S,
            connect_timeout=CONNECT_TIMEOUT_S,
            # a half-open connection (a node's host gone without a FIN) is found within
            # 2 pings, as MQTT's keepalive finds it
            ping_interval=m.keepalive,
            max_outstanding_pings=2,
            # the pool is shuffled (nats-py's default, said here on purpose): the workers'
            # lanes spread over the cluster's nodes instead of all on the first one
            dont_randomize=False,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            closed_cb=self._on_closed,
        )

    async def _on_message(self, msg: Msg) -> None:
        self._deliver(Uplink(msg.subject.replace(".", "/"), msg.data, False))

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, SlowConsumerError):
            self._dropped(exc.subject.replace(".", "/"))
            return
        now = time.monotonic()
        if now - self._error_logged >= ERROR_LOG_EVERY_S:
            self._error_logged = now
            log.warning("ingest %s lane, NATS: %s", self._lane, exc or type(exc).__name__)

    async def _on_disconnected(self) -> None:
        if self._nc is None:
            return  # our own close (stopping)
        self._up(False)
        log.warning("ingest %s lane lost its NATS node; nats-py reconnects to the cluster", self._lane)

    async def _on_closed(self) -> None:
        self._closed.set()

    async def _on_reconnected(self) -> None:
        self._up(True)
        url = self._nc.connected_url if self._nc is not None else None
        log.info("ingest %s lane reconnected to NATS %s", self._lane, url.netloc if url else "?")
