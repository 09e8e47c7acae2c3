"""Prometheus metrics of the alarm engine, on the hub process's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


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
        self.unconfigured = Counter(
            "safehome_notifications_unconfigured",
            "Notifications dead-lettered because their channel is not configured",
            ["channel"],
            registry=r,
        )
