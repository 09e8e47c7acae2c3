"""Prometheus metrics of the alarm engine, on the hub process's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class AlarmMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "safehome_alarm_decisions",
            "Signals turned into alarm decisions (open, repeat, restore, ignore…)",
            ["decision"],
            registry=r,
        )
        self.timers = Counter(
            "safehome_alarm_timers",
            "Escalation timers handled by this worker (fired / skipped)",
            ["outcome"],
            registry=r,
        )
        self.deliveries = Counter(
            "safehome_notification_deliveries",
            "Delivery attempts by channel and resulting status "
            "(delivered, pending = will retry, dead = dead-lettered)",
            ["channel", "status"],
            registry=r,
        )
        self.webhook_refused = Counter(
            "safehome_webhook_refused",
            "Webhook deliveries refused before sending because the URL's host resolved to an "
            "address the target rules refuse (loopback, link_local, not_global, private, "
            "this_host); each is dead at once",
            ["rule"],
            registry=r,
        )
        self.failsafe = Counter(
            "safehome_alarm_failsafe",
            "Signals whose decision failed and that were answered by the fail-safe path "
            "(decision failsafe: an alarm to the 24-hour center, flag routing_failed; "
            "restore_failed: a restore not applied), by the step that failed",
            ["step", "decision"],
            registry=r,
        )
        self.undecided = Counter(
            "safehome_alarm_undecided",
            "Attempts that left a signal without any decision (the fail-safe alarm could not be "
            "stored either, e.g. the database was locked or away); each is retried",
            registry=r,
        )
        self.unconfigured = Counter(
            "safehome_notifications_unconfigured",
            "Notifications recorded as 'unconfigured' (never sent) because their channel is not "
            "configured on this hub (counted when settled by the re-check)",
            ["channel"],
            registry=r,
        )
        self.configured = Gauge(
            "safehome_notify_channel_configured",
            "1 when this hub worker runs the notification channel, 0 when it is not configured "
            "(e.g. sms/voice without a provider)",
            ["channel"],
            registry=r,
        )
