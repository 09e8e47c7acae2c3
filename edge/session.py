"""The MQTT session of the agent: connect, birth, then receive / send / heartbeat until the
link drops; reconnect to the next broker address (edge/link.py, protocols/failover.py) with
jittered backoff after a full round of them, or within ~2 s while an alarm waits (also one
raised during the backoff). Delivery order comes from the outbox's plan: after any
reconnect, to the same node or another, everything unacked is sent again (same ids).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge.errors import EdgeError
from edge.link import alarm_reconnect_delay, dispose, make_client, rotation, set_nodelay, topic
from edge.outbox import Outbox
from edge.settings import EdgeSettings
from edge.store import LANE_ALARM
from protocols import Channel, GatewayState, gateway_subscriptions
from protocols.codec import LIMITS
from protocols.failover import Address, alarm_link_timeout

log = logging.getLogger(__name__)

#: Handles one downlink message (topic, payload) received on the client.
DownlinkHandler = Callable[[aiomqtt.Client, str, object], Awaitable[None]]


@dataclass
class Link:
    """What the MQTT session needs of the agent, and nothing more."""

    gw: str
    settings: Callable[[], EdgeSettings]  #: the running settings (a reload replaces them)
    outbox: Outbox
    status: Callable[[GatewayState, str], bytes]  #: a status payload (state, reason)
    heartbeat_s: Callable[[], float]  #: the running heartbeat period
    on_downlink: DownlinkHandler
    count_reject: Callable[[str], None]
    up: asyncio.Event = field(default_factory=asyncio.Event)
    client: aiomqtt.Client | None = None  #: while linked
    server: Address | None = None  #: the broker address of the link, while linked
    #: links hung up on because an alarm went unacked on them, since an alarm was last acked
    #: (or none was waiting): each doubles the next link's alarm_link_timeout_s
    alarm_hangups: int = 0


def cancel_requests() -> int:
    """This task's pending cancellation requests (3.11 counts them; see :func:`still_running`)."""
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def still_running(before: int) -> None:
    """Raise CancelledError if this task was asked to cancel since it had ``before``
    requests. Called after each aiomqtt await: aiomqtt waits for CONNACK, SUBACK and PUBACK
    with asyncio.wait_for, which on Python 3.11 returns the result instead of raising when
    the reply arrives in the step that cancels the task. The cancellation was then lost,
    the session ran on, and the agent's TaskGroup waited for it for ever: an agent stopped
    while its link was coming up never stopped (tests/edge/test_failover.py hung so, ~1 run
    in 10 on a loaded host). A count, not "any": a 3.11 TaskGroup whose child fails leaves
    one request on its parent for good (the link task, after every lost link)."""
    if cancel_requests() > before:
        raise asyncio.CancelledError


async def run_link(link: Link) -> None:
    rng = random.Random()
    s = link.settings()
    rot = rotation(s, rng)
    while True:
        will = link.status(GatewayState.OFFLINE, "lwt")
        s = link.settings()
        if s.mqtt.addresses != rot.addresses:  # a settings reload changed the list: start over
            rot = rotation(s, rng)
        where = rot.where()
        before = cancel_requests()
        client = make_client(s, rot.current, will, alarm_waiting=link.outbox.alarms_pending() > 0)
        linked = False
        try:
            async with client:
                still_running(before)
                rot.up()
                linked = True
                link.server = rot.current
                await connected(link, client, where, before)
        except* aiomqtt.MqttError as eg:
            log.warning("uplink down at %s: %s", where, "; ".join(str(e) for e in eg.exceptions))
        finally:
            dispose(client)
            link.client = None
            link.server = None
            link.up.clear()
            link.outbox.link_down()
        if not linked:
            # a cancellation that came while aiomqtt waited for a CONNACK that refused us is
            # lost in 3.11's wait_for, and the MqttError above replaced it: the loop then went
            # on reconnecting for ever after the agent was stopped (tests/edge/test_tls_auth.py,
            # a wrong password: 5,610 refusals in 900 s, once in a `make test`). Only a failed
            # connect: after a link, the TaskGroup of `connected` leaves a request of its own.
            still_running(before)
        delay = rot.down(connect_failed=not linked)
        log.info("next attempt at %s in %.1f s (%s)", rot.where(), delay, "connect failed" if not linked else "link lost")
        await pause(link, delay, min(delay, alarm_reconnect_delay(rng)))


async def pause(link: Link, delay: float, alarm_delay: float) -> None:
    """Wait ``delay`` before reconnecting; only ``alarm_delay`` while an alarm waits in the
    buffer, including one raised during the wait (it wakes us)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        # (a count on the buffer's index, only at start and when something was recorded)
        wait = alarm_delay if link.outbox.alarms_pending() else delay
        left = start + wait - loop.time()
        if left <= 0:
            return
        link.outbox.changed.clear()  # the sender is not running: nobody else waits on it
        try:
            async with asyncio.timeout(left):
                await link.outbox.changed.wait()
        except TimeoutError:
            return


async def connected(link: Link, client: aiomqtt.Client, where: str, before: int = 0) -> None:
    set_nodelay(client)
    s = link.settings()
    topics = gateway_subscriptions(link.gw)
    granted = await client.subscribe([(t, s.mqtt.downlink_qos) for t in topics])
    still_running(before)
    refused = [t for t, g in zip(topics, granted, strict=True) if refused_grant(g)]
    if refused:
        # linked without its acks and downlink the agent would resend for ever and never hear
        # the hub: a NATS node refused a gateway's ack subscription (0x80) on its reconnect
        # while the cluster re-elected after a node's SIGKILL, and that gateway then went
        # 110 s without an ack (tests/hub/ingest/test_nats.py). A new link subscribes again.
        raise aiomqtt.MqttError(f"subscription refused: {', '.join(refused)}")
    await client.publish(
        topic(link.gw, Channel.STATUS),
        link.status(GatewayState.ONLINE, "birth"),
        qos=s.mqtt.uplink_qos,
        retain=s.mqtt.retain_status,
    )
    still_running(before)
    link.client = client
    link.outbox.link_down()  # re-plan everything: alarms first, then the backlog
    link.up.set()
    log.info("uplink up at %s as %s", where, s.mqtt_username)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(receiver(link, client))
            tg.create_task(sender(link, client))
            tg.create_task(heartbeat(link, client))
            tg.create_task(alarm_watch(link))
    except asyncio.CancelledError:
        await say_goodbye(link, client)
        raise


def refused_grant(granted: object) -> bool:
    """A SUBACK's return code for one topic (aiomqtt: an int, or a ReasonCode): 0x80 or another failure."""
    if isinstance(granted, ReasonCode):
        return bool(granted.is_failure)
    return isinstance(granted, int) and granted >= 0x80


async def say_goodbye(link: Link, client: aiomqtt.Client) -> None:
    m = link.settings().mqtt
    try:
        await client.publish(
            topic(link.gw, Channel.STATUS),
            link.status(GatewayState.OFFLINE, "shutdown"),
            qos=m.uplink_qos,
            retain=m.retain_status,
            timeout=2,
        )
    except aiomqtt.MqttError as exc:
        log.warning("could not publish shutdown status: %s", exc)


async def receiver(link: Link, client: aiomqtt.Client) -> None:
    async for message in client.messages:
        try:
            await link.on_downlink(client, str(message.topic), message.payload)
        except EdgeError as exc:  # e.g. the store refused to persist a config
            link.count_reject("handler_error")
            log.error("downlink on %s not handled: %s", message.topic, exc)


async def sender(link: Link, client: aiomqtt.Client) -> None:
    loop = asyncio.get_running_loop()
    before = cancel_requests()
    while True:
        link.outbox.changed.clear()
        batch = link.outbox.plan(loop.time())
        for i, e in enumerate(batch):
            if len(e.payload) > LIMITS[Channel(e.channel)]:
                # never sent: above the broker's packet limit Mosquitto drops the connection,
                # and the same packet would be resent for ever (only a buffer written by an
                # older agent can hold one; messages are split to fit when they are built)
                log.error("%s %s is %d bytes, above the limit: dropped", e.channel, e.id, len(e.payload))
                link.outbox.ack([e.id])
                continue
            m = link.settings().mqtt
            await client.publish(topic(link.gw, e.channel), e.payload, qos=m.uplink_qos, timeout=m.connect_timeout_s)
            still_running(before)
            if link.outbox.urgent:  # an alarm arrived meanwhile: re-plan now
                link.outbox.unsend([x.id for x in batch[i + 1 :]])
                break
        if link.outbox.urgent:
            continue
        due = link.outbox.next_due()
        timeout = None if due is None else max(0.0, due - loop.time())
        # asyncio.timeout, not wait_for: on 3.11 wait_for returns the result instead of
        # raising when the event is set in the step that cancels us, and the loop would
        # then wait here for ever and the agent never stop
        try:
            async with asyncio.timeout(timeout):
                await link.outbox.changed.wait()
        except TimeoutError:
            pass


#: how often :func:`alarm_watch` looks at the alarms in flight
ALARM_WATCH_TICK_S = 0.5


async def alarm_watch(link: Link) -> None:
    """Hang up on a link that carries an alarm and brings no ack for it.

    A link whose other end is gone without a FIN or an RST (the node's machine died, a NAT
    forgot the flow, a partition) takes the keep-alive, 1.5 x ``keepalive_s`` (45 s), to be
    noticed; meanwhile an alarm published on it goes nowhere and is resent into it. So an
    alarm in flight on this link for ``alarm_link_timeout_s`` (15 s) without its ack ends
    the link (an MqttError, as a lost link): the session reconnects after 0.5-2 s, to the
    next address of a cluster, and resends it. The hub acks within ~0.1 s when it works
    (docs/benchmarks.md); a hub too slow for that is not helped by reconnects, so each
    hang-up doubles the next link's limit, until an alarm is acked or none is waiting."""
    loop = asyncio.get_running_loop()
    seen: dict[str, float] = {}  #: alarm id → when first seen in flight on this link
    while True:
        await asyncio.sleep(ALARM_WATCH_TICK_S)
        now = loop.time()
        flying = {i for i, f in link.outbox.flights.items() if f.entry.lane == LANE_ALARM}
        if link.alarm_hangups and not flying and not link.outbox.alarms_pending():  # (a store read)
            link.alarm_hangups = 0  # acked before this watch saw it in flight
        for i in [i for i in seen if i not in flying]:
            del seen[i]
            link.alarm_hangups = 0  # acked (or re-planned): this link carries alarms
        for i in flying:
            seen.setdefault(i, now)
        limit = alarm_link_timeout(link.settings().mqtt.alarm_link_timeout_s, link.alarm_hangups)
        late = sorted((t, i) for i, t in seen.items() if now - t >= limit)
        if late:
            link.alarm_hangups += 1
            raise aiomqtt.MqttError(
                f"alarm {late[0][1]} unacked for {now - late[0][0]:.1f} s on this link "
                f"(alarm_link_timeout_s {limit:.0f} s): presumed dead, hanging up"
            )


async def heartbeat(link: Link, client: aiomqtt.Client) -> None:
    before = cancel_requests()
    while True:
        await asyncio.sleep(link.heartbeat_s())
        m = link.settings().mqtt  # a reload may have replaced them meanwhile
        await client.publish(
            topic(link.gw, Channel.STATUS),
            link.status(GatewayState.ONLINE, "heartbeat"),
            qos=m.uplink_qos,
            retain=m.retain_status,
        )
        still_running(before)
