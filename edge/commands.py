"""Downlink handling for the agent: Acks, retained Config, Commands and their results.

:class:`Downlink` is the handler the MQTT session calls for every message; it sees the
agent only through :class:`AgentPort` (what handling a downlink needs, nothing more) and
changes runtime settings only through ``AgentPort.apply_runtime``.

Every refused message is logged with its reason and counted (``agent.rejects``); nothing
here raises past :meth:`Downlink.handle`, so a bad message never stops the agent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import aiomqtt

from devices.errors import DefinitionError
from devices.runtime import OutputRuntime, SensorRuntime
from devices.wiring import check_wiring
from edge.clock import Clock
from edge.configcheck import refusal, revision_of
from edge.downlink import RejectCounter, parse
from edge.errors import ConfigError, DownlinkError
from edge.health import cpu_temp_c
from edge.link import topic
from edge.outbox import Outbox
from edge.runtime import Runtime
from edge.settings import EdgeSettings
from edge.siren import HANDLED, SirenPolicy, VoicePrompt
from edge.store import Store
from edge.uplink import Stamp
from protocols import (
    Ack,
    AckStatus,
    Channel,
    Command,
    CommandName,
    CommandResult,
    Config,
    ConfigRefusal,
    GatewayState,
    ProtocolError,
    Topic,
    decode,
    encode,
)

log = logging.getLogger(__name__)
Scalar = str | int | float | bool | None
DONE = frozenset({AckStatus.STORED, AckStatus.REJECTED}) | HANDLED


class AgentPort(Protocol):
    """What handling a downlink needs of the agent (:class:`edge.agent.Agent` has it)."""

    gw: str
    s: EdgeSettings
    settings_loader: Callable[[], EdgeSettings] | None
    rejects: RejectCounter
    siren: SirenPolicy
    voice: VoicePrompt
    outbox: Outbox
    clock: Clock
    store: Store
    sensors: list[SensorRuntime]
    outputs: dict[str, OutputRuntime]
    config_revision: int | None
    config_error: ConfigRefusal | None
    last_ack_ms: int | None

    def apply_runtime(self, rt: Runtime) -> None: ...
    def status_payload(self, state: GatewayState, reason: str) -> bytes: ...
    def state(self) -> dict[str, object]: ...
    def stamp(self) -> Stamp: ...


class Downlink:
    """The handler of every downlink message; keeps the tasks it starts until they end (the
    event loop holds only a weak reference: an unreferenced task can be collected mid-run)."""

    def __init__(self, agent: AgentPort) -> None:
        self.agent = agent
        self.tasks: set[asyncio.Task[Any]] = set()

    async def handle(self, client: aiomqtt.Client, topic_s: str, payload: object) -> None:
        await handle_downlink(self.agent, client, topic_s, payload, self.spawn)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def handle_downlink(
    agent: AgentPort,
    client: aiomqtt.Client,
    topic_s: str,
    payload: object,
    spawn: Callable[[Coroutine[Any, Any, Any]], None],
) -> None:
    if not isinstance(payload, bytes | bytearray):
        agent.rejects.count("bad_payload")
        log.error("downlink on %s refused: payload is %s, not bytes", topic_s, type(payload).__name__)
        return
    try:
        msg = parse(agent.gw, topic_s, bytes(payload))
    except DownlinkError as exc:
        agent.rejects.count(exc.reason)
        log.error("downlink on %s refused (%d bytes): %s", topic_s, len(payload), exc)
        if refuse_invalid_config(agent, topic_s, bytes(payload), exc):
            await report_status(agent, client)
        return
    if isinstance(msg, Ack):
        on_ack(agent, msg, spawn)
    elif isinstance(msg, Config):
        if apply_config(agent, msg, persist=True) or agent.config_error is not None:
            await report_status(agent, client)  # the hub waits for the outcome of its push
    else:
        result = await run_command(agent, client, msg)
        try:
            await client.publish(topic(agent.gw, Channel.RESULT), encode(result), qos=agent.s.mqtt.uplink_qos)
        except aiomqtt.MqttError as exc:
            log.warning("result of command %s not published: %s", msg.id, exc)


async def report_status(agent: AgentPort, client: aiomqtt.Client) -> None:
    """Publish a status now (as the heartbeat is: retained unless ``mqtt.retain_status`` is off)
    rather than at the next heartbeat."""
    try:
        payload = agent.status_payload(GatewayState.ONLINE, "report")
        m = agent.s.mqtt
        await client.publish(topic(agent.gw, Channel.STATUS), payload, qos=m.uplink_qos, retain=m.retain_status)
    except aiomqtt.MqttError as exc:  # the next heartbeat carries the same outcome
        log.warning("status after a config not published: %s", exc)


def on_ack(agent: AgentPort, ack: Ack, spawn: Callable[[Coroutine[Any, Any, Any]], None]) -> None:
    now = asyncio.get_running_loop().time()
    done: list[str] = []
    for item in ack.items:
        if item.status in DONE:
            done.append(item.id)
        if item.status is AckStatus.REJECTED:
            log.error("hub rejected %s: %s", item.id, item.reason or "(no reason)")
        if agent.siren.hub_status(item.id, item.status, now):
            log.warning("help is on the way for %s (%s by %s)", item.id, item.status, item.by or "center")
            spawn(agent.voice.say("help_on_the_way"))
    if done:
        agent.outbox.ack(done, now)
        agent.last_ack_ms = agent.clock.now_ms()


# --- config ----------------------------------------------------------------------------


def apply_config(agent: AgentPort, cfg: Config, persist: bool) -> bool:
    """Apply the hub's desired config when it is newer than what we run. Persisted.
    A config this Pi cannot apply live is refused whole (:mod:`edge.configcheck`): the
    running config stays, and the refusal goes to the hub in every status until a newer
    revision applies."""
    if agent.config_revision is not None and cfg.revision <= agent.config_revision:
        log.debug("config revision %d already applied", cfg.revision)
        return False
    refused = refusal(cfg, {s.sensor_id: s.model for s in agent.sensors})
    if refused is not None:
        _refuse(agent, refused)
        return False
    agent.apply_runtime(Runtime.of_config(cfg))
    agent.config_revision = cfg.revision
    agent.config_error = None
    if persist:
        agent.store.put_meta("config", cfg.model_dump_json())
    log.info("applied config revision %d", cfg.revision)
    return True


def _refuse(agent: AgentPort, refused: ConfigRefusal) -> None:
    agent.rejects.count(f"config_{refused.reason}")
    log.error("config revision %d refused (%s): %s; still running revision %s",
              refused.revision, refused.reason, refused.detail, agent.config_revision)
    if agent.config_error is None or refused.revision >= agent.config_error.revision:
        agent.config_error = refused


def refuse_invalid_config(agent: AgentPort, topic_s: str, payload: bytes, exc: DownlinkError) -> bool:
    """A config that failed validation is refused like one that cannot be applied, when its
    revision can be read (the hub waits for that revision's outcome). True when recorded."""
    try:
        on_config = Topic.parse(topic_s).channel is Channel.CONFIG
    except ProtocolError:
        return False
    revision = revision_of(payload) if on_config else None
    if revision is None or (agent.config_revision is not None and revision <= agent.config_revision):
        return False
    _refuse(agent, ConfigRefusal(revision=revision, reason="invalid", detail=exc.detail[:500]))
    return True


def restore_config(agent: AgentPort) -> None:
    raw = agent.store.get_meta("config")
    if raw is None:
        return
    try:
        cfg = decode(Channel.CONFIG, raw, Config)
    except ProtocolError as exc:
        log.error("persisted config is invalid, ignored: %s", exc)
        return
    apply_config(agent, cfg, persist=False)


def reload_local(agent: AgentPort) -> str:
    """Re-read the settings file: soft settings apply now, wiring changes need a restart."""
    if agent.settings_loader is None:
        return "no settings file to re-read"
    new = agent.settings_loader()
    rewired = new.sensors != agent.s.sensors or new.outputs != agent.s.outputs
    if rewired:
        # refused now, while the agent still runs on the old wiring, rather than at the
        # restart it asks for (where a clash would keep the agent from starting at all)
        try:
            check_wiring(new.sensors + new.outputs)
        except DefinitionError as exc:
            raise ConfigError(f"not reloaded: {exc}") from exc
    agent.apply_runtime(Runtime.of_settings(new))
    agent.s = new
    revision, agent.config_revision = agent.config_revision, None
    restore_config(agent)  # the hub's desired config still wins
    agent.config_revision = agent.config_revision if agent.config_revision is not None else revision
    return "reloaded" + ("; sensor wiring changed: restart to apply" if rewired else "")


# --- commands --------------------------------------------------------------------------


def selftest(agent: AgentPort) -> dict[str, Scalar]:
    failed = [s.sensor_id for s in agent.sensors if not s.check()]
    if failed:
        log.error("selftest: sensors not answering: %s", failed)
    sensors_ok = not failed
    buzzer = agent.outputs.get("siren")
    if buzzer is not None:
        buzzer.set(True)  # a short chirp; the siren driver switches it back
    return {
        "store": agent.store.check(),
        "sensors": len(agent.sensors),
        "sensors_ok": sensors_ok,
        "buzzer": buzzer is not None,
        "clock_synced": agent.clock.synced(),
        "cpu_temp_c": cpu_temp_c(),
    }


async def run_command(agent: AgentPort, client: aiomqtt.Client, cmd: Command) -> CommandResult:
    ok, detail = True, ""
    data: dict[str, Scalar] = {}
    now_ms, synced = agent.clock.stamp()
    try:
        if cmd.expires is not None and synced and now_ms > cmd.expires:
            ok, detail = False, f"expired at {cmd.expires}, now {now_ms}"
        elif cmd.name == CommandName.SELFTEST:
            data = selftest(agent)
            ok = bool(data["store"]) and bool(data["sensors_ok"])
        elif cmd.name == CommandName.SILENCE_SIREN:
            agent.siren.silence()
            detail = "siren silenced"
        elif cmd.name == CommandName.RELOAD_CONFIG:
            detail = reload_local(agent)
        elif cmd.name == CommandName.REPORT_STATUS:
            await report_status(agent, client)
            st = agent.state()
            data = {k: v for k, v in st.items() if isinstance(v, str | int | float | bool)}
        else:
            ok, detail = False, f"unknown_command: {cmd.name!r}"
            agent.rejects.count("unknown_command")
            log.error("unknown command %r (id %s)", cmd.name, cmd.id)
    except ConfigError as exc:
        ok, detail = False, str(exc)[:500]
    stamp = agent.stamp()
    return CommandResult(
        gw=agent.gw,
        seq=stamp.seq,
        id=stamp.id,
        ts=stamp.ts,
        synced=stamp.synced,
        command_id=cmd.id,
        command=cmd.name,
        ok=ok,
        detail=detail[:500],
        data=dict(list(data.items())[:64]),
    )
