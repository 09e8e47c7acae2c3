"""NATS as the clustered broker backend (``backend = "nats"``): per-node nats-server config,
the users file, credentials and reload.

Each node of the cluster runs ``nats-server -c DIR/nats-<node>.conf``: JetStream (the MQTT
listener keeps its sessions, retained messages and QoS 1 queues there, replicated by RAFT),
an MQTT listener for the gateways, a native NATS listener for the hub's workers (they consume
uplink as a core queue group), routes to every other node, monitoring on loopback. Users
live in ``nats-users.conf``, included by every node's config, so a credential change is a
reload (SIGHUP), never a restart; NATS drops the connections of a user that is gone.

MQTT topic ``a/b`` is NATS subject ``a.b``; gateway ids match ``^[a-z0-9][a-z0-9_-]{0,63}$``
(protocols/ids.py), so no id contains a ``.`` and a topic maps to a subject one to one.

What NATS 2.9 cannot do that the Mosquitto plugin does (bind a client id to its username,
rate-limit a gateway) is in docs/broker.md, "NATS backend: MQTT limits"; the client-id
watch is :mod:`hub.broker.natswatch`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from hub.broker.config import (
    HUB_USER,
    PACKET_OVERHEAD,
    BrokerSettings,
    NatsNode,
    _is_loopback,
    write_text_atomic,
)
from hub.broker.credentials import Credentials, PasswordFile, new_secret
from hub.broker.errors import BrokerError
from protocols import DOWNLINK_CHANNELS, MAX_PAYLOAD, UPLINK_CHANNELS
from protocols.topics import GATEWAY_PREFIX

#: NATS subject of ``safehome/v1/gw``: the MQTT listener maps ``/`` to ``.``.
SUBJECT_PREFIX = GATEWAY_PREFIX.replace("/", ".")
#: Where nats-server delivers an MQTT client's QoS 1 subscriptions (a JetStream durable's
#: deliver subject, ``$MQTT.sub.<nuid>``): every MQTT user needs subscribe rights on it
#: (nats-server docs, "MQTT: special permissions"). An MQTT client cannot subscribe to a
#: ``$MQTT/...`` topic itself (SUBACK 0x80, checked in tests/hub/broker/test_nats_acl.py).
MQTT_INTERNAL_SUB = "$MQTT.sub.>"
#: bcrypt cost: 4, the least bcrypt allows. Secrets are random 192-bit tokens
#: (credentials.new_secret), not words, so the cost buys nothing against guessing and costs
#: everything in a reconnect storm: every node checks the password of each gateway that fails
#: over to it. ~1 ms a check here at cost 4, ~4 ms at 6, ~100 ms at 11 (nats-server's
#: default): after a node's death its survivors check ~200 a second (docs/broker.md).
BCRYPT_ROUNDS = 4
USERS_FILE = "nats-users.conf"
PASSWD_FILE = "nats-passwd"
ROUTE_SECRET_FILE = "nats-route.password"
ROUTE_USER = "route"


def subject(topic: str) -> str:
    """The NATS subject of an MQTT topic (``+`` → ``*``, ``#`` → ``>``)."""
    return ".".join({"+": "*", "#": ">"}.get(level, level) for level in topic.split("/"))


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """bcrypt hash as nats-server accepts it in a users list."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def verify_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        return False


def uplink_subjects(gateway: str) -> list[str]:
    return [f"{SUBJECT_PREFIX}.{gateway}.{c.value}" for c in sorted(UPLINK_CHANNELS, key=lambda c: c.value)]


def downlink_subjects(gateway: str) -> list[str]:
    return [f"{SUBJECT_PREFIX}.{gateway}.{c.value}" for c in sorted(DOWNLINK_CHANNELS, key=lambda c: c.value)]


def gateway_permissions(gateway: str) -> dict[str, object]:
    """Publish only its own uplink, subscribe only its own downlink (literal subjects: a
    wildcard subscription, another gateway's subject, ``$share/...`` are not in the list, so
    nats-server answers SUBACK 0x80), and MQTT's own QoS 1 delivery subjects."""
    return {
        "publish": {"allow": uplink_subjects(gateway)},
        "subscribe": {"allow": [*downlink_subjects(gateway), MQTT_INTERNAL_SUB]},
    }


def hub_permissions() -> dict[str, object]:
    """The hub: reads every gateway's uplink (natively, as a queue group), writes every
    downlink (over MQTT or natively), request/reply inboxes."""
    return {
        "publish": {"allow": downlink_subjects("*")},
        "subscribe": {"allow": [*uplink_subjects("*"), MQTT_INTERNAL_SUB, "_INBOX.>"]},
    }


def render_users(entries: dict[str, str]) -> str:
    """``nats-users.conf``: one user per credential (``user -> bcrypt hash``). Gateways may
    connect over MQTT only; the hub natively and over MQTT. JSON is valid NATS config."""
    users = []
    for user, hashed in sorted(entries.items()):
        if user == HUB_USER:
            users.append(
                {
                    "user": user,
                    "password": hashed,
                    "permissions": hub_permissions(),
                    "allowed_connection_types": ["STANDARD", "MQTT"],
                }
            )
        else:
            users.append(
                {
                    "user": user,
                    "password": hashed,
                    "permissions": gateway_permissions(user),
                    "allowed_connection_types": ["MQTT"],
                }
            )
    body = ",\n".join("  " + json.dumps(u, sort_keys=True) for u in users)
    return "# Written by `safehome broker`; regenerate rather than edit.\nusers = [\n" + body + "\n]\n"


def _q(value: object) -> str:
    return json.dumps(str(value))


def config_path(s: BrokerSettings, node: NatsNode) -> Path:
    return s.directory / f"nats-{node.name}.conf"


def nft_path(s: BrokerSettings, node: NatsNode) -> Path:
    return s.directory / f"nats-{node.name}.nft"


def nft_table(node: NatsNode) -> str:
    """The nftables table of ``node``'s login rate guard (one per node: a host may run several)."""
    return "safehome_nats_" + re.sub(r"[^A-Za-z0-9_]", "_", node.name)


def render_nftables(s: BrokerSettings, node: NatsNode) -> str:
    """nftables rules for ``node``'s machine: at most ``nats_login_rate`` new MQTT connections
    per second; the SYNs above it are dropped, not refused, so the gateway's TCP stack sends
    them again after 1, 3, 7 s within the same connect attempt. Its burst is one second's
    rate: with nftables' default of 5 packets the guard also dropped SYNs that came in
    clumps while the average was below the rate, so that in the tail of a failover (the last
    gateways of a dead node, fewer than the guard admits) each such drop cost a gateway a
    5 s connect timeout, and the survivors took ~140 logins/s instead of 200 (docs/broker.md,
    "Logins after a node dies"). Its ``counter`` says how many SYNs it dropped
    (:func:`guard_dropped`, ``nft list table inet safehome_nats_<node>``).

    Why: every MQTT login on nats-server 2.9 loads and stores the gateway's session through
    the replicated JetStream store, answered on the client's read loop. When a node dies its
    gateways log in on the others at once; 3,333 of them (10,000 homes, 3 nodes) made the two
    survivors time out those requests, lose quorum and drop every gateway of the district
    (bench cluster --homes 10000 --only nats; docs/broker.md, "Logins after a node dies").
    ``nft -f`` loads it; loading it again replaces the table."""
    table = nft_table(node)
    return "\n".join(
        [
            "#!/usr/sbin/nft -f",
            f"# Written by `safehome broker config` for NATS node {node.name}; regenerate rather than edit.",
            f"# At most {s.nats_login_rate} new MQTT connections per second (nats_login_rate; a burst of as many),",
            "# the rest dropped (the client's TCP retries them) and counted: docs/broker.md,",
            "# \"Logins after a node dies\".",
            f"table inet {table}",
            f"delete table inet {table}",
            f"table inet {table} {{",
            "  chain input {",
            "    type filter hook input priority 0; policy accept;",
            f"    tcp dport {node.mqtt_port} ct state new limit rate over {s.nats_login_rate}/second burst {s.nats_login_rate} packets counter drop",
            "  }",
            "}",
            "",
        ]
    )


def guard_dropped(node: NatsNode) -> int | None:
    """How many SYNs ``node``'s login rate guard has dropped since it was loaded (its rule's
    ``counter``), read with ``nft -j`` on this machine; None where the table is not loaded or
    ``nft`` cannot be run (not root, no nftables)."""
    try:
        done = subprocess.run(
            ["nft", "-j", "list", "table", "inet", nft_table(node)], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        items = json.loads(done.stdout).get("nftables", [])
    except ValueError:
        return None
    for item in items:
        for expr in item.get("rule", {}).get("expr", []):
            if isinstance(expr, dict) and "counter" in expr:
                return int(expr["counter"].get("packets", 0))
    return None


def pid_path(s: BrokerSettings, node: NatsNode) -> Path:
    return s.run_dir / f"nats-{node.name}.pid"


def store_dir(s: BrokerSettings, node: NatsNode) -> Path:
    return s.persistence_dir / node.name


def users_path(s: BrokerSettings) -> Path:
    return s.directory / USERS_FILE


def passwd_path(s: BrokerSettings) -> Path:
    return s.directory / PASSWD_FILE


def route_secret_path(s: BrokerSettings) -> Path:
    return s.directory / ROUTE_SECRET_FILE


def find_node(s: BrokerSettings, name: str) -> NatsNode:
    for node in s.nodes:
        if node.name == name:
            return node
    raise BrokerError(f"no node {name!r} in the settings (nodes: {[n.name for n in s.nodes]})")


def _bind(s: BrokerSettings) -> str:
    # a lab setup without TLS listens on loopback only, as the Mosquitto side does
    return s.nats_bind if s.tls else "127.0.0.1"


def render_config(s: BrokerSettings, node: NatsNode, route_password: str = "") -> str:
    """The nats-server config of ``node``: JetStream, MQTT, routes to the other nodes,
    loopback monitoring, and the users file (included, so a reload re-reads it)."""
    if not s.tls and not _is_loopback(_bind(s)):
        raise BrokerError("backend nats without TLS listens on loopback only")
    bind = _bind(s)
    others = [n for n in s.nodes if n.name != node.name]
    lines = [
        "# Written by `safehome broker config`; regenerate rather than edit.",
        f"server_name: {_q(node.name)}",
        f"listen: {_q(f'{bind}:{node.client_port}')}",
        "# monitoring (/healthz, /jsz, /connz): no authentication, so loopback only",
        f"http: {_q(f'127.0.0.1:{node.http_port}')}",
        f"pid_file: {_q(pid_path(s, node))}",
        f"max_payload: {MAX_PAYLOAD + PACKET_OVERHEAD}",
        "jetstream {",
        f"  store_dir: {_q(store_dir(s, node))}",
        "}",
        "mqtt {",
        f"  listen: {_q(f'{bind}:{node.mqtt_port}')}",
        # replicated on up to 3 nodes: a gateway's session and its queued acks survive a node
        f"  stream_replicas: {min(3, max(1, len(s.nodes)))}",
        # one JetStream consumer per QoS 1 subscription, 3 per gateway (docs/broker.md, sizing)
        f"  consumer_replicas: {min(s.mqtt_consumer_replicas, max(1, len(s.nodes)))}",
        f"  consumer_memory_storage: {'true' if s.mqtt_consumer_memory_storage else 'false'}",
    ]
    if s.tls:
        lines += ["  tls {", f"    cert_file: {_q(s.certfile)}", f"    key_file: {_q(s.keyfile)}"]
        if s.cafile is not None:
            lines.append(f"    ca_file: {_q(s.cafile)}")
        if s.require_certificate:
            lines.append("    verify: true")
        lines.append("  }")
    lines.append("}")
    if others or len(s.nodes) > 1:
        lines += [
            "cluster {",
            f"  name: {_q(s.cluster_name)}",
            f"  listen: {_q(f'{bind}:{node.cluster_port}')}",
        ]
        if route_password:
            lines.append(f"  authorization {{ user: {_q(ROUTE_USER)}, password: {_q(route_password)} }}")
        auth = f"{ROUTE_USER}:{route_password}@" if route_password else ""
        lines.append("  routes: [")
        lines += [f"    {_q(f'nats-route://{auth}{n.host}:{n.cluster_port}')}" for n in others]
        lines += ["  ]", "}"]
    lines += ["authorization {", f"  include {_q(USERS_FILE)}", "}"]
    return "\n".join(lines) + "\n"


class NatsPasswordFile(PasswordFile):
    """``user:bcrypt`` lines (the credential store) and, rendered from them at every change,
    the users file the nodes include."""

    def __init__(self, path: Path, users: Path) -> None:
        super().__init__(path, owner="root")
        self.users_file = users

    def hash(self, password: str) -> str:
        return hash_password(password)

    def _write(self, entries: dict[str, str]) -> None:
        super()._write(entries)
        write_text_atomic(self.users_file, render_users(entries), mode=0o600)


def running_pid(s: BrokerSettings, node: NatsNode) -> int | None:
    """Pid of ``node``'s nats-server if it runs (pid file + /proc check: a stale pid file
    may name an unrelated process now)."""
    try:
        pid = int(pid_path(s, node).read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if comm == "nats-server" else None


def config_load_time(node: NatsNode) -> str | None:
    """``config_load_time`` of the node's ``/varz`` (changes at every reload); None if unreadable."""
    value = (_monitor(node, "/varz") or {}).get("config_load_time")
    return str(value) if value else None


def reload_nodes(s: BrokerSettings, within: float = 10.0) -> list[str]:
    """SIGHUP every running node of this directory and wait (up to ``within`` s each) until
    its ``/varz`` shows the new load time: then it has re-read the users file and dropped the
    connections of users that are gone or whose password changed. Returns the reloaded
    nodes' names. Nodes on other machines get the file copied and their own reload
    (docs/broker.md)."""
    done = []
    for node in s.nodes:
        pid = running_pid(s, node)
        if pid is None:
            continue
        before = config_load_time(node)
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            continue
        except PermissionError as exc:
            raise BrokerError(f"not allowed to signal nats-server process {pid}") from exc
        deadline = time.monotonic() + within
        while (now := config_load_time(node)) is None or now == before:
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"node {node.name} (pid {pid}) did not reload within {within} s: see its log"
                )
            time.sleep(0.02)
        done.append(node.name)
    return done


@dataclass(frozen=True)
class NodeStatus:
    name: str
    pid: int | None
    healthy: bool | None  # None: monitoring port not readable
    meta_leader: str
    connections: int
    guard_dropped: int | None = None  #: SYNs its login rate guard dropped (None: not loaded here)
    #: what the full ``/healthz`` says while the node serves but its streams and consumers are
    #: not current yet ("" when they are)
    catching_up: str = ""

    def line(self) -> str:
        if self.pid is None and self.healthy is None:
            return f"{self.name}: not running here"
        health = {True: "healthy", False: "UNHEALTHY", None: "monitoring port not answering"}[self.healthy]
        if self.healthy and self.catching_up:
            health += f" (its JetStream streams catching up: {self.catching_up})"
        guard = (
            "login rate guard not loaded (or not readable: run as root)"
            if self.guard_dropped is None
            else f"login rate guard dropped {self.guard_dropped} SYNs"
        )
        return (
            f"{self.name}: pid {self.pid or '?'}, {health}, JetStream meta leader "
            f"{self.meta_leader or 'NONE'}, {self.connections} connections, {guard}"
        )


def _monitor(node: NatsNode, path: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}{path}", timeout=2) as r:
            data = json.loads(r.read())
    except urllib.error.HTTPError as exc:  # /healthz says why it is not ok with a 503
        try:
            data = json.loads(exc.read())
        except (OSError, ValueError):
            return None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def node_status(s: BrokerSettings, node: NatsNode) -> NodeStatus:
    """What the node's loopback monitoring port says (/healthz, /jsz, /varz). Healthy is
    ``/healthz?js-server-only=true``: the node and its JetStream meta group, serving. The full
    ``/healthz`` also asks every stream and consumer to be current, and a node of nats-server
    2.9.10 restarted under traffic never said so again (its gateways' MQTT session consumers
    "not current") while it took logins and carried messages (tests/hub/test_cluster_failover.py);
    what it says is shown beside, not counted as a node down."""
    serving, full = _monitor(node, "/healthz?js-server-only=true"), _monitor(node, "/healthz")
    jsz, varz = _monitor(node, "/jsz"), _monitor(node, "/varz")
    meta = jsz.get("meta_cluster") if jsz else None
    leader = str(meta.get("leader") or "") if isinstance(meta, dict) else ("(single node)" if jsz else "")
    conns = varz.get("connections") if varz else 0
    behind = "" if full is None or full.get("status") == "ok" else str(full.get("error") or full.get("status"))
    return NodeStatus(
        node.name,
        running_pid(s, node),
        None if serving is None else serving.get("status") == "ok",
        leader,
        conns if isinstance(conns, int) else 0,
        guard_dropped(node),
        behind,
    )


class NatsCredentials(Credentials):
    """Credentials of the same interface as Mosquitto's; a change reloads the local nodes."""

    def __init__(self, s: BrokerSettings) -> None:
        super().__init__(NatsPasswordFile(passwd_path(s), users_path(s)), None)
        self.settings = s
        self.reloaded: list[str] = []  #: the nodes the last change reloaded (those running here)

    def _reload(self) -> bool:
        self.reloaded = reload_nodes(self.settings)
        return bool(self.reloaded)

    def not_reloaded(self) -> str | None:
        """What the operator still has to do after a change: the nodes it did not reach (on
        other machines, or not running), with the commands; None when every node reloaded."""
        left = [n for n in self.settings.nodes if n.name not in self.reloaded]
        if not left:
            return None
        names = ", ".join(f"{n.name} ({n.host})" for n in left)
        return (
            f"not reloaded here: {names}. Until each has the new {users_path(self.settings)} and has "
            "reloaded it, it accepts the old credentials. On each node's machine: copy the file to the "
            f"same path and run `nats-server --signal reload={self.settings.run_dir}/nats-<node>.pid` "
            "(a node that is not running reads it when it starts)."
        )


@dataclass(frozen=True)
class Written:
    configs: list[Path]
    users: Path
    passwords: Path
    hub_secret: Path
    hub_secret_created: bool


def _secret_file(path: Path) -> tuple[str, bool]:
    if path.exists():
        return path.read_text().strip(), False
    secret = new_secret()
    write_text_atomic(path, secret + "\n", mode=0o600)
    return secret, True


def write_deployment(s: BrokerSettings, nodes: Iterable[NatsNode] | None = None) -> Written:
    """Write every node's config (or ``nodes``'), the users file and the credential store
    with the hub account. Idempotent: credentials and secrets are kept."""
    if not s.nodes:
        raise BrokerError("backend nats needs at least one [[nodes]] entry (name, host, ports)")
    try:
        s.directory.mkdir(parents=True, exist_ok=True)
        s.run_dir.mkdir(exist_ok=True)
        route_password, _ = _secret_file(route_secret_path(s))
        configs = []
        for node in nodes if nodes is not None else s.nodes:
            store_dir(s, node).mkdir(parents=True, exist_ok=True)
            path = config_path(s, node)
            write_text_atomic(path, render_config(s, node, route_password), mode=0o600)
            configs.append(path)
            write_text_atomic(nft_path(s, node), render_nftables(s, node), mode=0o644)
        passwords = NatsPasswordFile(passwd_path(s), users_path(s))
        hub_secret, created = _secret_file(s.hub_secret_path)
        entries = passwords.read()
        if created or HUB_USER not in entries or not verify_password(hub_secret, entries[HUB_USER]):
            passwords.set(HUB_USER, hub_secret)
        elif not users_path(s).exists():
            write_text_atomic(users_path(s), render_users(entries), mode=0o600)
    except OSError as exc:
        raise BrokerError(f"cannot write broker files in {s.directory}: {exc}") from exc
    return Written(configs, users_path(s), passwd_path(s), s.hub_secret_path, created)


#: Environment variable naming another nats-server executable than Debian's (to evaluate a
#: newer build: docs/broker.md, "Which nats-server")
NATS_SERVER_ENV = "SAFEHOME_NATS_SERVER"


def nats_binary() -> str:
    """Debian's nats-server, or the executable ``$SAFEHOME_NATS_SERVER`` names."""
    given = os.environ.get(NATS_SERVER_ENV)
    if given:
        if not os.access(given, os.X_OK):
            raise BrokerError(f"{NATS_SERVER_ENV}={given!r} is not an executable file")
        return given
    for path in ("/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if os.path.exists(path):
            return path
    raise BrokerError("nats-server is not installed (Debian: apt-get install nats-server)")


def run_argv(s: BrokerSettings, node: NatsNode) -> list[str]:
    return [nats_binary(), "-c", str(config_path(s, node))]
