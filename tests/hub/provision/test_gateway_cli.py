"""`safehome provision gateway`: register or check, credentials, bundle, refusals that change nothing."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from sqlalchemy import select

from devices.wiring import check_wiring
from edge.settings import load_settings
from hub.broker.credentials import PasswordFile, verify_password
from hub.db.engine import make_engine, make_session_factory
from hub.provision.models import ProvisionedGateway
from hub.registry.models import Gateway, Sensor
from protocols.failover import NATS_FAILOVER_SPREAD_S
from tests.hub.provision.conftest import Site


def rows(db_url: str, model: type) -> list:  # type: ignore[type-arg]
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as s:
            return list(s.scalars(select(model)))
    finally:
        engine.dispose()


def add_sensor(db_url: str, gateway: str, sensor: str, model: str, kind: str) -> None:
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as s, s.begin():
            s.add(Sensor(gateway_id=gateway, id=sensor, model=model, kind=kind))
    finally:
        engine.dispose()


def password_in(bundle: Path) -> str:
    settings = load_settings(bundle / "edge.toml")
    assert settings.mqtt.password is not None
    return settings.mqtt.password.get_secret_value()


def test_bundle_is_generated_from_the_registry_and_loads_in_the_agent(site: Site) -> None:
    out = site.tmp / "bundle"
    r = site.run("gateway", "--home", "home-1", "--hub-host", "hub.example", "--no-tls", "--no-push",
                 "-o", str(out), "--by", "installer-7")
    assert r.exit_code == 0, r.output
    assert "gateway gw-1 of home home-1" in r.output
    assert stat.S_IMODE((out / "edge.toml").stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    settings = load_settings(out / "edge.toml")  # the agent's own loader accepts it
    assert settings.gateway_id == "gw-1"
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.tls) == ("hub.example", 1883, False)
    assert [(s.id, s.model) for s in settings.sensors] == [("panic-1", "panic-button"), ("smoke-1", "smoke-dry-contact")]
    check_wiring(settings.sensors + settings.outputs)
    # the password in the bundle is the one the broker checks
    hashes = PasswordFile(site.broker_dir / "passwd").read()
    assert verify_password(password_in(out), hashes["gw-1"])
    manifest = json.loads((out / "bundle.json").read_text())
    assert manifest["home_id"] == "home-1" and manifest["config_revision"] == 1
    assert manifest["created_by"] == "installer-7"
    [rec] = rows(site.db_url, ProvisionedGateway)
    assert (rec.gateway_id, rec.revision, rec.provisioned_by) == ("gw-1", 1, "installer-7")


def test_reprovisioning_revokes_the_old_password_and_bumps_the_revision(site: Site) -> None:
    a, b = site.tmp / "a", site.tmp / "b"
    assert site.run("gateway", "--home", "home-1", "--hub-host", "h", "--no-tls", "--no-push", "-o", str(a)).exit_code == 0
    r = site.run("gateway", "--home", "home-1", "--hub-host", "h", "--no-tls", "--no-push", "-o", str(b))
    assert r.exit_code == 0, r.output
    assert "the old one is revoked" in r.output
    hashes = PasswordFile(site.broker_dir / "passwd").read()
    assert not verify_password(password_in(a), hashes["gw-1"])
    assert verify_password(password_in(b), hashes["gw-1"])
    assert json.loads((b / "bundle.json").read_text())["config_revision"] == 2


def test_a_gateway_without_sensors_is_refused_and_not_registered(site: Site) -> None:
    r = site.run("gateway", "--home", "home-1", "--gateway", "gw-1b", "--hub-host", "h", "--no-tls", "--no-push",
                 "-o", str(site.tmp / "x"))
    assert r.exit_code == 1
    assert "gateway 'gw-1b' of home 'home-1' has no sensors in the registry" in r.output
    assert "gw-1b" not in [g.id for g in rows(site.db_url, Gateway)]  # rolled back


def test_refusals_name_the_problem_and_change_nothing(site: Site) -> None:
    def refused(*args: str) -> str:
        r = site.run("gateway", *args, "--hub-host", "h", "--no-tls", "--no-push", "-o", str(site.tmp / "b"))
        assert r.exit_code == 1, r.output
        return r.output

    assert "home 'home-404' is not in the registry" in refused("--home", "home-404")
    assert "gateway 'gw-2' belongs to home 'home-2', not 'home-1'" in refused("--home", "home-1", "--gateway", "gw-2")
    add_sensor(site.db_url, "gw-2", "smoke-2", "smoke-dry-contact", "smoke")
    out = refused("--home", "home-2")
    assert "GPIO clash" in out and "'smoke-1'" in out and "'smoke-2'" in out and "GPIO 17" in out
    add_sensor(site.db_url, "gw-3", "odd-1", "no-such-model", "smoke")
    assert "sensor 'odd-1' of gateway 'gw-3': model 'no-such-model' is not a model the agent knows" in refused(
        "--home", "home-3")
    assert "not a sensor of gateway 'gw-1'" in refused("--home", "home-1", "--wiring", "smoke-9.contact_pin=24")
    assert not (site.broker_dir / "passwd").exists()  # no credentials were created
    assert not (site.tmp / "b").exists()
    assert rows(site.db_url, ProvisionedGateway) == []


def test_a_wiring_override_resolves_a_clash_and_lands_in_the_bundle(site: Site) -> None:
    add_sensor(site.db_url, "gw-2", "smoke-2", "smoke-dry-contact", "smoke")
    out = site.tmp / "b"
    r = site.run("gateway", "--home", "home-2", "--hub-host", "h", "--no-tls", "--no-push", "-o", str(out),
                 "--wiring", "smoke-2.contact_pin=24")
    assert r.exit_code == 0, r.output
    settings = load_settings(out / "edge.toml")
    assert {s.id: dict(s.params) for s in settings.sensors}["smoke-2"] == {"contact_pin": 24}


def test_tls_needs_the_ca_and_puts_it_in_the_bundle(site: Site) -> None:
    r = site.run("gateway", "--home", "home-1", "--hub-host", "h", "--no-push", "-o", str(site.tmp / "b"))
    assert r.exit_code == 1 and "--ca-file" in r.output
    ca = site.tmp / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    out = site.tmp / "c"
    r = site.run("gateway", "--home", "home-1", "--hub-host", "h", "--no-push", "-o", str(out), "--ca-file", str(ca))
    assert r.exit_code == 0, r.output
    settings = load_settings(out / "edge.toml")
    assert settings.mqtt.tls and settings.mqtt.port == 8883
    assert str(settings.mqtt.ca_file) == "/etc/safehome/ca.crt"
    assert (out / "ca.crt").read_text() == ca.read_text()


def test_a_clustered_broker_puts_every_node_in_the_bundle(site: Site) -> None:
    from protocols.failover import Address

    out = site.tmp / "bundle"
    r = site.run("gateway", "--home", "home-1", "--hub-host", "n1.hub.example", "--hub-host", "n2.hub.example:8884",
                 "--hub-host", "[fd00::3]", "--no-tls", "--no-push", "-o", str(out))
    assert r.exit_code == 0, r.output
    settings = load_settings(out / "edge.toml")
    assert settings.mqtt.addresses == (
        Address("n1.hub.example", 1883), Address("n2.hub.example", 8884), Address("fd00::3", 1883)
    )
    manifest = json.loads((out / "bundle.json").read_text())
    assert manifest["hub"]["servers"] == ["n1.hub.example:1883", "n2.hub.example:8884", "[fd00::3]:1883"]
    r = site.run("gateway", "--home", "home-1", "--hub-host", "n1", "--hub-host", "n1:1883", "--no-tls", "--no-push",
                 "-o", str(site.tmp / "b"))
    assert r.exit_code == 2 and "n1:1883 is listed twice" in r.output


def test_a_bundle_for_a_nats_cluster_says_downlink_qos_0(site: Site) -> None:
    out = site.tmp / "bundle"
    r = site.run("gateway", "--home", "home-1", "--hub-host", "n1", "--hub-host", "n2", "--downlink-qos", "0",
                 "--no-tls", "--no-push", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert load_settings(out / "edge.toml").mqtt.downlink_qos == 0
    assert json.loads((out / "bundle.json").read_text())["hub"]["downlink_qos"] == 0
    plain = site.tmp / "plain"
    assert site.run("gateway", "--home", "home-1", "--hub-host", "h", "--no-tls", "--no-push",
                    "-o", str(plain)).exit_code == 0
    assert load_settings(plain / "edge.toml").mqtt.downlink_qos == 1
    assert "downlink_qos" not in (plain / "edge.toml").read_text()  # the agent's default, left out
    assert "failover_spread_s" not in (plain / "edge.toml").read_text()  # Mosquitto: the default 2 s
    assert "uplink_qos" not in (plain / "edge.toml").read_text()  # Mosquitto: QoS 1, status retained
    assert "retain_status" not in (plain / "edge.toml").read_text()
    r = site.run("gateway", "--home", "home-1", "--hub-host", "h", "--downlink-qos", "2", "--no-tls", "--no-push",
                 "-o", str(site.tmp / "b"))
    assert r.exit_code == 2 and "--downlink-qos" in r.output
    site.broker_toml.write_text(site.broker_toml.read_text() + 'backend = "nats"\n')
    cluster = site.tmp / "cluster"  # the broker settings say NATS: 0 without the flag
    assert site.run("gateway", "--home", "home-1", "--hub-host", "n1", "--hub-host", "n2", "--no-tls", "--no-push",
                    "-o", str(cluster)).exit_code == 0
    assert load_settings(cluster / "edge.toml").mqtt.downlink_qos == 0
    # and a wider failover spread: the survivors log a dead node's gateways in through JetStream
    assert load_settings(cluster / "edge.toml").mqtt.failover_spread_s == NATS_FAILOVER_SPREAD_S == 10.0
    assert json.loads((cluster / "bundle.json").read_text())["hub"]["failover_spread_s"] == 10.0
    # and no JetStream write per publish: uplink at QoS 0, the status not retained
    mqtt = load_settings(cluster / "edge.toml").mqtt
    assert (mqtt.uplink_qos, mqtt.retain_status) == (0, False)
    assert json.loads((cluster / "bundle.json").read_text())["hub"]["uplink_qos"] == 0
    forced = site.tmp / "forced"
    assert site.run("gateway", "--home", "home-1", "--hub-host", "n1", "--downlink-qos", "1", "--no-tls", "--no-push",
                    "-o", str(forced)).exit_code == 0
    assert load_settings(forced / "edge.toml").mqtt.downlink_qos == 1
