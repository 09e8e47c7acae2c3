"""The MQTT session of the agent: connect, birth, then receive / send / heartbeat until the
link drops; reconnect with jittered backoff, or within ~2 s while an alarm waits (also one
raised during the backoff). Delivery order comes from the outbox's plan.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

import aiomqtt

from edge import commands
from edge.errors import EdgeError
from edge.link import alarm_reconnect_delay, make_client, reconnect_delay, set_nodelay, topic
from protocols import Channel, GatewayState
from protocols.codec import LIMITS

if TYPE_CHECKING:
    from edge.agent import Agent

log = logging.getLogger(__name__)


async def run_link(agent: Agent) -> None:
    rng = random.Random()
    attempt = 0
    m = agent.s.mqtt
    while True:
        will = agent.status_payload(GatewayState.OFFLINE, "lwt")
        try:
            async with make_client(agent.s, will, alarm_waiting=agent.outbox.alarms_pending() > 0) as client:
                attempt = 0
                await connected(agent, client)
        except* aiomqtt.MqttError as eg:
            log.warning("uplink down: %s", "; ".join(str(e) for e in eg.exceptions))
        finally:
            agent.client = None
            agent.link_up.clear()
            agent.outbox.link_down()
        delay = reconnect_delay(attempt, m.reconnect_min_s, m.reconnect_max_s, rng)
        attempt += 1
        await pause(agent, delay, min(delay, alarm_reconnect_delay(rng)))


async def pause(agent: Agent, delay: float, alarm_delay: float) -> None:
    """Wait ``delay`` before reconnecting; only ``alarm_delay`` while an alarm waits in the
    buffer, including one raised during the wait (it wakes us)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        # (a count on the buffer's index, only at start and when something was recorded)
        wait = alarm_delay if agent.outbox.alarms_pending() else delay
        left = start + wait - loop.time()
        if left <= 0:
            return
        agent.outbox.changed.clear()  # the sender is not running: nobody else waits on it
        try:
            async with asyncio.timeout(left):
                await agent.outbox.changed.wait()
        except TimeoutError:
            return


async def connected(agent: Agent, client: aiomqtt.Client) -> None:
    set_nodelay(client)
    await client.subscribe([(t, 1) for t in commands.subscriptions(agent.gw)])
    await client.publish(
        topic(agent.gw, Channel.STATUS),
        agent.status_payload(GatewayState.ONLINE, "birth"),
        qos=1,
        retain=True,
    )
    agent.client = client
    agent.outbox.link_down()  # re-plan everything: alarms first, then the backlog
    agent.link_up.set()
    log.info("uplink up (%s:%d as %s)", agent.s.mqtt.host, agent.s.mqtt.port, agent.s.mqtt_username)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(receiver(agent, client))
            tg.create_task(sender(agent, client))
            tg.create_task(heartbeat(agent, client))
    except asyncio.CancelledError:
        await say_goodbye(agent, client)
        raise


async def say_goodbye(agent: Agent, client: aiomqtt.Client) -> None:
    try:
        await client.publish(
            topic(agent.gw, Channel.STATUS),
            agent.status_payload(GatewayState.OFFLINE, "shutdown"),
            qos=1,
            retain=True,
            timeout=2,
        )
    except aiomqtt.MqttError as exc:
        log.warning("could not publish shutdown status: %s", exc)


async def receiver(agent: Agent, client: aiomqtt.Client) -> None:
    async for message in client.messages:
        try:
            await commands.handle_downlink(agent, client, str(message.topic), message.payload)
        except EdgeError as exc:  # e.g. the store refused to persist a config
            agent.rejects.count("handler_error")
            log.error("downlink on %s not handled: %s", message.topic, exc)


async def sender(agent: Agent, client: aiomqtt.Client) -> None:
    loop = asyncio.get_running_loop()
    while True:
        agent.outbox.changed.clear()
        batch = agent.outbox.plan(loop.time())
        for i, e in enumerate(batch):
            if len(e.payload) > LIMITS[Channel(e.channel)]:
                # never sent: above the broker's packet limit Mosquitto drops the connection,
                # and the same packet would be resent for ever (only a buffer written by an
                # older agent can hold one; messages are split to fit when they are built)
                log.error("%s %s is %d bytes, above the limit: dropped", e.channel, e.id, len(e.payload))
                agent.outbox.ack([e.id])
                continue
            await client.publish(
                topic(agent.gw, e.channel), e.payload, qos=1, timeout=agent.s.mqtt.connect_timeout_s
            )
            if agent.outbox.urgent:  # an alarm arrived meanwhile: re-plan now
                agent.outbox.unsend([x.id for x in batch[i + 1 :]])
                break
        if agent.outbox.urgent:
            continue
        due = agent.outbox.next_due()
        timeout = None if due is None else max(0.0, due - loop.time())
        # asyncio.timeout, not wait_for: on 3.11 wait_for returns the result instead of
        # raising when the event is set in the step that cancels us, and the loop would
        # then wait here for ever and the agent never stop
        try:
            async with asyncio.timeout(timeout):
                await agent.outbox.changed.wait()
        except TimeoutError:
            pass


async def heartbeat(agent: Agent, client: aiomqtt.Client) -> None:
    while True:
        await asyncio.sleep(agent.heartbeat_s)
        await client.publish(
            topic(agent.gw, Channel.STATUS),
            agent.status_payload(GatewayState.ONLINE, "heartbeat"),
            qos=1,
            retain=True,
        )
