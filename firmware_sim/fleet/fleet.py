"""Many simulated gateways in one asyncio process, each with its own MQTT session (settings,
observer hooks and credentials are in ``types.py``).

One periodic tick drives every gateway's heartbeat, telemetry batch, resends,
keep-alive and reconnects (a heap of due times), so 10,000 sessions cost one loop.
Scenario actions (:meth:`Fleet.trigger`, :meth:`Fleet.link_down`, …) are plain calls.
With several broker addresses each gateway walks them as the edge agent does
(protocols/failover.py): a lost link or a failed connect goes to its next address within
``failover_spread_s``; the wide random reconnect delay comes only after a full round.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import math
import random
import time
from collections.abc import Callable

import protocols as p
from firmware_sim.errors import FleetError, LoginFailed, MqttError, SubscriptionRefused
from firmware_sim.fleet.gateway import GatewaySpec, Pending, SimGateway
from firmware_sim.fleet.store import FleetStore
from firmware_sim.fleet.types import (
    Credentials,
    FleetObserver,
    FleetSettings,
    FleetStats,
    username_only,
)
from firmware_sim.mqtt import MqttSession, Will
from firmware_sim.mqtt.packets import Incoming
from protocols.failover import Address, Rotation, alarm_link_timeout, alarm_reconnect_delay, reconnect_delay
from protocols.messages import Values

log = logging.getLogger(__name__)
HEARTBEAT, TELEMETRY, RECONNECT = 0, 1, 2


class Fleet:
    def __init__(
        self,
        specs: list[GatewaySpec],
        settings: FleetSettings,
        credentials: Credentials = username_only,
        observer: FleetObserver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.observer = observer or FleetObserver()
        self.clock = clock  # wall clock for message timestamps
        self.stats = FleetStats()
        self.rng = random.Random(settings.seed)
        self.gateways: dict[str, SimGateway] = {
            s.id: SimGateway(
                s,
                resend_s=settings.resend_s,
                resend_max_s=settings.resend_max_s,
                window=settings.window,
                rng=random.Random(f"{settings.seed}/{s.id}"),
            )
            for s in specs
        }
        self.sessions: dict[str, MqttSession] = {}
        self.rotations: dict[str, Rotation] = {}  #: each gateway's walk over the addresses
        self.server_of: dict[str, Address] = {}  #: the broker address of each linked gateway
        self.down: set[str] = set()  #: gateways whose link is cut on purpose (scenario)
        self.dark: set[str] = set()  #: gateways without power (scenario): they record nothing
        self._heap: list[tuple[float, int, int, str]] = []
        self._n = 0
        self._stopping = False
        self._reconnect_at: dict[str, float] = {}  #: gateway -> when its one scheduled reconnect is due
        self._alarm_sent: set[str] = set()  #: gateways with an alarm sent on their link, not acked yet
        self._with_pending: set[str] = set()  #: gateways that may have something to (re)send
        self._next_keepalive_scan = 0.0
        self.store = FleetStore(settings.state_path) if settings.state_path else None
        if self.store is not None:
            seqs, pend = self.store.load()
            for gw_id, g in self.gateways.items():
                g.seq = seqs.get(gw_id, 0)
                g.pending = {x.id: x for x in pend.get(gw_id, [])}

    @property
    def _hb(self) -> int:
        return max(1, math.ceil(self.settings.heartbeat_s))

    # --- time ----------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _at(self, when: float, what: int, gw: str) -> None:
        self._n += 1
        heapq.heappush(self._heap, (when, self._n, what, gw))

    # --- sessions ------------------------------------------------------------------------
    def _session(self, g: SimGateway) -> MqttSession:
        user, password = self.credentials(g.id)
        will = Will(
            str(p.Topic.of(g.id, p.Channel.STATUS)),
            p.encode(
                p.Status(
                    gw=g.id,
                    state=p.GatewayState.OFFLINE,
                    reason="lwt",
                    ts=self.now_ms(),
                    synced=True,
                    heartbeat_s=self._hb,
                )
            ),
            qos=self.settings.uplink_qos,
            retain=self.settings.retain_status,
        )
        return MqttSession(
            g.id,
            username=user,
            password=password,
            will=will,
            keepalive=self.settings.keepalive,
            clean=self.settings.clean_session,
            on_message=functools.partial(self._on_message, g),
            on_lost=functools.partial(self._on_lost, g),
        )

    def rotation(self, gw_id: str) -> Rotation:
        rot = self.rotations.get(gw_id)
        if rot is None:
            lo, hi = self.settings.reconnect_min_s, self.settings.reconnect_max_s
            rot = self.rotations[gw_id] = Rotation(
                self.settings.addresses,
                gw_id,
                # the agent's curve (edge/link.py): full-jitter exponential per failed round
                lambda rounds: reconnect_delay(rounds, lo, hi, self.rng),
                spread_s=self.settings.failover_spread_s,
                rng=self.rng,
            )
        return rot

    async def connect(self, gw_id: str) -> None:
        g = self.gateways[gw_id]
        s = self._session(g)
        rot = self.rotation(gw_id)
        await s.connect(rot.current.host, rot.current.port)
        rot.up()
        self.server_of[gw_id] = rot.current
        self.sessions[gw_id] = s
        s.subscribe(p.gateway_subscriptions(gw_id), qos=self.settings.downlink_qos)
        s.publish(
            str(p.Topic.of(gw_id, p.Channel.STATUS)),
            g.status(p.GatewayState.ONLINE, "birth", self.now_ms(), self._hb),
            retain=self.settings.retain_status,
            qos=self.settings.uplink_qos,
        )
        g.reset_resend()
        self._send_due(g, time.monotonic())
        self.stats.inc("connects")
        self.observer.link(g, True)

    async def start(self) -> None:
        """Connect every gateway (bounded concurrency) and schedule heartbeats and telemetry."""
        sem = asyncio.Semaphore(self.settings.connect_concurrency)
        failures: list[str] = []

        async def one(gw_id: str) -> None:
            async with sem:
                try:
                    await self.connect(gw_id)
                except MqttError as exc:
                    failures.append(str(exc))
                    self._connect_failed(gw_id, exc)

        await asyncio.gather(*(one(g) for g in self.gateways))
        if failures and len(failures) == len(self.gateways):
            raise FleetError(f"no gateway could connect; first error: {failures[0]}")
        if failures:
            log.warning(
                "%d of %d gateways failed to connect (retrying): %s",
                len(failures),
                len(self.gateways),
                failures[0],
            )
        now = time.monotonic()
        for gw_id in self.gateways:
            # spread the periodic messages evenly (real gateways boot at random times)
            self._at(now + self.rng.uniform(0, self.settings.heartbeat_s), HEARTBEAT, gw_id)
            self._at(now + self.rng.uniform(0, self.settings.telemetry_s), TELEMETRY, gw_id)

    def _on_lost(self, g: SimGateway, exc: BaseException | None) -> None:
        if self.sessions.pop(g.id, None) is None:
            return  # lost before CONNACK: connect() raises, and its caller reconnects
        self.server_of.pop(g.id, None)
        self.stats.inc("links_lost")
        if isinstance(exc, SubscriptionRefused):
            self.stats.inc("subscribe_refused")
        self.observer.link(g, False)
        if not self._stopping and g.id not in self.down:
            self._schedule_reconnect(g.id, self.rotation(g.id).down())

    def _schedule_reconnect(self, gw_id: str, delay: float | None = None) -> None:
        """Reconnect after ``delay`` (default: the wide random one, as after a router reboot);
        while an alarm waits, after ALARM_RECONNECT_S at most, as the edge agent does. One
        reconnect per gateway is scheduled at a time; an earlier one replaces a later one."""
        if delay is None:
            delay = self.rng.uniform(self.settings.reconnect_min_s, self.settings.reconnect_max_s)
        if self._alarm_waiting(gw_id):
            delay = min(delay, alarm_reconnect_delay(self.rng))
        when = time.monotonic() + delay
        if self._reconnect_at.get(gw_id, math.inf) <= when:
            return
        self._reconnect_at[gw_id] = when
        self._at(when, RECONNECT, gw_id)

    def reconnect_in(self, gw_id: str) -> float | None:
        """Seconds until the gateway's scheduled reconnect (None: none scheduled)."""
        when = self._reconnect_at.get(gw_id)
        return None if when is None else when - time.monotonic()

    def _alarm_waiting(self, gw_id: str) -> bool:
        return any(x.alarm for x in self.gateways[gw_id].pending.values())

    async def _reconnect(self, gw_id: str) -> None:
        if gw_id in self.sessions or gw_id in self.down or self._stopping:
            return
        try:
            await self.connect(gw_id)
        except MqttError as exc:
            log.info("reconnect failed: %s", exc)
            self._connect_failed(gw_id, exc)

    def _connect_failed(self, gw_id: str, exc: MqttError) -> None:
        """Count a failed connect by its kind and schedule the next try: on the next node
        within 0.5-2 s (protocols/failover.py, NEXT_TRY_S)."""
        failed_login = isinstance(exc, LoginFailed)
        self.stats.inc("login_failed" if failed_login else "unreachable")
        if not failed_login:  # refused (nothing listens) or timed out (SYNs unanswered)
            self.stats.inc(f"unreachable:{type(exc.__cause__ or exc).__name__}")
        self._schedule_reconnect(gw_id, self.rotation(gw_id).down(connect_failed=True))

    # --- downlink ------------------------------------------------------------------------
    def _on_message(self, g: SimGateway, m: Incoming) -> None:
        try:
            _topic, msg = p.decode_for(m.topic, m.payload)
        except p.ProtocolError as exc:
            self.stats.inc(f"downlink_rejected:{exc.reason}")
            log.warning("gateway %s: bad downlink on %s: %s", g.id, m.topic, exc)
            return
        if isinstance(msg, p.Ack):
            before = set(g.pending)
            for item in g.on_ack(msg, time.monotonic()):
                self.stats.inc(f"home_told:{item.status.value}")
                self.observer.home_told(g, item)
            gone = before - set(g.pending)
            self.stats.inc("acked", len(gone))
            if gone:
                self.observer.stored(g, gone)
            if self.store is not None:
                for mid in gone:
                    self.store.delete(mid)
        elif isinstance(msg, p.Config):
            g.config_revision = msg.revision
            self.stats.inc("configs")
        elif isinstance(msg, p.Command):
            self._answer(g, msg)

    def _answer(self, g: SimGateway, cmd: p.Command) -> None:
        known = cmd.name in set(p.CommandName)
        seq, mid = g._next()
        res = p.CommandResult(
            gw=g.id,
            seq=seq,
            id=mid,
            ts=self.now_ms(),
            synced=True,
            command_id=cmd.id,
            command=cmd.name,
            ok=known,
            detail="" if known else "unknown_command",
        )
        self._publish(g.id, str(p.Topic.of(g.id, p.Channel.RESULT)), p.encode(res))
        self.stats.inc("commands")

    # --- uplink --------------------------------------------------------------------------
    def _publish(self, gw_id: str, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Publish on the gateway's session if it is up; False when it is not (or is closing).

        A link that broke under a write (the broker was SIGKILLed, say) is still ``connected``
        until asyncio delivers ``connection_lost`` on a later turn of the loop; that delivery
        reconnects it. Until then the write fails here, for this gateway only: it must never
        escape into the tick that drives every other gateway."""
        s = self.sessions.get(gw_id)
        if s is None or not s.connected:
            return False
        try:
            s.publish(topic, payload, qos=self.settings.uplink_qos, retain=retain)
        except MqttError as exc:
            self._send_failed(gw_id, exc)
            return False
        return True

    def _send_failed(self, gw_id: str, exc: MqttError) -> None:
        self.stats.inc("send_failed")
        log.debug("gateway %s: cannot send (link going down): %s", gw_id, exc)

    def _watch_alarm(self, g: SimGateway, now: float) -> None:
        """Hang up on a link where an alarm waits unacked for ``alarm_link_timeout_s``, doubled
        per hang-up (protocols/failover.py alarm_link_timeout): a half-open link, as the agent
        judges it (docs/protocol.md §1.1)."""
        waited = g.alarm_unacked_for(now)
        if not waited:
            self._alarm_sent.discard(g.id)
            return
        limit = alarm_link_timeout(self.settings.alarm_link_timeout_s, g.alarm_hangups)
        s = self.sessions.get(g.id)
        if waited >= limit and s is not None and s.connected:
            g.alarm_hangups += 1
            self.stats.inc("alarm_hangups")
            s.hang_up(f"an alarm unacked for {waited:.1f} s on this link (limit {limit:.0f} s): presumed dead")

    def _send_due(self, g: SimGateway, now: float) -> None:
        if g.pending:
            self._with_pending.add(g.id)
        s = self.sessions.get(g.id)
        if s is None or not s.connected:
            return
        for pend in g.due(now):
            if not self._publish(g.id, str(p.Topic.of(g.id, pend.channel)), pend.payload):
                return  # the link is going down: all that is pending goes out again after the reconnect
            if pend.alarm and not pend.link_sent:
                pend.link_sent = now
                self._alarm_sent.add(g.id)
            resend = pend.attempts > 1
            self.stats.inc(f"sent:{pend.channel.value}{':resend' if resend else ''}")
            self.observer.sent(g, pend, resend)

    def _keep(self, g: SimGateway, pend: Pending) -> None:
        if self.store is not None:
            self.store.put(g.id, pend)
            self.store.set_seq(g.id, g.seq)
            if pend.alarm:
                self.store.flush()  # an alarm is durable before it is sent
        if pend.alarm and g.id in self._reconnect_at:
            self._schedule_reconnect(g.id, alarm_reconnect_delay(self.rng))  # cut a long wait short
        self._send_due(g, time.monotonic())

    def trigger(
        self,
        gw_id: str,
        kind: p.EventKind,
        state: p.EventState = p.EventState.ALARM,
        sensor: str | None = None,
        values: Values | None = None,
    ) -> Pending:
        """The gateway raises (or restores) an event now; sent at once when the link is up."""
        g = self.gateways[gw_id]
        pend = g.event(kind, state, sensor, self.now_ms(), values)
        self.stats.inc(f"events:{kind.value}:{state.value}")
        self._keep(g, pend)
        return pend

    def set_reading(self, gw_id: str, sensor: str, metric: str, value: float) -> None:
        self.gateways[gw_id].readings[f"{sensor}/{metric}"] = value

    def send_telemetry(self, gw_id: str) -> None:
        g = self.gateways[gw_id]
        self._keep(g, g.telemetry(self.now_ms()))

    def add_backlog(self, gw_id: str, count: int, interval_s: float) -> None:
        """Queue ``count`` old telemetry batches (an outage's backlog) on a gateway."""
        g = self.gateways[gw_id]
        for pend in g.backlog(count, interval_s, self.now_ms()):
            if self.store is not None:
                self.store.put(g.id, pend)
        if self.store is not None:
            self.store.set_seq(g.id, g.seq)
        self._send_due(g, time.monotonic())

    def heartbeat(self, gw_id: str) -> None:
        g = self.gateways[gw_id]
        s = self.sessions.get(gw_id)
        if s is None or not s.connected:
            return
        status = g.status(p.GatewayState.ONLINE, "heartbeat", self.now_ms(), self._hb)
        if self._publish(gw_id, str(p.Topic.of(gw_id, p.Channel.STATUS)), status, retain=self.settings.retain_status):
            self.stats.inc("heartbeats")

    def link_down(self, gw_id: str) -> None:
        """Cut the gateway's link without DISCONNECT (broker publishes its Last-Will); it stays down."""
        self.down.add(gw_id)
        s = self.sessions.pop(gw_id, None)
        self.server_of.pop(gw_id, None)
        if s is not None:
            s.abort()
            self.observer.link(self.gateways[gw_id], False)
            self.stats.inc("links_cut")

    def link_up(self, gw_id: str) -> None:
        """Let the gateway reconnect (after a short random delay, like a rebooting router);
        a gateway without power stays down until :meth:`power_on`."""
        if gw_id in self.dark:
            return
        self.down.discard(gw_id)
        if gw_id not in self.sessions:
            self._schedule_reconnect(gw_id)

    def power_off(self, gw_id: str) -> None:
        """The gateway loses its supply (no UPS HAT, or its cell ran empty) and goes dark: its
        session drops without DISCONNECT (the broker publishes its Last-Will) and until
        :meth:`power_on` it records and sends nothing. What it had stored stays pending."""
        self.dark.add(gw_id)
        self.link_down(gw_id)
        self.stats.inc("powered_off")

    def power_on(self, gw_id: str) -> None:
        """Power is back: the gateway boots, reconnects and resends what it had stored."""
        self.dark.discard(gw_id)
        self.link_up(gw_id)

    # --- the loop ------------------------------------------------------------------------
    def tick(self, now: float) -> list[str]:
        """Run everything due at ``now`` (monotonic); returns gateways to reconnect."""
        reconnect: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, what, gw_id = heapq.heappop(heap)
            if what == HEARTBEAT:
                self.heartbeat(gw_id)
                self._at(now + self.settings.heartbeat_s, HEARTBEAT, gw_id)
            elif what == TELEMETRY:
                if gw_id not in self.dark:
                    self.send_telemetry(gw_id)
                self._at(now + self.settings.telemetry_s, TELEMETRY, gw_id)
            elif self._reconnect_at.get(gw_id) == when:  # not replaced by an earlier one
                del self._reconnect_at[gw_id]
                reconnect.append(gw_id)
        for gw_id in list(self._with_pending):
            g = self.gateways[gw_id]
            if g.pending:
                if g.wake_at <= now:
                    self._send_due(g, now)
            else:
                self._with_pending.discard(gw_id)
        for gw_id in list(self._alarm_sent):  # few: gateways with an alarm unacked on their link
            self._watch_alarm(self.gateways[gw_id], now)
        if now >= self._next_keepalive_scan:
            # keep-alive needs attention only every few seconds, not every tick
            self._next_keepalive_scan = now + self.settings.keepalive / 8
            for gw_id, s in list(self.sessions.items()):
                try:
                    s.tick(now)
                except MqttError as exc:
                    self._send_failed(gw_id, exc)
        if self.store is not None:
            self.store.flush()
        return reconnect

    async def run(self, until: asyncio.Event | None = None) -> None:
        stop = until or asyncio.Event()
        while not stop.is_set():
            for gw_id in self.tick(time.monotonic()):
                asyncio.get_running_loop().create_task(self._reconnect(gw_id))
            try:
                await asyncio.wait_for(stop.wait(), self.settings.tick_s)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Clean shutdown: retained ``offline/shutdown`` status, DISCONNECT, state flushed."""
        self._stopping = True
        for gw_id, s in list(self.sessions.items()):
            if s.connected:
                g = self.gateways[gw_id]
                s.publish(
                    str(p.Topic.of(gw_id, p.Channel.STATUS)),
                    g.status(p.GatewayState.OFFLINE, "shutdown", self.now_ms(), self._hb),
                    retain=self.settings.retain_status,
                    qos=self.settings.uplink_qos,
                )
            s.disconnect()
        self.sessions.clear()
        self.server_of.clear()
        await asyncio.sleep(0)  # let the transports flush their DISCONNECT
        if self.store is not None:
            self.store.close()

    @property
    def connected(self) -> int:
        return sum(1 for s in self.sessions.values() if s.connected)

    def away(self, now: float | None = None) -> dict[str, int]:
        """Where the gateways without a link are (cut on purpose ones not counted): a connect
        in flight, or the next try due within 2 s, 2-10 s, or later (a long backoff)."""
        now = time.monotonic() if now is None else now
        out = {"connecting": 0, "next<=2s": 0, "next<=10s": 0, "next>10s": 0}
        for gw_id in self.gateways:
            if gw_id in self.sessions or gw_id in self.down:
                continue
            when = self._reconnect_at.get(gw_id)
            if when is None:
                out["connecting"] += 1
            else:
                wait = when - now
                out["next<=2s" if wait <= 2 else "next<=10s" if wait <= 10 else "next>10s"] += 1
        return out
