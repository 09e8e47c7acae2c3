"""The settings the agent changes while it runs: from the hub's retained Config, or from
the settings file on a ``reload_config`` command. :meth:`edge.agent.Agent.apply_runtime` is
the one place that applies them (to the heartbeat, telemetry period, outbox and siren).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.settings import EdgeSettings
from protocols import Config


@dataclass(frozen=True)
class Runtime:
    heartbeat_s: int
    telemetry_s: int
    newest_first: bool  #: backlog order: newest telemetry first after an outage
    siren_enabled: bool
    siren_timeout_s: int
    #: resend timing; None keeps the running values (the hub's Config does not carry them)
    ack_timeout_s: float | None = None
    resend_max_s: float | None = None

    @classmethod
    def of_settings(cls, s: EdgeSettings) -> Runtime:
        return cls(
            heartbeat_s=s.heartbeat_s,
            telemetry_s=s.telemetry_s,
            newest_first=s.backlog_order == "newest_first",
            siren_enabled=s.siren_enabled,
            siren_timeout_s=s.siren_timeout_s,
            ack_timeout_s=s.ack_timeout_s,
            resend_max_s=s.resend_max_s,
        )

    @classmethod
    def of_config(cls, c: Config) -> Runtime:
        return cls(
            heartbeat_s=c.heartbeat_s,
            telemetry_s=c.telemetry_s,
            newest_first=c.backlog_order == "newest_first",
            siren_enabled=c.siren_enabled,
            siren_timeout_s=c.siren_timeout_s,
        )
