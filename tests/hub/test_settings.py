"""Hub settings: TOML + env, nested env names, default secrets refused outside dev."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.sealing import DEV_KEY, SecretBox, generate_key
from hub.settings import HubSettings, SettingsError, load_hub_settings, secret_weakness


def test_toml_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "hub.toml"
    f.write_text(
        '[hub]\nenv = "dev"\nworker_id = "w1"\n[hub.mqtt]\nport = 1884\n[hub.database]\nurl = "sqlite:///x.db"\n'
    )
    s = load_hub_settings(f)
    assert (s.env, s.worker_id, s.mqtt.port, s.database.url) == ("dev", "w1", 1884, "sqlite:///x.db")
    monkeypatch.setenv("SAFEHOME_HUB_MQTT__PORT", "1999")
    monkeypatch.setenv("SAFEHOME_HUB_WORKER_ID", "w2")
    s = load_hub_settings(f)
    assert (s.mqtt.port, s.worker_id, s.mqtt.host) == (1999, "w2", "127.0.0.1")
    assert load_hub_settings(f, worker_id="w3").worker_id == "w3"


def test_default_or_missing_secrets_are_refused_outside_dev(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "hub.toml"
    f.write_text("[hub.mqtt]\nport = 1884\n")
    monkeypatch.setenv("SAFEHOME_HUB_SECRETS__KEY", generate_key())
    with pytest.raises(SettingsError, match=r"mqtt\.password / mqtt\.password_file is missing"):
        load_hub_settings(f)
    monkeypatch.setenv("SAFEHOME_HUB_MQTT__PASSWORD", "changeme")
    with pytest.raises(SettingsError, match="well-known default"):
        load_hub_settings(f)
    monkeypatch.setenv("SAFEHOME_HUB_ENV", "dev")
    assert load_hub_settings(f).env == "dev"  # a lab may use it
    monkeypatch.delenv("SAFEHOME_HUB_ENV")
    secret = tmp_path / "hub.password"
    secret.write_text("a-real-random-secret\n")
    monkeypatch.delenv("SAFEHOME_HUB_MQTT__PASSWORD")
    monkeypatch.setenv("SAFEHOME_HUB_MQTT__PASSWORD_FILE", str(secret))
    s = load_hub_settings(f)
    assert s.mqtt.secret() == "a-real-random-secret"
    assert "a-real-random-secret" not in repr(s)


def test_bad_settings_say_where(tmp_path: Path) -> None:
    f = tmp_path / "hub.toml"
    f.write_text('[hub]\nenv = "dev"\n[hub.mqtt]\nport = "many"\nbogus = 1\n')
    with pytest.raises(SettingsError, match=r"mqtt\.port") as err:
        load_hub_settings(f)
    assert "mqtt.bogus" in str(err.value) and str(f) in str(err.value)
    with pytest.raises(SettingsError, match="cannot read"):
        load_hub_settings(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("lanes", "message"),
    [
        ("[]", r"ingest\.lanes"),
        ('["priority", "priority"]', "each lane at most once"),
        ('["alarms"]', r"ingest\.lanes\.0: Input should be 'priority' or 'telemetry'"),
    ],
)
def test_ingest_lanes_are_checked(tmp_path: Path, lanes: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        dev_settings(tmp_path, "ingest", f"lanes = {lanes}")
    assert dev_settings(tmp_path, "ingest", 'lanes = ["telemetry"]').ingest.lanes == ["telemetry"]


def dev_settings(tmp_path: Path, table: str, body: str) -> HubSettings:
    """A dev hub's settings from a file with ``body`` in ``[hub.<table>]``."""
    f = tmp_path / "hub.toml"
    f.write_text(f'[hub]\nenv = "dev"\n[hub.{table}]\n{body}\n')
    return load_hub_settings(f)


@pytest.mark.parametrize(
    ("mqtt", "message"),
    [
        ('backend = "nats"', r'mqtt\.backend = "nats" needs mqtt\.nats_servers'),
        ('backend = "nats"\nnats_servers = ["http://n1:4222"]', r"mqtt\.nats_servers\[0\] = 'http://n1:4222': expected nats://"),
        ('backend = "nats"\nnats_servers = ["nats://n1:0"]', r"mqtt\.nats_servers\[0\]: 'n1:0': port 0 is outside"),
        ('servers = ["n1:1883", "n2:1883"]', r'several brokers: only mqtt\.backend = "nats"'),
        ('nats_servers = ["nats://n1:4222"]', r'mqtt\.nats_servers is only for mqtt\.backend = "nats"'),
        ('host = "n1"\nservers = ["n2"]', r"either mqtt\.servers or mqtt\.host, not both"),
        ('backend = "nats"\nnats_servers = ["nats://n1"]\nservers = ["n1", "n1"]', r"mqtt\.servers\[1\]: .* listed twice"),
    ],
)
def test_broker_backend_settings_are_checked(tmp_path: Path, mqtt: str, message: str) -> None:
    f = tmp_path / "hub.toml"
    f.write_text(f'[hub]\nenv = "dev"\n[hub.mqtt]\n{mqtt}\n')
    with pytest.raises(SettingsError, match=message):
        load_hub_settings(f)


def test_a_nats_cluster_is_several_mqtt_listeners_and_nats_urls(tmp_path: Path) -> None:
    f = tmp_path / "hub.toml"
    f.write_text(
        '[hub]\nenv = "dev"\n[hub.mqtt]\nbackend = "nats"\nport = 8883\n'
        'servers = ["n1", "n2:1884", "[::1]:1885"]\nnats_servers = ["nats://n1:4222", "tls://n2:4222"]\n'
    )
    mqtt = load_hub_settings(f).mqtt
    assert mqtt.addresses() == [("n1", 8883), ("n2", 1884), ("::1", 1885)]
    assert mqtt.ack_qos == 0  # NATS's default (QoS 1 goes through JetStream)
    assert load_hub_settings(f, mqtt={**mqtt.model_dump(exclude_unset=True), "ack_qos": 1}).mqtt.ack_qos == 1
    default = load_hub_settings(None, env="dev").mqtt
    assert default.addresses() == [("127.0.0.1", 1883)] and default.ack_qos == 1


STRONG = "Vq3-x9Lr_TmZ2pWk8sYb4n"


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("changeme", "a well-known default"),
        ("Password", "a well-known default"),
        ("Zx9-short", "too short (9 characters, at least 16)"),
        ("aaaaaaaaaaaaaaaaaaaaaaaa", "too predictable (~0 bits, at least 64)"),
        ("abababababababababababab", "too predictable (~24 bits, at least 64)"),
        ("password12345678", "too predictable (~63 bits, at least 64)"),
    ],
)
def test_weak_secrets(secret: str, why: str) -> None:
    assert secret_weakness(secret) == why


def test_strong_secrets() -> None:
    import secrets

    assert secret_weakness(STRONG) is None
    for _ in range(50):
        assert secret_weakness(secrets.token_urlsafe(24)) is None
        assert secret_weakness(secrets.token_hex(16)) is None


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        (
            "SAFEHOME_HUB_MQTT__PASSWORD",
            "hunter2hunter2",
            r"mqtt\.password / mqtt\.password_file is too short",
        ),
        (
            "SAFEHOME_HUB_ALARMS__SMS",
            '{"url": "http://sms", "token": "1234567890123456"}',
            r"alarms\.sms\.token is too predictable",
        ),
        (
            "SAFEHOME_HUB_SECRETS__KEY",
            "not-a-key",
            r"secrets\.key / secrets\.key_file: key 1 is not a Fernet key",
        ),
        ("SAFEHOME_HUB_SECRETS__KEY", DEV_KEY, "development key is refused outside dev"),
    ],
)
def test_weak_secrets_are_refused_outside_dev_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv("SAFEHOME_HUB_MQTT__PASSWORD", STRONG)
    monkeypatch.setenv("SAFEHOME_HUB_SECRETS__KEY", generate_key())
    assert load_hub_settings(None).env == "prod"
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError, match=message):
        load_hub_settings(None)
    assert load_hub_settings(None, env="dev").env == "dev"


def test_the_secrets_key_is_required_outside_dev(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SAFEHOME_HUB_MQTT__PASSWORD", STRONG)
    with pytest.raises(SettingsError, match=r"secrets\.key_file \(or SAFEHOME_HUB_SECRETS__KEY\) is missing"):
        load_hub_settings(None)
    keys = tmp_path / "secrets.key"
    new, old = generate_key(), generate_key()
    keys.write_text(f"{new}\n{old}\n")
    s = load_hub_settings(None, secrets={"key_file": keys})
    assert s.secrets.keys() == [new, old]
    assert s.secret_box().open(SecretBox([old]).seal("x" * 40)) == "x" * 40  # an old key still opens
    assert load_hub_settings(None, env="dev").secret_box().open(SecretBox([DEV_KEY]).seal("y")) == "y"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.10", "hub.example.org"])
def test_plain_http_off_loopback_is_refused_outside_dev(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("SAFEHOME_HUB_MQTT__PASSWORD", STRONG)
    monkeypatch.setenv("SAFEHOME_HUB_SECRETS__KEY", generate_key())
    with pytest.raises(SettingsError, match=r"http\.host = .* is not loopback and http\.tls_certfile"):
        load_hub_settings(None, http={"host": host})
    assert load_hub_settings(None, env="dev", http={"host": host}).http.host == host
    tls = {"tls_certfile": "/etc/hub.crt", "tls_keyfile": "/etc/hub.key"}
    assert load_hub_settings(None, http={"host": host, **tls}).http.tls
    assert not load_hub_settings(None, http={"host": host, "enabled": False}).http.enabled


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_tls(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("SAFEHOME_HUB_MQTT__PASSWORD", STRONG)
    monkeypatch.setenv("SAFEHOME_HUB_SECRETS__KEY", generate_key())
    assert load_hub_settings(None, http={"host": host}).http.host == host


def test_tls_cert_and_key_go_together() -> None:
    with pytest.raises(SettingsError, match=r"tls_certfile and http\.tls_keyfile go together"):
        load_hub_settings(None, env="dev", http={"tls_certfile": "/etc/hub.crt"})


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ("access_ttl_s = 30", r"auth\.access_ttl_s"),
        ("access_ttl_s = 86400", r"auth\.access_ttl_s"),
        ("refresh_ttl_s = 2592000", r"auth\.refresh_ttl_s"),
        ("access_ttl_s = 3600\nrefresh_ttl_s = 1800", "must not be shorter than auth.access_ttl_s"),
        ("argon2_memory_kib = 1024", r"auth\.argon2_memory_kib"),
        ("argon2_memory_kib = 19456\nargon2_time_cost = 1", "argon2_time_cost must be at least 2"),
        ("argon2_parallelism = 0", r"auth\.argon2_parallelism"),
    ],
)
def test_token_lifetimes_and_argon2_cost_are_bounded(tmp_path: Path, auth: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        dev_settings(tmp_path, "auth", auth)
    one_pass = dev_settings(tmp_path, "auth", "argon2_memory_kib = 47104\nargon2_time_cost = 1")
    assert one_pass.auth.hasher().memory_cost == 47104  # OWASP's one-pass figure
