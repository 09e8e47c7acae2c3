"""`safehome broker config` / `run`: the complete generated config runs a real Mosquitto."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import protocols as p
from hub.broker.config import BrokerSettings, queue_size, render_acl, render_config
from hub.broker.credentials import Credentials, PasswordFile
from hub.mqtt import make_client
from hub.settings import MqttSettings
from hub.settings_files import SettingsError, load_settings
from safehome.testing.mosquitto import free_port, wait_port
from safehome.testing.pki import self_signed
from safehome.testing.poll import wait_for


async def _tls_sys_counter(settings: MqttSettings) -> bytes:
    async with make_client(settings, "hub-cfg-tls") as client:
        await client.subscribe("$SYS/broker/clients/connected", qos=0)
        async with asyncio.timeout(20):
            async for msg in client.messages:
                return bytes(msg.payload)
    return b""


def test_queue_is_sized_for_the_deployment() -> None:
    assert queue_size(0) == 10_000
    big = queue_size(100_000, telemetry_s=60, heartbeat_s=30, outage_s=300)
    assert big >= 100_000 * (1 / 60 + 1 / 30) * 300
    s = BrokerSettings(tls=False, gateways=100_000)
    text = render_config(s)
    assert f"max_queued_messages {big}" in text
    assert "set_tcp_nodelay true" in text
    assert "allow_anonymous false" in text
    assert "listener 1883 127.0.0.1" in text


def test_settings_refuse_unsafe_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        BrokerSettings(tls=False, plain_bind="0.0.0.0")
    with pytest.raises(ValueError, match="certfile"):
        BrokerSettings(tls=True)
    f = tmp_path / "b.toml"
    f.write_text('[broker]\ngateways = 5\ntls = false\ndirectory = "x"\n')
    assert load_settings(BrokerSettings, f, "broker").gateways == 5
    os.environ["SAFEHOME_BROKER_GATEWAYS"] = "7"
    try:
        assert load_settings(BrokerSettings, f, "broker").gateways == 7  # env beats file
        assert load_settings(BrokerSettings, f, "broker", gateways=9).gateways == 9
    finally:
        del os.environ["SAFEHOME_BROKER_GATEWAYS"]
    f.write_text("gateways = [")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(BrokerSettings, f)


def test_acl_has_one_pattern_per_topic() -> None:
    acl = render_acl()
    assert acl.count("pattern write safehome/v1/gw/%u/") == 4
    assert acl.count("pattern read safehome/v1/gw/%u/") == 3
    assert "pattern readwrite" not in acl and "#" not in acl.replace("$SYS/#", "").split("\n", 4)[-1]


def test_broker_run_with_generated_config_tls_and_loopback(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls_port, plain_port = free_port(), free_port()
    toml = tmp_path / "broker.toml"
    toml.write_text(
        f'directory = "{tmp_path / "broker"}"\ntls_port = {tls_port}\nplain_port = {plain_port}\n'
        f'tls_bind = "127.0.0.1"\ncertfile = "{cert}"\nkeyfile = "{key}"\ngateways = 50\n'
        f'user = "root"\nsys_interval = 1\n'
    )
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    out = subprocess.run(
        [sys.executable, "-m", "safehome", "broker", "config", "--config", str(toml)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    assert "max_queued_messages 10000" in out.stdout
    s = BrokerSettings.load(toml)
    gw = "cfg-gw-1"
    gw_pw = subprocess.run(
        [sys.executable, "-m", "safehome", "broker", "gateway", "add", "--config", str(toml), gw],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    assert PasswordFile(s.password_path).users() == [gw, "hub"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "safehome", "broker", "run", "--config", str(toml)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_port("127.0.0.1", tls_port)
        wait_port("127.0.0.1", plain_port)
        got: list[mqtt.MQTTMessage] = []
        hub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="cfg-hub")
        hub.username_pw_set("hub", s.hub_secret_path.read_text().strip())
        hub.on_message = lambda _c, _u, m: got.append(m)
        hub.connect("127.0.0.1", plain_port)
        hub.loop_start()
        hub.subscribe(f"$share/hub/{p.ROOT}/gw/+/event", 1)
        hub.subscribe("$SYS/broker/publish/messages/dropped", 0)
        gwc = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gw)
        gwc.username_pw_set(gw, gw_pw)
        gwc.tls_set(ca_certs=str(cert), cert_reqs=ssl.CERT_REQUIRED)
        gwc.connect("localhost", tls_port)
        gwc.loop_start()
        gwc.publish(str(p.Topic.of(gw, "event")), b"over-tls", qos=1).wait_for_publish(10)
        wait_for(lambda: any(m.payload == b"over-tls" for m in got), what="event over TLS")
        wait_for(lambda: any(m.topic.startswith("$SYS/") for m in got), what="$SYS counter")
        # the hub's own client (hub.mqtt.make_client) over TLS with the generated hub secret
        hub_tls = MqttSettings(host="localhost", port=tls_port, tls=True, cafile=cert,
                               password_file=s.hub_secret_path)
        assert asyncio.run(_tls_sys_counter(hub_tls)).isdigit()  # connected, authenticated, reading $SYS
        # a rotate reaches the running broker through its pid file
        Credentials(PasswordFile(s.password_path, owner="root"), s.pid_path).rotate(gw)
        wait_for(lambda: not gwc.is_connected(), what="rotated gateway disconnected")
        gwc.loop_stop()
        hub.loop_stop()
        hub.disconnect()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
