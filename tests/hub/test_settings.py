"""Hub settings: TOML + env, nested env names, default secrets refused outside dev."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.settings import SettingsError, load_hub_settings


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
    with pytest.raises(SettingsError, match="mqtt password is missing"):
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
    f = tmp_path / "hub.toml"
    f.write_text(f'[hub]\nenv = "dev"\n[hub.ingest]\nlanes = {lanes}\n')
    with pytest.raises(SettingsError, match=message):
        load_hub_settings(f)
    f.write_text('[hub]\nenv = "dev"\n[hub.ingest]\nlanes = ["telemetry"]\n')
    assert load_hub_settings(f).ingest.lanes == ["telemetry"]
