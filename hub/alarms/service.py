"""The alarm path of one hub worker, and the service that runs it (wired in
``hub/runner.py``, ``build_hub``). One smoke event, top to bottom:

1. ``IngestService`` (``hub/ingest/service.py``) stores it and, in that transaction, calls
   ``AlarmSink.decide_in_transaction`` (``hub/alarms/sink.py``) →
2. ``AlarmEngine.decide`` (``hub/alarms/engine/decide.py``, the one decision function):
   rules → routing → timers → ``enqueue`` (``hub/notify/enqueue.py``), the first
   notifications claimed through ``Dispatcher.handover`` (``hub/notify/dispatch.py``);
3. after the commit, ``AlarmEngine.after_commit`` → ``Dispatcher.committed`` hands them to
   the channels' ``OutboxWorker``s, which send them; then ``AlarmSink.events_stored`` sees
   the event with ``decided`` set. Not decided there (trouble, a lost race): the sink's
   inbox → ``AlarmEngine.handle`` (or ``handle_batch``) → ``decide``; after a crash, or
   told while the service was not running: ``Reconciler.reconcile``
   (``hub/alarms/reconciler.py``) → ``AlarmSink.handle_batch`` → ``decide``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms.analogue import AnalogueWatch
from hub.alarms.clock import Clock, SystemClock
from hub.alarms.engine.actions import mark_notified
from hub.alarms.engine.decide import AlarmEngine
from hub.alarms.engine.storms import StormDesk
from hub.alarms.engine.timers import TimerWorker
from hub.alarms.escalation import DEFAULT_ESCALATION
from hub.alarms.metrics import AlarmMetrics
from hub.alarms.notifier import WebhookDirectory, channels
from hub.alarms.reconciler import Reconciler
from hub.alarms.settings import AlarmSettings
from hub.alarms.sink import AlarmSink
from hub.notify.channel import RetryPolicy
from hub.notify.console import ConsoleBus
from hub.notify.dispatch import Dispatcher
from hub.notify.home import AckPublisher
from hub.notify.outbox import OutboxWorker
from hub.sealing import SecretBox, dev_box


class AlarmService:
    """Start/stop of the alarm engine of one hub worker: its sink (``self.sink``, for
    ``hub.sinks``), timers, re-check, mass-event check and notification dispatcher."""

    def __init__(
        self,
        settings: AlarmSettings,
        sessions: sessionmaker[Session],
        worker_id: str,
        clock: Clock | None = None,
        publisher: AckPublisher | None = None,
        bus: ConsoleBus | None = None,
        metrics: AlarmMetrics | None = None,
        secret_box: SecretBox | None = None,
        deliver: bool = True,
    ) -> None:
        """``deliver``: run the outbox workers here (see ``AlarmSettings.deliver``)."""
        self.settings = settings
        self.sessions = sessions
        self.worker_id = worker_id
        self.clock = clock or SystemClock()
        self.bus = bus or ConsoleBus()
        self.publisher = publisher
        self.metrics = metrics or AlarmMetrics()
        self.http = httpx.AsyncClient(timeout=settings.send_timeout_s)
        #: each webhook's secret (opened with the hub's [hub.secrets] key; tests: the dev key)
        self.webhooks = WebhookDirectory(sessions, secret_box or dev_box())
        self.dispatcher = Dispatcher(
            sessions,
            channels(
                settings,
                self.http,
                self.bus,
                self.webhooks,
                publisher,
                on_refused=lambda rule: self.metrics.webhook_refused.labels(rule).inc(),
            ),
            worker_id,
            self.clock.now,
            self.metrics,
            RetryPolicy(settings.retry_max_attempts, settings.retry_base_s, settings.retry_max_s),
            lease_s=settings.outbox_lease_s,
            send_timeout_s=settings.send_timeout_s,
            on_delivered=mark_notified,
            deliver=deliver,
        )
        self.engine = AlarmEngine(
            sessions,
            self.clock,
            escalation=settings.escalation_policy() or DEFAULT_ESCALATION,
            default_district=settings.default_district,
            dispatcher=self.dispatcher,
            storms=StormDesk(settings.storm.policy()),
        )
        self.timers = TimerWorker(
            sessions,
            self.clock,
            worker_id,
            default_district=settings.default_district,
            dispatcher=self.dispatcher,
            metrics=self.metrics,
        )
        self.watch = AnalogueWatch(self.engine, sessions, self.metrics)
        self.sink = AlarmSink(self.engine, self.metrics, self.watch, settings.batch_max)
        self.reconciler = Reconciler(
            settings, sessions, self.clock, self.engine, self.sink, self.watch, self.dispatcher
        )
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def outboxes(self) -> list[OutboxWorker]:
        return self.dispatcher.workers

    def channel_health(self) -> tuple[bool, str]:
        return self.dispatcher.health()

    def reconcile(self) -> int:
        return self.reconciler.reconcile()

    async def start(self) -> None:
        await asyncio.to_thread(self.reconciler.reconcile)
        await asyncio.to_thread(self.watch.refresh)
        await self.dispatcher.start(self.settings.outbox_idle_s)
        self.sink.running = self.watch.running = True
        self._tasks = [
            asyncio.create_task(self.sink.run(), name="alarm-signals"),
            asyncio.create_task(self.timers.run(self.settings.timer_tick_s), name="alarm-timers"),
            asyncio.create_task(self.reconciler.run(self._stopping), name="alarm-reconcile"),
            asyncio.create_task(self.reconciler.run_storms(self._stopping), name="alarm-storms"),
        ]

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let every loop finish the work in hand (database work runs in threads that a
        cancel would not stop), then cancel what is still waiting on the network."""
        self._stopping.set()
        self.sink.stopping = True
        for t in self._tasks:  # idle on the (in-memory) inbox: nothing in hand, stop now
            if t.get_name() == "alarm-signals" and not self.sink.busy:
                t.cancel()
        self.timers.stop()
        tasks = self._tasks + self.dispatcher.stop()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        self.sink.running = self.watch.running = False  # from now on: events are left to the re-check
        await self.http.aclose()
        close = getattr(self.publisher, "close", None)
        if close is not None:
            await close()
