"""Agent settings: one object per process, from a TOML file plus ``SAFEHOME_EDGE_*`` env.

Nested fields use ``__`` in env names, e.g. ``SAFEHOME_EDGE_MQTT__HOST=hub.example``.
Precedence: explicit arguments > environment > TOML file > defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, StringConstraints, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from edge.errors import ConfigError
from protocols.failover import ALARM_LINK_TIMEOUT_S, FAILOVER_SPREAD_S, Address, parse_servers

Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Scalar = str | int | float | bool | None
DEFAULT_SECRETS = frozenset({"", "changeme", "password", "secret", "safehome"})


class MqttSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535, description="Also the port of a servers entry without one")
    servers: list[str] = Field(
        default=[],
        description=(
            "Every node of a clustered broker, host[:port] ([v6]:port); the agent fails over "
            "between them (docs/edge.md). Empty: the one broker host:port"
        ),
    )
    username: str | None = Field(default=None, description="Defaults to the gateway id")
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    alarm_link_timeout_s: float = Field(
        default=ALARM_LINK_TIMEOUT_S,
        ge=1,
        le=600,
        description=(
            "An alarm published on a link and not acked within this is taken as a dead link: the agent "
            "hangs up and tries the next broker address at once, instead of waiting for the keep-alive "
            "(1.5 x keepalive_s) to find a half-open link; doubled after each such hang-up until an "
            "alarm is acked (docs/edge.md)"
        ),
    )
    connect_timeout_s: float = Field(default=10.0, gt=0)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    failover_spread_s: float = Field(
        default=FAILOVER_SPREAD_S,
        ge=0,
        le=60,
        description="Before the next address of a round: a uniform random wait up to this (no backoff)",
    )
    downlink_qos: int = Field(
        default=1,
        ge=0,
        le=1,
        description=(
            "QoS of the subscription to the gateway's downlink (acks, config, commands). 1: the broker "
            "keeps them while the gateway is away. 0 on a NATS cluster, where each QoS 1 subscription is "
            "a replicated JetStream consumer and 10,000 of them did not connect (docs/broker.md section 6)"
        ),
    )
    uplink_qos: int = Field(
        default=1,
        ge=0,
        le=1,
        description=(
            "QoS of every publish of the gateway (events, telemetry, status, results) and of its "
            "Last-Will. 0 on a NATS cluster, where each QoS 1 publish is a replicated JetStream write "
            "(docs/broker.md, \"Logins after a node dies\"); the hub's ack covers every message either way"
        ),
    )
    retain_status: bool = Field(
        default=True,
        description=(
            "Publish the status (and the Last-Will) retained. False on a NATS cluster: each retained "
            "publish is a replicated JetStream write, and the hub, reading natively, never gets one replayed"
        ),
    )

    @model_validator(mode="after")
    def _check_servers(self) -> MqttSettings:
        if self.servers and "host" in self.model_fields_set:
            raise ValueError(
                f"give either servers ({len(self.servers)} addresses) or host ({self.host!r}), not both"
            )
        if self.servers:
            try:
                parse_servers(self.servers, self.port)
            except ValueError as exc:
                where = "servers" if str(exc).startswith("[") else "servers: "
                raise ValueError(f"{where}{exc}") from None
        return self

    @property
    def addresses(self) -> tuple[Address, ...]:
        """The broker addresses, in the order given: ``servers``, else the one ``host:port``."""
        return parse_servers(self.servers, self.port) if self.servers else (Address(self.host, self.port),)


class DeviceEntry(BaseModel):
    """One installed sensor or output: its id, model and wiring overrides."""

    id: Id
    model: Id
    params: dict[Id, Scalar] = {}


class EdgeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SAFEHOME_EDGE_", env_nested_delimiter="__", extra="forbid", toml_file=None
    )

    gateway_id: Id
    environment: Literal["production", "development"] = "production"
    data_dir: Path = Path("/var/lib/safehome-edge")
    state_dir: Path = Field(
        default=Path("/run/safehome-edge"), description="tmpfs: live status for `safehome edge status`"
    )
    pin_factory: Literal["mock", "rpigpio", "lgpio"] = "mock"
    mqtt: MqttSettings = MqttSettings()
    sensors: list[DeviceEntry] = []
    outputs: list[DeviceEntry] = []

    poll_ms: int = Field(default=25, ge=5, le=1000)
    heartbeat_s: int = Field(default=30, ge=1, le=3600)
    telemetry_s: int = Field(default=60, ge=1, le=86_400)
    telemetry_flush_s: float = Field(
        default=600.0,
        gt=0,
        description="Unacked telemetry is written to the SD card this often (alarms: at once, fsynced)",
    )
    buffer_max_telemetry: int = Field(default=50_000, ge=10, description="Telemetry rows kept on disk")
    inflight_window: int = Field(default=16, ge=1, le=1000)
    ack_timeout_s: float = Field(default=10.0, gt=0, description="First resend after this")
    resend_max_s: float = Field(default=300.0, gt=0, description="Resend backoff cap")
    backlog_order: Literal["oldest_first", "newest_first"] = "oldest_first"

    siren_enabled: bool = True
    siren_timeout_s: int = Field(default=600, ge=0, description="0: sound until handled")
    help_pattern_s: float = Field(default=60.0, ge=0)
    voice_prompt_cmd: list[str] = Field(default=[], description="argv run with the prompt id appended")

    time_sync: Literal["adjtimex", "timedatectl", "assume_synced", "never"] = "adjtimex"
    clock_grace_s: float = Field(
        default=600.0, gt=0, description="Unsynchronised this long after start: clock_unsynced trouble"
    )
    watchdog: bool = True
    restore_after_boot_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description=(
            "After a restart, a condition raised before it (a trouble, an alarm contact) that "
            "has not come back within this time is restored; longer than any input's debounce"
        ),
    )

    @model_validator(mode="after")
    def _check(self) -> EdgeSettings:
        pw = self.mqtt.password.get_secret_value() if self.mqtt.password else None
        if self.environment == "production" and pw is not None and pw.lower() in DEFAULT_SECRETS:
            raise ValueError("mqtt.password is a default secret; set a real one (or environment=development)")
        ids = [d.id for d in self.sensors + self.outputs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"sensor/output ids must be unique within a gateway: {ids}")
        return self

    @property
    def db_path(self) -> Path:
        return self.data_dir / "buffer.sqlite3"

    @property
    def state_path(self) -> Path:
        return self.state_dir / "status.json"

    @property
    def mqtt_username(self) -> str:
        return self.mqtt.username or self.gateway_id

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(path: Path | None = None, **overrides: object) -> EdgeSettings:
    """Build the settings object (in ``main()``), translating errors to ConfigError."""
    if path is not None and not path.is_file():
        raise ConfigError(f"settings file {path} does not exist")

    class _FromFile(EdgeSettings):
        model_config = SettingsConfigDict(toml_file=path)

    try:
        return _FromFile(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        where = f" in {path}" if path else ""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ConfigError(f"invalid edge settings{where}: {problems}") from exc
    except (OSError, ValueError) as exc:  # unreadable file, TOML syntax error
        raise ConfigError(f"cannot read edge settings {path}: {exc}") from exc
