"""The hub's settings: one object per process, from a TOML file + ``SAFEHOME_HUB_*`` env.

Nested tables map to ``SAFEHOME_HUB_<TABLE>__<FIELD>`` (e.g. ``SAFEHOME_HUB_MQTT__HOST``).
Outside ``env = "dev"`` the hub refuses to start with a missing or well-known secret.
"""

from __future__ import annotations

import ipaddress
import math
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from argon2 import PasswordHasher
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from hub.alarms.settings import AlarmSettings
from hub.sealing import SealingError, SecretBox
from hub.settings_files import FileSettings, SettingsError, load_settings
from protocols.failover import parse_address, parse_servers

#: Secrets that ship in examples and docs; never acceptable in production.
DEFAULT_SECRETS = frozenset(
    {"", "hub", "changeme", "change-me", "password", "secret", "dev", "test", "mosquitto"}
)

#: The floor for every secret outside dev: at least this long, and at least MIN_SECRET_BITS
#: by a simple estimate (length * log2 of the number of distinct characters: "aaaa…" is 0
#: bits, "password12345678" 63, secrets.token_urlsafe(24) about 150).
MIN_SECRET_LENGTH = 16
MIN_SECRET_BITS = 64.0
GENERATE_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(24))'"

__all__ = ["HubSettings", "SettingsError", "load_hub_settings", "secret_weakness"]


def secret_bits(secret: str) -> float:
    distinct = len(set(secret))
    return len(secret) * math.log2(distinct) if distinct > 1 else 0.0


def secret_weakness(secret: str, min_length: int = MIN_SECRET_LENGTH) -> str | None:
    """Why ``secret`` is too weak to use outside development, else None."""
    if secret.strip().lower() in DEFAULT_SECRETS:
        return "a well-known default"
    if len(secret) < min_length:
        return f"too short ({len(secret)} characters, at least {min_length})"
    if secret_bits(secret) < MIN_SECRET_BITS:
        return f"too predictable (~{secret_bits(secret):.0f} bits, at least {MIN_SECRET_BITS:.0f})"
    return None


def is_loopback(host: str) -> bool:
    """True for a listen address that only this machine can reach ("" and 0.0.0.0 are all
    interfaces; a host name other than localhost may resolve anywhere)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


NATS_SCHEMES = ("nats", "tls")
NATS_PORT = 4222


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSettings(_Part):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str = "hub"
    password: SecretStr | None = None
    password_file: Path | None = Field(default=None, description="e.g. the broker's hub.password")
    tls: bool = False
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    keepalive: int = Field(default=30, ge=5)
    #: MQTT 3.1.1: aiomqtt over MQTT 5 measured ~3x slower here (docs/architecture.md, measured facts).
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    share_group: str = "hub"
    #: Clean session by default: Mosquitto 2.0.11 keeps handing an *offline* persistent
    #: member of a shared subscription its share (measured: half of the events waited for
    #: a stopped worker while the other one was up). With clean sessions a stopped worker
    #: takes nothing; what was in flight to it is resent by the gateways (app-level ack).
    #: A single-worker deployment may set false: the broker then queues while it restarts.
    clean_session: bool = True
    #: The ingest's acks. Default 1 on Mosquitto, 0 on NATS: there a QoS 1 publish is stored
    #: in the replicated $MQTT_msgs stream first, one at a time per connection (measured on a
    #: 3-node cluster: 140-1,100 acks/s, against 3,600-9,000 at QoS 0), and a lost ack only
    #: costs the gateway's resend (docs/hub.md, "On a NATS cluster").
    ack_qos: Literal[0, 1] = 1
    #: "nats": a NATS cluster (docs/broker.md). NATS's MQTT has no ``$share``: the ingest
    #: consumes natively from a queue group (hub/ingest/nats_source.py); downlink stays MQTT.
    backend: Literal["mosquitto", "nats"] = "mosquitto"
    servers: list[str] = Field(
        default_factory=list,
        description="MQTT listeners, host[:port] ([v6]:port; port: mqtt.port), tried in turn (a NATS cluster's nodes); replaces host",
    )
    nats_servers: list[str] = Field(
        default_factory=list, description="backend nats: the cluster's client URLs, nats://host:port (tls://host:port)"
    )

    @field_validator("nats_servers")
    @classmethod
    def _nats_urls(cls, urls: list[str]) -> list[str]:
        for i, url in enumerate(urls):
            scheme, sep, rest = url.partition("://")
            if not sep or scheme not in NATS_SCHEMES:
                raise ValueError(f"mqtt.nats_servers[{i}] = {url!r}: expected nats://host:port (or tls://host:port)")
            try:
                parse_address(rest, NATS_PORT)
            except ValueError as exc:
                raise ValueError(f"mqtt.nats_servers[{i}]: {exc}") from None
        return urls

    @model_validator(mode="after")
    def _backend(self) -> MqttSettings:
        if self.servers:
            if "host" in self.model_fields_set:
                raise ValueError("give either mqtt.servers or mqtt.host, not both")
            try:
                parse_servers(self.servers, self.port)
            except ValueError as exc:
                raise ValueError(f"mqtt.servers{'' if str(exc).startswith('[') else ': '}{exc}") from None
        if self.backend == "nats" and not self.nats_servers:
            raise ValueError('mqtt.backend = "nats" needs mqtt.nats_servers (e.g. ["nats://10.0.0.1:4222", …])')
        if self.backend == "nats" and "ack_qos" not in self.model_fields_set:
            self.ack_qos = 0
        if self.backend == "mosquitto":
            if self.nats_servers:
                raise ValueError('mqtt.nats_servers is only for mqtt.backend = "nats"')
            if len(self.servers) > 1:
                raise ValueError(
                    'mqtt.servers lists several brokers: only mqtt.backend = "nats" (a cluster) uses more than one'
                )
        return self

    def addresses(self) -> list[tuple[str, int]]:
        """The MQTT listeners to connect to, in order: ``servers``, else ``host:port``."""
        if not self.servers:
            return [(self.host, self.port)]
        return [(a.host, a.port) for a in parse_servers(self.servers, self.port)]

    def secret(self) -> str | None:
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            try:
                return self.password_file.read_text().strip()
            except OSError as exc:
                raise SettingsError(
                    f"cannot read mqtt.password_file {self.password_file}: {exc.strerror}"
                ) from exc
        return None


class DatabaseSettings(_Part):
    url: str = "sqlite:///hub.db"
    #: Apply Alembic migrations at start. With several PostgreSQL workers, run
    #: `safehome hub db upgrade` once instead and set this to false.
    migrate: bool = True


class HttpSettings(_Part):
    host: str = Field(
        default="127.0.0.1",
        description="outside dev, an address other than loopback needs tls_certfile and tls_keyfile",
    )
    port: int = Field(default=8080, ge=0, le=65535)
    enabled: bool = True
    tls_certfile: Path | None = Field(default=None, description="PEM certificate (chain); enables HTTPS")
    tls_keyfile: Path | None = Field(default=None, description="PEM private key of tls_certfile")
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="request bodies over this are refused with 413 before being read"
    )


    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSettings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("http.tls_certfile and http.tls_keyfile go together: set both or neither")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_certfile is not None


class SecretsSettings(_Part):
    """The key that encrypts secrets stored in the database (webhook signing secrets)."""

    key: SecretStr | None = Field(default=None, description="Fernet key(s), comma-separated; the first encrypts")
    key_file: Path | None = Field(default=None, description="file with Fernet key(s), one per line")

    def keys(self) -> list[str]:
        """The configured keys, newest first; [] when none is configured."""
        if self.key is not None:
            raw = self.key.get_secret_value().replace(",", "\n")
        elif self.key_file is not None:
            try:
                raw = self.key_file.read_text()
            except OSError as exc:
                raise SettingsError(f"cannot read secrets.key_file {self.key_file}: {exc.strerror}") from exc
        else:
            return []
        return [k.strip() for k in raw.splitlines() if k.strip()]


#: argon2id memory below which one pass is not enough (OWASP's equivalents: 46 MiB with
#: t=1, 19 MiB with t=2); 19 MiB is the floor.
ARGON2_ONE_PASS_KIB = 47_104


class AuthSettings(_Part):
    """Console users' tokens and password hashing (``[hub.auth]``; docs/api.md, Console users)."""

    access_ttl_s: int = Field(default=900, ge=60, le=3600, description="an access token lives this long (1 min - 1 h)")
    refresh_ttl_s: int = Field(
        default=12 * 3600, ge=900, le=24 * 3600, description="a refresh token (a session) lives this long (15 min - 24 h)"
    )
    argon2_time_cost: int = Field(default=3, ge=1, le=10, description="argon2id passes")
    argon2_memory_kib: int = Field(
        default=65_536, ge=19_456, le=1_048_576, description="argon2id memory per hash, KiB (19 MiB - 1 GiB)"
    )
    argon2_parallelism: int = Field(default=4, ge=1, le=16, description="argon2id lanes")

    @model_validator(mode="after")
    def _sane(self) -> AuthSettings:
        if self.refresh_ttl_s < self.access_ttl_s:
            raise ValueError("auth.refresh_ttl_s must not be shorter than auth.access_ttl_s")
        if self.argon2_memory_kib < ARGON2_ONE_PASS_KIB and self.argon2_time_cost < 2:
            raise ValueError(
                f"auth.argon2_time_cost must be at least 2 with argon2_memory_kib below {ARGON2_ONE_PASS_KIB} "
                "(OWASP: 46 MiB x 1 pass or 19 MiB x 2)"
            )
        return self

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.argon2_time_cost, memory_cost=self.argon2_memory_kib, parallelism=self.argon2_parallelism
        )


class IngestSettings(_Part):
    batch_max: int = Field(default=1000, ge=1, description="messages stored per transaction at most")
    reject_log_interval_s: float = Field(
        default=10.0, ge=0, description="one reject log line per reason per interval"
    )
    retry_delay_s: float = Field(default=1.0, gt=0, description="wait after a failed store before retrying")
    max_pending: int = Field(
        default=200_000,
        ge=1000,
        description=(
            "received, unstored messages held at most per lane; past it only life safety is "
            "taken in, past half of it a gateway holding gateway_pending gets nothing more in "
            "(shed messages are not acked: the gateway resends them)"
        ),
    )
    gateway_pending: int = Field(
        default=64,
        ge=1,
        description="under memory pressure, a gateway's share of the queue (4x the edge's in-flight window)",
    )
    gateway_batch_max: int = Field(
        default=16,
        ge=1,
        description=(
            "messages of one gateway per priority-lane batch at most (the edge's in-flight "
            "window): a flood is cut into pieces that interleave with every other home's"
        ),
    )
    flood_max_messages: int = Field(
        default=6000,
        ge=1,
        description="a gateway sending more than this per flood_window_s raises gateway_flooding",
    )
    flood_window_s: float = Field(default=60.0, gt=0, le=3600, description="see flood_max_messages")
    switch_interval_s: float = Field(
        default=0.0002,
        gt=0,
        le=0.005,
        description=(
            "the process's GIL switch interval (Python's default 5 ms): how long the receiver "
            "can wait for a busy storing thread at each syscall"
        ),
    )
    lanes: list[Literal["priority", "telemetry"]] = Field(
        default=["priority", "telemetry"],
        min_length=1,
        description=(
            "uplink lanes this worker consumes: 'priority' (event, status, result) and/or "
            "'telemetry'. A worker process of its own for the priority lane keeps alarms on a "
            "CPU of their own while another process drains a telemetry backlog (docs/hub.md)"
        ),
    )
    telemetry_linger_s: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="the telemetry processor waits this long for a fuller batch (never the alarm lane)",
    )
    state_flush_s: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="gateway/sensor last-seen and status are written this often (batched), not per message",
    )
    seen_write_every_s: float = Field(
        default=15.0,
        ge=0,
        le=30,
        description=(
            "a gateway's or sensor's traffic last-seen is written at most this often (status "
            "changes always); capped at half of supervision's sensor_grace_s and "
            "gateway_min_silence_s; 0: every flush"
        ),
    )


    @field_validator("lanes")
    @classmethod
    def _lanes_once(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"each lane at most once, got {v}")
        return v


class SupervisionSettings(_Part):
    tick_s: float = Field(default=1.0, gt=0)
    #: A silent gateway is reported within gateway_max_silence_s + tick_s (<= 60 s by default).
    gateway_max_silence_s: float = Field(default=55.0, gt=0)
    #: Also the database scan's cutoff: each tick reads the gateways silent for longer than
    #: this. Below the usual heartbeat (30 s) that would be most gateways on every tick.
    gateway_min_silence_s: float = Field(default=30.0, gt=0)
    heartbeat_misses: float = Field(default=2.0, ge=1)
    grace_s: float = Field(default=5.0, ge=0)
    offline_grace_s: float = Field(
        default=10.0, ge=0, description="Last-Will blips shorter than this raise nothing"
    )
    sensor_grace_s: float = Field(default=60.0, ge=0)
    #: Sensors are scanned in full (all registered sensors) this often.
    sensor_tick_s: float = Field(default=30.0, gt=0)
    default_heartbeat_s: int = Field(default=30, ge=1)
    clock_tolerance_s: float = Field(
        default=120.0,
        gt=0,
        description=(
            "a device clock that says it is synced but is this far from the hub's (seconds) "
            "opens the gateway's clock_suspect trouble; its messages are timed by the hub"
        ),
    )

    @model_validator(mode="after")
    def _order(self) -> SupervisionSettings:
        if self.gateway_min_silence_s > self.gateway_max_silence_s:
            raise ValueError("gateway_min_silence_s must not exceed gateway_max_silence_s")
        return self


class TimeseriesSettings(_Part):
    backend: Literal["sql", "influx"] = "sql"
    url: str | None = Field(
        default=None, description="sql: database URL (default: database.url); influx: server"
    )
    token: SecretStr | None = None
    org: str = "safehome"
    bucket: str = "safehome"
    #: influx backend: read readings back with Flux (InfluxDB) or through VictoriaMetrics'
    #: export API (a VictoriaMetrics server takes the InfluxDB writes but not Flux)
    query: Literal["flux", "victoria"] = "flux"
    #: sql backend: raw readings kept this long, then folded into hourly rollups
    retention_days: int = Field(default=30, ge=1)
    rollup_retention_days: int | None = Field(default=5 * 365, ge=1)
    retention_every_s: float = Field(default=3600.0, gt=0)


class HubSettings(FileSettings):
    model_config = SettingsConfigDict(env_prefix="SAFEHOME_HUB_", env_nested_delimiter="__", extra="forbid")

    env: Literal["dev", "test", "prod"] = "prod"
    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    database: DatabaseSettings = DatabaseSettings()
    mqtt: MqttSettings = MqttSettings()
    http: HttpSettings = HttpSettings()
    ingest: IngestSettings = IngestSettings()
    supervision: SupervisionSettings = SupervisionSettings()
    timeseries: TimeseriesSettings = TimeseriesSettings()
    secrets: SecretsSettings = SecretsSettings()
    auth: AuthSettings = AuthSettings()
    alarms: AlarmSettings = AlarmSettings()
    log_level: str = "INFO"

    def _secrets(self) -> Iterator[tuple[str, str, str | None]]:
        """(setting, env variable, value or None when unset) of every secret to check."""
        yield "mqtt.password / mqtt.password_file", "SAFEHOME_HUB_MQTT__PASSWORD_FILE", self.mqtt.secret()
        if self.timeseries.backend == "influx":
            t = self.timeseries.token
            yield "timeseries.token", "SAFEHOME_HUB_TIMESERIES__TOKEN", t.get_secret_value() if t else None
        for name in ("sms", "voice"):
            provider = getattr(self.alarms, name)
            for field in ("token", "password"):
                value = getattr(provider, field) if provider is not None else None
                if value is not None:
                    env = f"SAFEHOME_HUB_ALARMS__{name.upper()}__{field.upper()}"
                    yield f"alarms.{name}.{field}", env, value.get_secret_value()

    def check_secrets(self) -> None:
        """Refuse missing, default or weak secrets outside development, naming the setting."""
        if self.env == "dev":
            return
        for setting, env, value in self._secrets():
            if value is None:
                raise SettingsError(f'{setting} is missing: set it (or {env}), or env = "dev"')
            weak = secret_weakness(value)
            if weak is not None:
                raise SettingsError(f"{setting} is {weak}: refused outside dev; {GENERATE_HINT}")
        if not self.secrets.keys():
            raise SettingsError(
                "secrets.key_file (or SAFEHOME_HUB_SECRETS__KEY) is missing: the key that encrypts webhook "
                "secrets in the database; generate one with: safehome hub secrets keygen"
            )
        self.secret_box()  # a malformed or development key is refused here, at start

    def secret_box(self) -> SecretBox:
        """The box that seals secrets stored in the database; in dev without a key, the
        well-known development key (refused everywhere else)."""
        try:
            return SecretBox.from_keys(self.secrets.keys(), allow_dev=self.env == "dev")
        except SealingError as exc:
            raise SettingsError(f"secrets.key / secrets.key_file: {exc}") from exc

    def check_listeners(self) -> None:
        """Outside dev, refuse plain HTTP on an address other than loopback."""
        h = self.http
        if self.env != "dev" and h.enabled and not h.tls and not is_loopback(h.host):
            raise SettingsError(
                f"http.host = {h.host!r} is not loopback and http.tls_certfile / http.tls_keyfile are not "
                "set: refused outside dev (bearer tokens would cross the network in clear). Set both "
                "(SAFEHOME_HUB_HTTP__TLS_CERTFILE, SAFEHOME_HUB_HTTP__TLS_KEYFILE), or listen on "
                "127.0.0.1 behind a TLS reverse proxy (docs/hub.md)"
            )


def load_hub_settings(path: Path | None = None, **overrides: Any) -> HubSettings:
    """Settings from ``path`` (table ``[hub]`` or top level) < env < overrides; secrets checked."""
    settings = load_settings(HubSettings, path, "hub", **overrides)
    settings.check_secrets()
    settings.check_listeners()
    return settings
