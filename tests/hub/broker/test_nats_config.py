"""backend = "nats": the rendered nats-server configs (checked by nats-server itself), the
users file's permissions, the takeover watch's rule, and `safehome broker` on a NATS
deployment (no running node needed: the cluster tests are test_nats_acl/test_nats_session)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from hub.broker import nats
from hub.broker.cli import broker
from hub.broker.config import BrokerSettings, NatsNode
from hub.broker.errors import BrokerError
from hub.broker.natswatch import impostors
from safehome.testing.mosquitto import free_port
from safehome.testing.nats import NatsCluster
from safehome.testing.pki import self_signed
from safehome.testing.poll import wait_for


def _settings(tmp_path: Path, **kw: object) -> BrokerSettings:
    nodes = [NatsNode(name=f"n{i}", host=f"10.0.0.{i}") for i in (1, 2, 3)]
    return BrokerSettings(backend="nats", directory=tmp_path / "b", nodes=nodes, **kw)  # type: ignore[arg-type]


def test_each_node_routes_to_the_others_and_nats_server_accepts_the_config(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "tls")
    s = _settings(tmp_path, certfile=cert, keyfile=key)
    written = nats.write_deployment(s)
    text = nats.config_path(s, s.nodes[1]).read_text()
    assert 'server_name: "n2"' in text
    assert 'http: "127.0.0.1:8222"' in text  # monitoring never leaves loopback
    assert 'listen: "0.0.0.0:8883"' in text and f'cert_file: "{cert}"' in text
    route = nats.route_secret_path(s).read_text().strip()
    assert f'"nats-route://route:{route}@10.0.0.1:6222"' in text
    assert f'"nats-route://route:{route}@10.0.0.3:6222"' in text
    assert "10.0.0.2:6222" not in text
    assert f'store_dir: "{s.persistence_dir / "n2"}"' in text
    assert "consumer_replicas: 3" in text and "consumer_memory_storage: false" in text
    one = BrokerSettings(backend="nats", tls=False, nodes=[NatsNode(name="solo")], mqtt_consumer_replicas=3)
    assert "consumer_replicas: 1" in nats.render_config(one, one.nodes[0])  # never more than the nodes
    for conf in written.configs:
        check = subprocess.run(
            [nats.nats_binary(), "-c", str(conf), "-t"], capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, check.stdout + check.stderr
    # idempotent: credentials and secrets kept
    hub = s.hub_secret_path.read_text()
    again = nats.write_deployment(s)
    assert not again.hub_secret_created and s.hub_secret_path.read_text() == hub
    assert nats.route_secret_path(s).read_text().strip() == route


def test_without_tls_every_listener_is_on_loopback(tmp_path: Path) -> None:
    s = _settings(tmp_path, tls=False)
    text = nats.render_config(s, s.nodes[0], "secret")
    assert "0.0.0.0" not in text
    assert 'listen: "127.0.0.1:8883"' in text and "tls {" not in text


def test_a_gateway_may_publish_its_uplink_and_read_its_downlink_only() -> None:
    users = json.loads(nats.render_users({"hub": "$2b$h", "gw-1": "$2b$g"}).split("users = ", 1)[1])
    by_name = {u["user"]: u for u in users}
    gw = by_name["gw-1"]
    assert gw["allowed_connection_types"] == ["MQTT"]
    assert gw["permissions"] == {
        "publish": {
            "allow": [f"safehome.v1.gw.gw-1.{c}" for c in ("event", "result", "status", "telemetry")]
        },
        "subscribe": {
            "allow": [f"safehome.v1.gw.gw-1.{c}" for c in ("ack", "cmd", "config")] + ["$MQTT.sub.>"]
        },
    }
    hub = by_name["hub"]
    assert hub["allowed_connection_types"] == ["STANDARD", "MQTT"]
    assert "safehome.v1.gw.*.event" in hub["permissions"]["subscribe"]["allow"]
    assert "safehome.v1.gw.*.ack" in hub["permissions"]["publish"]["allow"]
    assert nats.subject("safehome/v1/gw/+/event") == "safehome.v1.gw.*.event"
    assert nats.subject("#") == ">"


def test_the_watch_flags_a_client_id_that_is_not_the_users() -> None:
    connz = {
        "connections": [
            {"cid": 1, "authorized_user": "gw-a", "mqtt_client": "gw-a"},
            {"cid": 2, "authorized_user": "gw-a", "mqtt_client": "gw-b"},
            {"cid": 3, "authorized_user": "gw-c", "mqtt_client": "hub-w1-acks"},
            {"cid": 4, "authorized_user": "hub", "mqtt_client": "hub-w1-acks-00ff"},
            {"cid": 5, "authorized_user": "hub", "mqtt_client": "gw-a"},
            {"cid": 6, "authorized_user": "hub"},  # native: the ingest
        ]
    }
    found = impostors("n1", connz)
    assert [(i.cid, i.user, i.client_id, i.revocable) for i in found] == [
        (2, "gw-a", "gw-b", True),
        (3, "gw-c", "hub-w1-acks", True),
        (5, "hub", "gw-a", False),
    ]


def test_settings_refuse_duplicate_nodes_and_certificate_identities(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unique"):
        BrokerSettings(backend="nats", tls=False, nodes=[NatsNode(name="n1"), NatsNode(name="n1")])
    with pytest.raises(ValueError, match="not supported"):
        BrokerSettings(
            backend="nats",
            tls=False,
            require_certificate=True,
            use_identity_as_username=True,
            cafile=tmp_path / "ca.crt",
            nodes=[NatsNode(name="n1")],
        )


def test_broker_commands_on_a_nats_deployment(tmp_path: Path) -> None:
    conf = tmp_path / "broker.toml"
    conf.write_text(
        f'backend = "nats"\ndirectory = "{tmp_path / "b"}"\ntls = false\n'
        f'[[nodes]]\nname = "n1"\nclient_port = {free_port()}\nmqtt_port = {free_port()}\n'
        f"cluster_port = {free_port()}\nhttp_port = {free_port()}\n"
    )
    run = CliRunner().invoke
    out = run(broker, ["config", "--config", str(conf)])
    assert out.exit_code == 0, out.output
    assert "nats-n1.conf" in out.output and "new hub account password" in out.output
    added = run(broker, ["gateway", "add", "--config", str(conf), "gw-000001"])
    assert added.exit_code == 0, added.output
    password = added.stdout.strip()  # the warning goes to stderr: n1 is not running here
    assert "warning: not reloaded here: n1 (127.0.0.1)" in added.stderr
    assert "it accepts the old credentials" in added.stderr and "--signal reload=" in added.stderr
    entries = nats.NatsPasswordFile(
        tmp_path / "b" / nats.PASSWD_FILE, tmp_path / "b" / nats.USERS_FILE
    ).read()
    assert nats.verify_password(password, entries["gw-000001"])
    assert '"user": "gw-000001"' in (tmp_path / "b" / nats.USERS_FILE).read_text()
    assert run(broker, ["gateway", "list", "--config", str(conf)]).output.split() == ["gw-000001", "hub"]
    revoked = run(broker, ["gateway", "revoke", "--config", str(conf), "gw-000001"])
    assert revoked.exit_code == 0 and revoked.stdout == "revoked gw-000001\n"
    assert "not reloaded here: n1" in revoked.stderr
    assert "gw-000001" not in (tmp_path / "b" / nats.USERS_FILE).read_text()
    # a NATS directory without its settings: the nodes to reload are unknown
    bare = run(broker, ["gateway", "add", "--dir", str(tmp_path / "b"), "gw-000002"])
    assert bare.exit_code != 0 and "pass --config" in bare.output
    unknown = run(broker, ["run", "--config", str(conf), "--node", "n9"])
    assert unknown.exit_code != 0 and "no node 'n9'" in unknown.output
    status = run(broker, ["status", "--config", str(conf)])
    assert status.exit_code == 1 and "n1: not running here" in status.output


def test_a_gateway_logs_in_over_tls_on_a_single_node(tmp_path: Path) -> None:
    """The MQTT listener as gateways meet it: TLS with the deployment's certificate."""
    cert, key = self_signed(tmp_path / "tls")
    with NatsCluster(tmp_path / "nats", size=1, tls=(cert, key)) as node:
        pw = node.gateway("gw-tls")
        got: list[object] = []
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-tls", protocol=mqtt.MQTTv311)
        c.username_pw_set("gw-tls", pw)
        c.tls_set(ca_certs=str(cert))
        c.on_connect = lambda _c, _u, _f, rc, _p: got.append(rc)
        c.connect("127.0.0.1", node.mqtt_ports[0])
        c.loop_start()
        try:
            wait_for(lambda: got, what="CONNACK over TLS")
            assert not getattr(got[0], "is_failure", True)
        finally:
            c.disconnect()
            c.loop_stop()
        # and nothing in clear on that port: the node closes the connection, no CONNACK
        plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-tls", protocol=mqtt.MQTTv311)
        plain.username_pw_set("gw-tls", pw)
        events: list[str] = []
        plain.on_connect = lambda *_a: events.append("connack")
        plain.on_disconnect = lambda *_a: events.append("closed")
        plain.connect("127.0.0.1", node.mqtt_ports[0])
        plain.loop_start()
        try:
            wait_for(lambda: events, what="the plain connection's end")
            assert events[0] == "closed"
        finally:
            plain.disconnect()
            plain.loop_stop()


NEEDS_NFT = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("unshare") is None,
    reason="needs root, nft and unshare (make test installs nftables; CI runs as root)",
)


@NEEDS_NFT
def test_the_login_rate_guard_is_valid_nftables_per_node(tmp_path: Path) -> None:
    nodes = [NatsNode(name="n1", host="127.0.0.1", mqtt_port=8883), NatsNode(name="n-2", host="127.0.0.1", mqtt_port=8884)]
    s = BrokerSettings(backend="nats", directory=tmp_path / "b", tls=False, nats_login_rate=300, nodes=nodes)
    nats.write_deployment(s)
    for node in s.nodes:
        text = nats.nft_path(s, node).read_text()
        rule = f"tcp dport {node.mqtt_port} ct state new limit rate over 300/second burst 300 packets counter drop"
        assert rule in text
        assert f"table inet {nats.nft_table(node)} {{" in text
        check = subprocess.run(["nft", "-c", "-f", str(nats.nft_path(s, node))], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    assert nats.nft_table(s.nodes[1]) == "safehome_nats_n_2"  # a name nft takes


def _connects(port: int, nft_file: Path | None) -> tuple[int, int | None]:
    """How many of 60 back-to-back TCP connects to ``port`` succeed within 0.5 s each, and
    what the guard's counter then says (``guard_dropped``), in a network namespace of its own
    (its own loopback and nftables: the host's stay untouched)."""
    load = f"nft -f {nft_file} && " if nft_file else ""
    probe = (
        "import socket\n"
        "from hub.broker import nats\n"
        "from hub.broker.config import NatsNode\n"
        f"srv = socket.socket(); srv.bind(('127.0.0.1', {port})); srv.listen(1024)\n"
        "ok = 0\n"
        "for _ in range(60):\n"
        "    c = socket.socket(); c.settimeout(0.5)\n"
        "    try:\n"
        f"        c.connect(('127.0.0.1', {port})); ok += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "    c.close()\n"
        f"print(ok, nats.guard_dropped(NatsNode(name='n1', host='127.0.0.1', mqtt_port={port})))\n"
    )
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", f"ip link set lo up && {load}exec {sys.executable} -c \"$0\"", probe],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ok, dropped = done.stdout.split()
    return int(ok), None if dropped == "None" else int(dropped)


@NEEDS_NFT
def test_the_login_rate_guard_drops_the_connections_above_its_rate(tmp_path: Path) -> None:
    """A burst of logins above nats_login_rate (and its burst of as many): the excess SYNs are
    dropped (the client's TCP would send them again after 1 s; the probe gives up after
    0.5 s) and counted, the rest get through."""
    node = NatsNode(name="n1", host="127.0.0.1", mqtt_port=18830)
    s = BrokerSettings(backend="nats", directory=tmp_path / "b", tls=False, nats_login_rate=10, nodes=[node])
    nats.write_deployment(s)
    assert _connects(18830, None) == (60, None)  # without the guard every connect gets through
    guarded, dropped = _connects(18830, nats.nft_path(s, node))
    # the burst (one second's rate) gets through at once, then about the rate: not all 60
    assert 10 <= guarded < 60
    # every connect that failed lost at least its first SYN to the guard, and the counter says so
    assert dropped is not None and dropped >= 60 - guarded


def test_another_nats_server_is_taken_from_the_environment_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(nats.NATS_SERVER_ENV, raising=False)
    assert nats.nats_binary() in ("/usr/sbin/nats-server", "/usr/bin/nats-server")
    build = tmp_path / "nats-server"
    build.write_text("#!/bin/sh\n")
    monkeypatch.setenv(nats.NATS_SERVER_ENV, str(build))
    with pytest.raises(BrokerError, match=r"SAFEHOME_NATS_SERVER='.*nats-server' is not an executable file"):
        nats.nats_binary()
    build.chmod(0o755)
    assert nats.nats_binary() == str(build)


def test_broker_status_says_what_the_login_guard_dropped() -> None:
    up = nats.NodeStatus("n1", 41, True, "n2", 3333, guard_dropped=8403)
    assert up.line() == (
        "n1: pid 41, healthy, JetStream meta leader n2, 3333 connections, login rate guard dropped 8403 SYNs"
    )
    bare = nats.NodeStatus("n1", 41, True, "n2", 0)
    assert bare.line().endswith("login rate guard not loaded (or not readable: run as root)")


def test_broker_status_counts_a_node_that_serves_while_its_streams_catch_up_as_healthy() -> None:
    behind = nats.NodeStatus("n2", 42, True, "n1", 3300, None, "JetStream consumer '$MQTT_msgs > x' is not current")
    assert "healthy (its JetStream streams catching up: JetStream consumer" in behind.line()
    assert "UNHEALTHY" in nats.NodeStatus("n2", 42, False, "", 0).line()


def test_broker_status_of_a_running_node(tmp_path: Path) -> None:
    """What `safehome broker status` reads of a real node: its pid, healthy, connections."""
    with NatsCluster(tmp_path / "nats", size=1) as node:
        st = nats.node_status(node.settings, node.settings.nodes[0])
        assert st.pid is not None and st.healthy is True and st.catching_up == ""
        assert st.connections >= 0
        assert st.line().startswith(f"{st.name}: pid {st.pid}, healthy, JetStream meta leader ")
