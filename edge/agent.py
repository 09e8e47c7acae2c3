"""The gateway agent: wires devices, buffer, delivery, downlink, siren and health together.

Each concern is a loop in one TaskGroup: sensor polling, telemetry, flush, link (with its
receiver / sender / heartbeat while connected), siren, status file and watchdog.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiomqtt
from gpiozero import Factory, GPIOZeroError

from devices import registry
from devices.analog import AnalogSource, SettableSource
from devices.capabilities import AnalogLevel, Battery
from devices.errors import DefinitionError, DeviceError
from devices.pins import make_pin_factory
from devices.runtime import AnalogFactory, Change, OutputRuntime, SensorRuntime
from devices.wiring import check_wiring
from edge import commands, session, uplink
from edge.clock import Clock, SyncWatch, make_probe
from edge.downlink import RejectCounter
from edge.errors import StoreError
from edge.health import cpu_temp_c, write_state
from edge.link import tls_context
from edge.outbox import Outbox
from edge.runtime import Runtime
from edge.sdnotify import Notifier, watchdog_interval_s
from edge.settings import EdgeSettings
from edge.siren import CommandVoicePrompt, SirenPolicy, VoicePrompt, drive
from edge.store import LANE_ALARM, Store
from protocols import (
    Channel,
    ConfigRefusal,
    Event,
    EventKind,
    GatewayState,
    ProtocolError,
    decode,
    new_event_id,
)

log = logging.getLogger(__name__)
FW = "safehome-edge/0.1.0"
#: the poll loop must have run this recently for the watchdog to be fed
HEALTHY_POLL_S = 5.0
#: store meta key: latched conditions raised and not yet restored, [[sensor, kind], …]
LATCHED = "latched"
#: while the buffer refuses writes, a write is tried this often to see it recover
BUFFER_RETRY_S = 30.0


class _Stopping(Exception):
    pass


class Agent:
    def __init__(
        self,
        settings: EdgeSettings,
        *,
        factory: Factory | None = None,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        voice: VoicePrompt | None = None,
        settings_loader: Callable[[], EdgeSettings] | None = None,
    ) -> None:
        self.s = settings
        self.gw = settings.gateway_id
        self.factory = factory or make_pin_factory(settings.pin_factory)
        self.clock = clock or Clock(make_probe(settings.time_sync))
        self.notifier = notifier or Notifier()
        self.voice: VoicePrompt = voice or CommandVoicePrompt(settings.voice_prompt_cmd)
        self.settings_loader = settings_loader
        self.store = Store(settings.db_path, settings.buffer_max_telemetry)
        self.outbox = Outbox(
            self.store,
            window=settings.inflight_window,
            newest_first=settings.backlog_order == "newest_first",
            ack_timeout_s=settings.ack_timeout_s,
            resend_max_s=settings.resend_max_s,
        )
        self.siren = SirenPolicy(
            timeout_s=settings.siren_timeout_s, help_s=settings.help_pattern_s, enabled=settings.siren_enabled
        )
        self.heartbeat_s = settings.heartbeat_s
        self.telemetry_s = settings.telemetry_s
        self.rejects = RejectCounter()
        self.downlink = commands.Downlink(self)
        self.link = session.Link(
            gw=self.gw,
            settings=lambda: self.s,
            outbox=self.outbox,
            status=self.status_payload,
            heartbeat_s=lambda: self.heartbeat_s,
            on_downlink=self.downlink.handle,
            count_reject=self.rejects.count,
        )
        self.link_up = self.link.up
        self.analog: dict[str, SettableSource] = {}
        self.sensors: list[SensorRuntime] = []
        self.outputs: dict[str, OutputRuntime] = {}
        self.recorded_hooks: list[Callable[[Event], None]] = []
        self.last_ack_ms: int | None = None
        self.last_poll = time.monotonic()
        self.started = time.monotonic()
        self.config_revision: int | None = None
        self.config_error: ConfigRefusal | None = None  #: the newest refused revision, reported
        self.watchdog_skipped = 0
        self.read_errors = 0
        tls_context(settings)  # a missing CA/cert file is a configuration error: fail at start
        self._stop = asyncio.Event()
        self._open_devices()
        commands.restore_config(self)
        #: (sensor, kind) of latched conditions raised and not restored, kept on disk: after
        #: a restart (a power cut that emptied the UPS) inputs start clear, and a trouble that
        #: ended while the gateway was dark would otherwise never be restored at the hub
        self.latched: set[tuple[str, str]] = {(str(a), str(b)) for a, b in self.store.get_meta(LATCHED) or []}
        self._after_boot: set[tuple[str, str]] | None = set(self.latched)  #: to check once settled
        self._raised_since_boot: set[tuple[str, str]] = set()
        self._latched_unsaved = False
        self.buffer_failed = False  #: the `buffer_failed` trouble is raised
        self.buffer_retry_s = BUFFER_RETRY_S
        self._buffer_tried = 0.0

    # --- devices -------------------------------------------------------------------------

    def _analog_for(self, sensor_id: str) -> AnalogFactory | None:
        if self.s.pin_factory != "mock":
            return None  # real MCP3008 over SPI

        def make(cap: AnalogLevel | Battery) -> AnalogSource:
            if sensor_id in self.analog:
                raise DefinitionError(f"sensor {sensor_id!r}: the mock ADC is one channel per sensor")
            # a simulated battery starts charged; a gas level starts in clean air
            start = cap.full_v / cap.full_scale if isinstance(cap, Battery) else 0.0
            src = self.analog[sensor_id] = SettableSource(start)
            return src

        return make

    def _open_devices(self) -> None:
        try:
            # the whole wiring first: a clash names both devices, and no pin is half-opened
            check_wiring(self.s.sensors + self.s.outputs)
            for d in self.s.sensors:
                self.sensors.append(
                    SensorRuntime(
                        d.id, registry.get(d.model), self.factory, d.params, analog=self._analog_for(d.id)
                    )
                )
            for d in self.s.outputs:
                out = OutputRuntime(d.id, registry.get(d.model), self.factory, d.params)
                self.outputs[out.role] = out
        except Exception:
            self.close()
            raise

    @property
    def client(self) -> aiomqtt.Client | None:
        """The MQTT client while linked."""
        return self.link.client

    def apply_runtime(self, rt: Runtime) -> None:
        """The one place runtime settings (hub config, a settings reload) take effect."""
        self.heartbeat_s, self.telemetry_s = rt.heartbeat_s, rt.telemetry_s
        self.outbox.newest_first = rt.newest_first
        if rt.ack_timeout_s is not None:
            self.outbox.ack_timeout_s = rt.ack_timeout_s
        if rt.resend_max_s is not None:
            self.outbox.resend_max_s = rt.resend_max_s
        self.siren.enabled, self.siren.timeout_s = rt.siren_enabled, rt.siren_timeout_s

    def sensor(self, sensor_id: str) -> SensorRuntime:
        return next(s for s in self.sensors if s.sensor_id == sensor_id)

    # --- recording -----------------------------------------------------------------------

    def stamp(self) -> uplink.Stamp:
        seq = self.store.next_seq()
        ts, synced = self.clock.stamp()
        return uplink.Stamp(seq, new_event_id(), ts, synced)

    def record(self, change: Change) -> Event:
        """Turn a sensor change into an event, durably, before anything else happens."""
        if change.latched:
            self._latch((change.sensor, change.kind), change.alarm)
        ev = uplink.event_from_change(self.gw, change, self.stamp())
        entry = uplink.event_entry(ev)
        self.outbox.add_event(entry)  # fsynced here
        for hook in self.recorded_hooks:
            hook(ev)
        now = asyncio.get_running_loop().time()
        if entry.lane == LANE_ALARM:
            self.siren.alarm(ev.id, change.sensor, now)
        if change.cause == "cancel":
            self.siren.cancel_sensor(change.sensor)
        log.warning("recorded %s %s %s (seq %d, id %s)", ev.sensor, ev.kind, ev.state, ev.seq, ev.id)
        return ev

    def _latch(self, key: tuple[str, str], on: bool) -> None:
        # Saved before the event: a crash between the two at worst restores a condition
        # the hub never heard of (ignored there), never leaves one open forever.
        # A buffer that refuses writes must not cost the event itself: the set is kept in
        # memory and saved with the next change or flush.
        if on:
            self._raised_since_boot.add(key)
        new = self.latched | {key} if on else self.latched - {key}
        if new != self.latched:
            self.latched = new
            self._latched_unsaved = True
        self.save_latched()

    def save_latched(self) -> None:
        if not self._latched_unsaved:
            return
        try:
            self.store.put_meta(LATCHED, sorted(self.latched))
        except StoreError as exc:
            log.error("raised conditions not saved (kept in memory, retried): %s", exc)
            return
        self._latched_unsaved = False

    def restore_after_boot(self) -> int:
        """Restore what was raised before the restart and has not come back since; returns
        how many. Runs once, ``restore_after_boot_s`` after start (inputs have settled)."""
        pending, self._after_boot = self._after_boot or set(), None
        configured = {s.sensor_id for s in self.sensors}
        done = 0
        for sensor, kind in sorted(pending - self._raised_since_boot):
            if kind == EventKind.CLOCK_UNSYNCED.value and not self.clock.synced():
                continue  # still unsynchronised: still on
            if sensor and sensor not in configured:
                log.warning("condition %s of sensor %s raised before the restart; the sensor is gone", kind, sensor)
                self._latch((sensor, kind), False)
                continue
            self.record(Change(sensor, kind, False, "boot"))
            done += 1
        return done

    def check_buffer(self, now: float) -> None:
        """Raise ``buffer_failed`` (to the hub, and locally: siren chirp, LED) when the store
        starts refusing writes; restore it once a write succeeds again. Cheap: called from
        the poll loop. While failing, a write is retried every ``buffer_retry_s``."""
        if self.buffer_failed and now - self._buffer_tried >= self.buffer_retry_s:
            self._buffer_tried = now
            if self.store.check():  # the disk takes writes again: RAM goes to disk
                self.outbox.flush()
                self.save_latched()
        failing = not self.store.healthy
        if failing == self.buffer_failed:
            return
        self.buffer_failed, self._buffer_tried = failing, now
        self.siren.set_trouble(failing)
        if failing:
            log.error(
                "buffer %s refuses writes: events are kept in RAM and still sent, but a power "
                "cut now loses what is not acked (buffer_failed raised)",
                self.s.db_path,
            )
        else:
            log.warning("buffer %s takes writes again (buffer_failed restored)", self.s.db_path)
        self.record(Change("", EventKind.BUFFER_FAILED.value, failing, "store"))

    def record_telemetry(self) -> None:
        rows = uplink.readings_of({s.sensor_id: s.readings() for s in self.sensors})
        for batch in uplink.split(rows):  # each message within the payload limit
            self.outbox.add_telemetry(uplink.telemetry_entry(uplink.telemetry(self.gw, batch, self.stamp())))

    # --- health --------------------------------------------------------------------------

    def health(self) -> uplink.Health:
        oldest = self.outbox.oldest_created_ms()
        age = max(0.0, (self.clock.now_ms() - oldest) / 1000) if oldest is not None else None
        return uplink.Health(
            depth=self.outbox.depth(),
            alarms_pending=self.outbox.alarms_pending(),
            oldest_unacked_s=age,
            uptime_s=time.monotonic() - self.started,
            cpu_temp_c=cpu_temp_c(),
            config_revision=self.config_revision,
            sensors=tuple((s.sensor_id, s.model, not s.faulted) for s in self.sensors),
            config_error=self.config_error,
        )

    def status_payload(self, state: GatewayState, reason: str) -> bytes:
        ts, synced = self.clock.stamp()
        h = self.health() if state is GatewayState.ONLINE else None
        return (
            uplink.status(self.gw, state, reason, ts, synced, self.heartbeat_s, FW, h)
            .model_dump_json(exclude_none=True)
            .encode()
        )

    def healthy(self) -> bool:
        return time.monotonic() - self.last_poll < HEALTHY_POLL_S

    def state(self) -> dict[str, object]:
        h = self.health()
        return {
            "gateway_id": self.gw,
            "link": "up" if self.link_up.is_set() else "down",
            # the broker address of the link (one of mqtt.servers), None while down
            "broker": None if self.link.server is None else str(self.link.server),
            "buffer_depth": h.depth,
            "alarms_pending": h.alarms_pending,
            "oldest_unacked_s": h.oldest_unacked_s,
            "last_ack_ms": self.last_ack_ms,
            "in_flight": len(self.outbox.flights),
            "sent": self.outbox.sent,
            "resent": self.outbox.resent,
            "acked": self.outbox.acked,
            "evicted": self.store.evicted,
            "store_ok": self.store.healthy,
            "rejects": dict(self.rejects.by_reason),
            "config_revision": self.config_revision,
            "config_error": None if self.config_error is None else self.config_error.model_dump(),
            "siren": self.siren.pattern(asyncio.get_running_loop().time(), self.link_up.is_set()).value,
            "updated_ms": self.clock.now_ms(),
            "uptime_s": round(h.uptime_s, 1),
        }

    # --- loops ---------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        period = self.s.poll_ms / 1000
        while True:
            now = time.monotonic()
            for s in self.sensors:
                try:
                    changes = s.poll(now)
                except (DeviceError, GPIOZeroError, OSError) as exc:
                    self.read_errors += 1
                    if self.read_errors % 1000 == 1:  # log the first and then every 1000th
                        log.error("sensor %s read failed (%d so far): %s", s.sensor_id, self.read_errors, exc)
                    continue
                for change in changes:
                    self.record(change)
            if self._after_boot is not None and now - self.started >= self.s.restore_after_boot_s:
                self.restore_after_boot()
            self.check_buffer(now)
            self.last_poll = now
            await asyncio.sleep(period)

    async def _clock_loop(self) -> None:
        watch = SyncWatch(time.monotonic(), self.s.clock_grace_s)
        while True:
            await asyncio.sleep(min(60.0, self.s.clock_grace_s / 4 + 0.05))
            raised = watch.update(self.clock.synced(), time.monotonic())
            if raised is not None:
                self.record(Change("", "clock_unsynced", raised, "clock"))

    async def _telemetry_loop(self) -> None:
        while True:
            await asyncio.sleep(self.telemetry_s)
            self.record_telemetry()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.s.telemetry_flush_s)
            self.save_latched()
            evicted = self.outbox.flush()
            if evicted:
                log.warning("buffer full: evicted %d oldest telemetry rows", evicted)

    async def _state_loop(self) -> None:
        failing = False
        while True:
            try:
                write_state(self.s.state_path, self.state())
                failing = False
            except OSError as exc:  # only `safehome edge status` suffers: never stop the agent
                if not failing:
                    log.error("cannot write status file %s: %s", self.s.state_path, exc)
                failing = True
            await asyncio.sleep(2.0)

    async def _watchdog_loop(self) -> None:
        interval = watchdog_interval_s()
        self.notifier.notify("READY=1")
        while interval is not None and self.s.watchdog:
            if self.healthy():
                self.notifier.notify("WATCHDOG=1")
            else:
                self.watchdog_skipped += 1
                log.error(
                    "loop unhealthy (last poll %.1fs ago): not feeding the watchdog",
                    time.monotonic() - self.last_poll,
                )
            await asyncio.sleep(interval)

    async def _siren_loop(self) -> None:
        await drive(self.siren, self.outputs.get("siren"), self.outputs.get("led"), self.link_up)

    async def _link_loop(self) -> None:
        await session.run_link(self.link)

    # --- lifecycle -----------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def _resume_siren(self) -> None:
        """Alarms still unacked by the hub after a restart sound again."""
        now = asyncio.get_running_loop().time()
        for e in self.store.top(LANE_ALARM, 256):
            try:
                ev = decode(Channel.EVENT, e.payload, Event)
            except ProtocolError as exc:
                log.error("stored alarm %s is unreadable: %s", e.id, exc)
                continue
            self.siren.alarm(ev.id, ev.sensor or "", now)

    async def run(self) -> None:
        """Run until :meth:`stop` (or cancellation); then flush telemetry and close."""
        self._resume_siren()
        try:
            async with asyncio.TaskGroup() as tg:
                for coro in (
                    self._clock_loop(),
                    self._poll_loop(),
                    self._telemetry_loop(),
                    self._flush_loop(),
                    self._state_loop(),
                    self._watchdog_loop(),
                    self._siren_loop(),
                    self._link_loop(),
                ):
                    tg.create_task(coro)
                await self._stop.wait()
                raise _Stopping
        except* _Stopping:
            pass
        finally:
            self.notifier.notify("STOPPING=1")
            self.save_latched()
            self.outbox.flush()
            self.close()

    def close(self) -> None:
        for s in self.sensors:
            s.close()
        for o in self.outputs.values():
            o.close()
        self.sensors, self.outputs = [], {}
        self.store.close()
