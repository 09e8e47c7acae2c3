"""Prometheus metrics of one hub process, on a registry of its own (not the global one),
so that two hub workers in one test process do not share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
_BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class HubMetrics:
    """Every metric the hub exposes on ``/metrics``; one instance per process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry(auto_describe=True)
        self.messages_in = Counter(
            "safehome_messages_in", "Uplink messages received, by channel", ["type"], registry=r
        )
        self.rejects = Counter(
            "safehome_messages_rejected", "Uplink messages rejected, by reason", ["reason"], registry=r
        )
        self.events_stored = Counter(
            "safehome_events_stored",
            "Events stored (new) or recognised as duplicates",
            ["outcome"],
            registry=r,
        )
        self.readings_stored = Counter("safehome_readings_stored", "Telemetry readings written", registry=r)
        self.command_results = Counter(
            "safehome_command_results",
            "Gateways' command results: recorded on their command, or unmatched (unknown id, another gateway's, a repeat)",
            ["outcome"],
            registry=r,
        )
        self.acks_sent = Counter(
            "safehome_acks_sent", "Ack items published, by status", ["status"], registry=r
        )
        self.ingest_lag = Histogram(
            "safehome_ingest_lag_seconds",
            "Device time (NTP-synced messages only) to stored-and-acked, by channel",
            ["type"],
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.clock_suspect = Counter(
            "safehome_clock_suspect_messages",
            "Events and telemetry whose synced device time was far from the hub's (timed by the hub)",
            registry=r,
        )
        self.store_batch = Histogram(
            "safehome_store_batch_seconds",
            "Time to store one batch, by kind (events+state / telemetry)",
            ["kind"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "safehome_store_errors", "Batches that failed to store (not acked, retried)", ["kind"], registry=r
        )
        self.broker_shed = Counter(
            "safehome_broker_shed_messages",
            "Uplink messages the broker's rate limit refused (not acked: the gateways resend them)",
            registry=r,
        )
        self.queue_depth = Gauge(
            "safehome_ingest_queue_depth", "Messages received, not yet stored", registry=r
        )
        self.gateways_online = Gauge(
            "safehome_gateways_online", "Gateways whose last status is online", registry=r
        )
        self.conditions = Counter(
            "safehome_conditions", "Supervisory conditions opened / restored", ["kind", "state"], registry=r
        )
        self.broker_dropped = Gauge(
            "safehome_broker_dropped_messages", "Mosquitto $SYS/broker/publish/messages/dropped", registry=r
        )
        self.broker_connected = Gauge(
            "safehome_broker_clients_connected", "Mosquitto $SYS/broker/clients/connected", registry=r
        )
        self.sink_errors = Counter(
            "safehome_sink_errors", "Event sink calls that raised", ["sink"], registry=r
        )
        self.lane_up = Gauge(
            "safehome_ingest_lane_up", "1 while the ingest lane is connected and subscribed", ["lane"], registry=r
        )
        self.lane_lost = Counter(
            "safehome_ingest_lane_lost",
            "Times an ingest lane lost its broker connection (a node down, a slow consumer cut off)",
            ["lane"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
