"""Fleet settings, counters, observer hooks and credentials: the plain parts of a fleet."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import protocols as p
from firmware_sim.fleet.gateway import GatewaySpec, Pending, SensorSpec, SimGateway
from protocols.failover import ALARM_LINK_TIMEOUT_S, FAILOVER_SPREAD_S, Address, parse_servers


class FleetSettings(BaseSettings):
    """Settings of one fleet process (``SAFEHOME_SIM_*`` env, or CLI options)."""

    model_config = SettingsConfigDict(env_prefix="SAFEHOME_SIM_")

    host: str = "127.0.0.1"
    port: int = 1883
    #: every node of a clustered broker, host[:port]; each gateway fails over between them as
    #: the edge agent does (protocols/failover.py). Empty: the one broker host:port
    servers: list[str] = []
    failover_spread_s: float = Field(default=FAILOVER_SPREAD_S, ge=0, le=60)
    #: QoS of each gateway's downlink subscription, as the edge agent's ``mqtt.downlink_qos``:
    #: 0 on a NATS cluster (docs/broker.md section 6: 10,000 homes connected in 105 s, against
    #: 400 gateways left out after 10 min at QoS 1)
    downlink_qos: int = Field(default=1, ge=0, le=1)
    #: publish status (birth, heartbeat, shutdown) and the Last-Will retained, as the edge
    #: agent's ``mqtt.retain_status``: False on a NATS cluster
    retain_status: bool = True
    #: QoS of every uplink publish (and the Last-Will), as the edge agent's ``mqtt.uplink_qos``:
    #: 0 on a NATS cluster
    uplink_qos: int = Field(default=1, ge=0, le=1)
    heartbeat_s: float = 30.0
    telemetry_s: float = 60.0
    resend_s: float = 10.0
    resend_max_s: float = 120.0
    window: int = 16
    keepalive: int = 60
    #: an alarm unacked on a link this long: hang up and reconnect (the agent's rule, doubling)
    alarm_link_timeout_s: float = ALARM_LINK_TIMEOUT_S
    clean_session: bool = False
    connect_concurrency: int = 200
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    tick_s: float = 0.1
    seed: int = 1
    state_path: Path | None = None

    @model_validator(mode="after")
    def _check_servers(self) -> FleetSettings:
        if self.servers:
            try:
                parse_servers(self.servers, self.port)
            except ValueError as exc:
                raise ValueError(f"servers{'' if str(exc).startswith('[') else ': '}{exc}") from None
        return self

    @property
    def addresses(self) -> tuple[Address, ...]:
        return parse_servers(self.servers, self.port) if self.servers else (Address(self.host, self.port),)


@dataclass
class FleetStats:
    counts: Counter[str] = field(default_factory=Counter)

    def inc(self, key: str, n: int = 1) -> None:
        self.counts[key] += n


class FleetObserver:
    """Hooks for views and benchmarks; all no-ops by default."""

    def sent(self, gw: SimGateway, pend: Pending, resend: bool) -> None: ...
    def stored(self, gw: SimGateway, ids: set[str]) -> None: ...
    def home_told(self, gw: SimGateway, item: p.AckItem) -> None: ...
    def link(self, gw: SimGateway, up: bool) -> None: ...


Credentials = Callable[[str], tuple[str | None, str | None]]


def username_only(gw: str) -> tuple[str | None, str | None]:
    return gw, None


def specs_from_registry(reg: object, limit: int | None = None) -> list[GatewaySpec]:
    """Gateway specs from a :class:`~firmware_sim.registry.Registry` (first ``limit`` gateways)."""
    from firmware_sim.registry.model import Registry

    assert isinstance(reg, Registry)
    homes = {h.id: h for h in reg.homes}
    by_gw: dict[str, list[SensorSpec]] = {}
    for s in reg.sensors:
        by_gw.setdefault(s.gateway, []).append(SensorSpec(s.id, s.model, s.kind))
    gws = reg.gateways[:limit] if limit else reg.gateways
    return [GatewaySpec(g.id, tuple(by_gw.get(g.id, ())), g.home, homes[g.home].workstation) for g in gws]
