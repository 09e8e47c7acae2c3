"""Settings from TOML + SAFEHOME_EDGE_* env, with clear errors; the clock's sync seam."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.clock import AdjtimexProbe, Clock, FixedProbe, make_probe
from edge.errors import ConfigError
from edge.settings import load_settings

TOML = """
gateway_id = "gw-000001"
pin_factory = "mock"
backlog_order = "newest_first"

[mqtt]
host = "hub.example"
port = 8883
tls = true
password = "s3cret-real"

[[sensors]]
id = "smoke-1"
model = "smoke-dry-contact"
params = { contact_pin = 5 }
"""


def test_toml_then_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(TOML)
    monkeypatch.setenv("SAFEHOME_EDGE_MQTT__PORT", "18883")
    monkeypatch.setenv("SAFEHOME_EDGE_HEARTBEAT_S", "15")
    s = load_settings(path)
    assert (s.gateway_id, s.mqtt.host, s.mqtt.port, s.heartbeat_s) == ("gw-000001", "hub.example", 18883, 15)
    assert s.mqtt_username == "gw-000001"
    assert s.sensors[0].params == {"contact_pin": 5}
    assert s.backlog_order == "newest_first"
    assert "s3cret" not in repr(s)  # secrets are never printed


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('gateway_id = "GW 1"', "gateway_id"),
        ('gateway_id = "gw-1"\npin_factory = "wiringpi"', "pin_factory"),
        ('gateway_id = "gw-1"\n[mqtt]\npassword = "changeme"', "default secret"),
        ('gateway_id = "gw-1"\nsurprise = 1', "surprise"),
        (
            'gateway_id = "gw-1"\n[[sensors]]\nid="a"\nmodel="buzzer"\n[[outputs]]\nid="a"\nmodel="buzzer"',
            "unique",
        ),
        ("gateway_id = ", "cannot read"),
    ],
)
def test_bad_settings_are_clear_errors(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_clock_caches_the_sync_probe() -> None:
    probe = FixedProbe(False)
    t = [100.0]
    clock = Clock(probe, wall=lambda: 1_700_000_000.5, mono=lambda: t[0], cache_s=30)
    assert clock.stamp() == (1_700_000_000_500, False)
    probe.value = True
    assert clock.synced() is False  # cached
    t[0] += 31
    assert clock.synced() is True
    assert isinstance(AdjtimexProbe().synced(), bool)  # the real syscall answers here
    assert make_probe("assume_synced").synced() and not make_probe("never").synced()


def test_sync_watch_raises_only_after_the_grace_and_restores_once() -> None:
    from edge.clock import SyncWatch

    w = SyncWatch(start=0.0, grace_s=600)
    assert w.update(False, 10) is None  # booting: NTP has not answered yet
    assert w.update(False, 600) is True
    assert w.update(False, 700) is None
    assert w.update(True, 800) is False
    assert w.update(True, 900) is None
    assert SyncWatch(0.0, 600).update(True, 10) is None


def test_several_broker_addresses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from protocols.failover import Address

    path = tmp_path / "edge.toml"
    path.write_text(TOML.replace('host = "hub.example"', 'servers = ["n1.hub.example", "n2.hub.example:8884"]'))
    s = load_settings(path)
    assert s.mqtt.addresses == (Address("n1.hub.example", 8883), Address("n2.hub.example", 8884))
    # host/port alone: a list of one
    assert load_settings(None, gateway_id="gw-1", mqtt={"host": "h", "port": 9}).mqtt.addresses == (Address("h", 9),)
    monkeypatch.setenv("SAFEHOME_EDGE_MQTT__SERVERS", '["a:1", "[::1]:2"]')
    assert load_settings(path).mqtt.addresses == (Address("a", 1), Address("::1", 2))


@pytest.mark.parametrize(
    ("mqtt", "says"),
    [
        ({"servers": ["a:1", "b:99999"]}, r"mqtt: .*servers\[1\]: 'b:99999': port 99999 is outside 1..65535"),
        ({"servers": ["a:1", "a:1"]}, r"servers\[1\]: a:1 is listed twice"),
        ({"servers": [f"n{i}" for i in range(17)]}, "servers: 17 broker addresses, at most 16"),
        ({"servers": ["a"], "host": "b"}, r"either servers \(1 addresses\) or host \('b'\), not both"),
        ({"failover_spread_s": 61}, r"mqtt.failover_spread_s: .*less than or equal to 60"),
        ({"downlink_qos": 2}, r"mqtt.downlink_qos: .*less than or equal to 1"),
        ({"downlink_qos": -1}, r"mqtt.downlink_qos: .*greater than or equal to 0"),
        ({"uplink_qos": 2}, r"mqtt.uplink_qos: .*less than or equal to 1"),
        ({"retain_status": "sometimes"}, r"mqtt.retain_status: .*valid boolean"),
    ],
)
def test_bad_broker_lists_are_refused_clearly(tmp_path: Path, mqtt: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings(None, gateway_id="gw-1", mqtt=mqtt)


def test_downlink_qos_defaults_to_1_and_0_comes_from_toml_or_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(None, gateway_id="gw-1").mqtt.downlink_qos == 1
    path = tmp_path / "edge.toml"
    path.write_text('gateway_id = "gw-1"\n[mqtt]\ndownlink_qos = 0\n')
    assert load_settings(path).mqtt.downlink_qos == 0
    monkeypatch.setenv("SAFEHOME_EDGE_MQTT__DOWNLINK_QOS", "1")
    assert load_settings(path).mqtt.downlink_qos == 1


def test_uplink_qos_and_retain_status_default_to_mqtt_as_on_mosquitto_and_a_nats_bundle_turns_them_off(
    tmp_path: Path,
) -> None:
    m = load_settings(None, gateway_id="gw-1").mqtt
    assert (m.uplink_qos, m.retain_status) == (1, True)
    path = tmp_path / "edge.toml"
    path.write_text('gateway_id = "gw-1"\n[mqtt]\nuplink_qos = 0\nretain_status = false\n')
    m = load_settings(path).mqtt
    assert (m.uplink_qos, m.retain_status) == (0, False)
