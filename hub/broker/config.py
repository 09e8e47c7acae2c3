"""The central Mosquitto's configuration for a deployment: settings, sizing and rendering.

Rendering is pure (settings in, text out); :func:`write_deployment` puts the files on disk.
The ACL gives every gateway (MQTT username = gateway id) write access to its own uplink
topics and read access to its own downlink topics only, through ``pattern`` lines with
``%u`` (Mosquitto 2.0.11's dynamic-security plugin does not expand ``%u``, the ACL file
does). The ``hub`` account reads every uplink topic and ``$SYS``, writes every downlink.
What the ACL file cannot do (refuse subscriptions, bind a client id to its username,
refuse retained uplink) is done by the isolation plugin (:mod:`hub.broker.plugin`); a
second plugin limits each gateway's rate on the hub's priority-lane channels.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from hub.broker import plugin
from hub.broker.errors import BrokerError
from hub.settings_files import FileSettings, SettingsError, load_settings
from protocols import DOWNLINK_CHANNELS, MAX_PAYLOAD, UPLINK_CHANNELS
from protocols.topics import GATEWAY_PREFIX

#: MQTT username of the hub's workers; never a gateway id (see credentials.RESERVED).
HUB_USER = "hub"
#: Room for the fixed header and the topic on top of the largest protocol payload.
PACKET_OVERHEAD = 1024


def queue_size(gateways: int, telemetry_s: float = 60, heartbeat_s: float = 30, outage_s: float = 300) -> int:
    """Messages a hub consumer's queue must hold to ride out ``outage_s`` of hub downtime.

    Mosquitto's default ``max_queued_messages 1000`` silently drops part of a QoS 1 burst
    to a consumer that falls behind (docs/architecture.md, measured facts). Every gateway sends about
    one telemetry batch per ``telemetry_s`` and one heartbeat per ``heartbeat_s``; the
    queue of the hub's shared subscription must hold what arrives while the hub is
    restarting or catching up. Never below 10,000.
    """
    if gateways < 0 or telemetry_s <= 0 or heartbeat_s <= 0 or outage_s < 0:
        raise ValueError("gateways and outage_s must be >= 0, intervals > 0")
    rate = gateways * (1 / telemetry_s + 1 / heartbeat_s)
    return max(10_000, int(rate * outage_s * 1.25))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NatsNode(BaseModel):
    """One nats-server of a NATS cluster (backend = "nats"); docs/broker.md, "Run a 3-node NATS cluster"."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="server_name; names its files")
    host: str = Field(default="127.0.0.1", description="address the other nodes route to")
    client_port: int = Field(default=4222, ge=1, le=65535, description="native NATS: the hub's workers")
    mqtt_port: int = Field(default=8883, ge=1, le=65535, description="MQTT: the gateways")
    cluster_port: int = Field(default=6222, ge=1, le=65535, description="routes between the nodes")
    http_port: int = Field(default=8222, ge=1, le=65535, description="monitoring, on loopback only")


class BrokerSettings(FileSettings):
    """Where the broker's files live and how it is sized. TOML file + ``SAFEHOME_BROKER_*`` env."""

    model_config = SettingsConfigDict(env_prefix="SAFEHOME_BROKER_", extra="forbid")

    backend: Literal["mosquitto", "nats"] = Field(
        default="mosquitto", description="mosquitto: one broker; nats: a nats-server cluster (hub/broker/nats.py)"
    )
    directory: Path = Field(default=Path("broker"), description="mosquitto.conf, passwd, acl, pid")
    data_dir: Path | None = Field(default=None, description="persistence; default DIRECTORY/data")
    # TLS listener (gateways connect here)
    tls: bool = True
    tls_bind: str = "0.0.0.0"
    tls_port: int = Field(default=8883, ge=1, le=65535)
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    require_certificate: bool = False
    use_identity_as_username: bool = False
    # plain listener, loopback only (hub on the same machine, local tools)
    plain_bind: str = "127.0.0.1"
    plain_port: int = Field(default=1883, ge=1, le=65535)
    # sizing
    gateways: int = Field(default=1000, ge=0, description="gateways the deployment serves")
    telemetry_s: float = Field(default=60, gt=0)
    heartbeat_s: float = Field(default=30, gt=0)
    outage_s: float = Field(default=300, ge=0, description="hub downtime the queues must absorb")
    max_queued_messages: int | None = Field(default=None, ge=0, description="default: queue_size()")
    max_queued_bytes: int = Field(default=512 * 1024 * 1024, ge=0, description="memory bound per client")
    max_inflight_messages: int = Field(default=100, ge=0)
    max_connections: int = -1
    persistence: bool = True
    autosave_interval: int = Field(default=30, ge=1)
    persistent_client_expiration: str = "7d"
    sys_interval: int = Field(default=10, ge=1)
    # one gateway's flood (hub/broker/plugin/safehome_ratelimit.c, docs/broker.md)
    gateway_rate: float = Field(
        default=20.0, ge=0, description="events/status/results per second per gateway, sustained; 0: no limit"
    )
    gateway_burst: int = Field(default=200, ge=1, description="events/status/results a gateway may send at once")
    user: str = Field(default="mosquitto", description="account mosquitto drops to when started as root")
    log_dest: str = "stderr"
    # backend = "nats": the nodes of the cluster (hub/broker/nats.py)
    nodes: list[NatsNode] = Field(default_factory=list, description="nats-server nodes (backend nats)")
    cluster_name: str = Field(default="safehome", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    nats_bind: str = Field(default="0.0.0.0", description="client, MQTT and cluster listeners (backend nats)")
    mqtt_consumer_replicas: int = Field(
        default=3, ge=1, le=5, description="backend nats: replicas of each MQTT QoS 1 subscription's consumer"
    )
    mqtt_consumer_memory_storage: bool = Field(
        default=False, description="backend nats: keep MQTT subscriptions' consumers in memory"
    )
    nats_login_rate: int = Field(
        default=100,
        ge=10,
        le=100_000,
        description="backend nats: new MQTT connections a node accepts per second; the nftables "
        "rules of `safehome broker config` drop the SYNs above it (the gateway's TCP retries), so "
        "a dead node's gateways cannot log in on the others faster than JetStream keeps up",
    )

    @field_validator("plain_bind")
    @classmethod
    def _loopback_only(cls, v: str) -> str:
        if not _is_loopback(v):
            raise ValueError(f"the plain (unencrypted) listener must bind to loopback, not {v!r}")
        return v

    @model_validator(mode="after")
    def _tls_files(self) -> BrokerSettings:
        if self.tls and (self.certfile is None or self.keyfile is None):
            raise ValueError("tls = true needs certfile and keyfile (or set tls = false for a lab setup)")
        if self.require_certificate and self.cafile is None:
            raise ValueError("require_certificate needs cafile")
        if self.use_identity_as_username and not self.require_certificate:
            raise ValueError("use_identity_as_username needs require_certificate")
        if self.backend == "nats":
            names = [n.name for n in self.nodes]
            if len(set(names)) != len(names):
                raise ValueError(f"node names must be unique: {names}")
            if self.use_identity_as_username:
                raise ValueError("backend nats: certificate identities are not supported (see docs/broker.md)")
        return self

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> BrokerSettings:
        """TOML file (optional, table ``[broker]`` or top level) < env < ``overrides``."""
        try:
            return load_settings(cls, path, "broker", **overrides)
        except SettingsError as exc:
            raise BrokerError(str(exc)) from exc

    # derived paths
    @property
    def config_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def password_path(self) -> Path:
        return self.directory / "passwd"

    @property
    def acl_path(self) -> Path:
        return self.directory / "acl"

    @property
    def run_dir(self) -> Path:
        """Owned by the broker's account: Mosquitto writes its pid file after dropping root."""
        return self.directory / "run"

    @property
    def pid_path(self) -> Path:
        return self.run_dir / "mosquitto.pid"

    @property
    def plugin_path(self) -> Path:
        return self.directory / "safehome_isolation.so"

    @property
    def ratelimit_path(self) -> Path:
        return self.directory / "safehome_ratelimit.so"

    @property
    def hub_secret_path(self) -> Path:
        return self.directory / "hub.password"

    @property
    def persistence_dir(self) -> Path:
        return self.data_dir or self.directory / "data"

    @property
    def queued_messages(self) -> int:
        if self.max_queued_messages is not None:
            return self.max_queued_messages
        return queue_size(self.gateways, self.telemetry_s, self.heartbeat_s, self.outage_s)


def render_acl(hub_user: str = HUB_USER) -> str:
    """The ACL file: hub account first, then the per-gateway ``%u`` patterns."""
    up = sorted(c.value for c in UPLINK_CHANNELS)
    down = sorted(c.value for c in DOWNLINK_CHANNELS)
    lines = [
        "# Written by `safehome broker config`; regenerate rather than edit.",
        "# Gateways: MQTT username = gateway id. A gateway writes only its own uplink",
        "# topics and reads only its own downlink topics.",
        "",
        f"user {hub_user}",
        *(f"topic read {GATEWAY_PREFIX}/+/{c}" for c in up),
        *(f"topic write {GATEWAY_PREFIX}/+/{c}" for c in down),
        "topic read $SYS/#",
        f"topic read {plugin.SHED_TOPIC}",
        "",
        *(f"pattern write {GATEWAY_PREFIX}/%u/{c}" for c in up),
        *(f"pattern read {GATEWAY_PREFIX}/%u/{c}" for c in down),
    ]
    return "\n".join(lines) + "\n"


def render_security(password_path: Path, acl_path: Path, plugin_path: Path) -> str:
    """The authentication/authorisation part of the config (also used by tests' brokers)."""
    return plugin.render(plugin_path, (HUB_USER,)) + f"password_file {password_path}\nacl_file {acl_path}\n"


def render_ratelimit(plugin_path: Path, rate: float, burst: int) -> str:
    """The rate-limit plugin's lines (also used by tests' and benchmarks' brokers): the hub's
    account is never limited."""
    return plugin.render_ratelimit(plugin_path, (HUB_USER,), rate, burst)


def render_limits(s: BrokerSettings) -> str:
    """Queueing and latency settings that decide loss and delay (docs/architecture.md, measured facts)."""
    return (
        "\n".join(
            [
                "# A consumer that falls behind must not lose QoS 1 messages silently.",
                f"max_queued_messages {s.queued_messages}",
                f"max_queued_bytes {s.max_queued_bytes}",
                f"max_inflight_messages {s.max_inflight_messages}",
                f"max_packet_size {MAX_PAYLOAD + PACKET_OVERHEAD}",
                "# Alarms must not wait ~40 ms behind a busy stream (Nagle + delayed ACK).",
                "set_tcp_nodelay true",
                f"sys_interval {s.sys_interval}",
                f"persistent_client_expiration {s.persistent_client_expiration}",
            ]
        )
        + "\n"
    )


def render_config(s: BrokerSettings) -> str:
    """The complete mosquitto.conf for the deployment.

    With client certificates as identities (``use_identity_as_username``) Mosquitto skips
    the password check, and with it the isolation plugin's client id check: a gateway's
    certificate could connect with another client id and take that session over. Then the
    gateway listener also gets ``use_username_as_clientid`` (the client id becomes the
    certificate's CN), which needs per-listener settings, so that the hub's connections on
    the loopback listener keep their own ids.
    """
    per_listener = s.use_identity_as_username
    security = [
        "allow_anonymous false",
        render_security(s.password_path, s.acl_path, s.plugin_path).rstrip("\n"),
    ]
    # one table of buckets for the broker: loaded once, globally, or with per-listener
    # settings on the gateways' listener only (the loopback one serves the hub)
    ratelimit = render_ratelimit(s.ratelimit_path, s.gateway_rate, s.gateway_burst).rstrip("\n")
    lines = [
        "# Written by `safehome broker config`; regenerate rather than edit.",
        f"per_listener_settings {'true' if per_listener else 'false'}",
        f"pid_file {s.pid_path}",
        f"user {s.user}",
        f"log_dest {s.log_dest}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    if s.persistence:
        lines += [
            "persistence true",
            f"persistence_location {s.persistence_dir}/",
            f"autosave_interval {s.autosave_interval}",
        ]
    else:
        lines.append("persistence false")
    lines.append(render_limits(s).rstrip("\n"))
    if not per_listener:
        lines += [*security, ratelimit]
    lines += [
        "",
        "# Loopback, unencrypted: the hub on this machine and local tools.",
        f"listener {s.plain_port} {s.plain_bind}",
    ]
    if per_listener:
        lines += security if s.tls else [*security, ratelimit]
    if s.tls:
        lines += ["", "# Gateways: TLS.", f"listener {s.tls_port} {s.tls_bind}"]
        if per_listener:
            lines += [*security, ratelimit, "use_username_as_clientid true"]
        if s.cafile is not None:
            lines.append(f"cafile {s.cafile}")
        # no tls_version: Mosquitto 2's default accepts TLS 1.2 and 1.3
        lines += [f"certfile {s.certfile}", f"keyfile {s.keyfile}"]
        if s.require_certificate:
            lines.append("require_certificate true")
        if s.use_identity_as_username:
            lines.append("use_identity_as_username true")
    return "\n".join(lines) + "\n"


def chown_for_broker(path: Path, user: str) -> None:
    """Let the account mosquitto drops to read ``path`` (only meaningful when we are root)."""
    if os.geteuid() != 0 or user == "root":
        return
    try:
        pw = pwd.getpwnam(user)
    except KeyError as exc:
        raise BrokerError(f"broker user {user!r} does not exist: create it or set user") from exc
    os.chown(path, pw.pw_uid, pw.pw_gid)


def write_text_atomic(path: Path, text: str, mode: int = 0o640) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
