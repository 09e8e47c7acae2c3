"""Which hub Config the agent applies live and which it refuses whole (pure)."""

from __future__ import annotations

from edge.configcheck import refusal, revision_of
from protocols import Config, SensorConfig

WIRED = {"smoke-1": "smoke-dry-contact", "panic-1": "panic-button"}


def cfg(*sensors: SensorConfig, revision: int = 5) -> Config:
    return Config(gw="gw-1", revision=revision, ts=1, heartbeat_s=20, sensors=list(sensors))


def sc(sid: str, model: str, enabled: bool = True) -> SensorConfig:
    return SensorConfig(id=sid, model=model, enabled=enabled)


def test_settings_only_or_matching_sensors_are_applied() -> None:
    assert refusal(cfg(), WIRED) is None
    assert refusal(cfg(sc("smoke-1", "smoke-dry-contact"), sc("panic-1", "panic-button")), WIRED) is None


def test_sensor_changes_are_refused_with_the_reason_and_revision() -> None:
    r = refusal(cfg(sc("smoke-1", "smoke-dry-contact"), sc("panic-1", "panic-button"), sc("gas-7", "gas-detector")), WIRED)
    assert r is not None and (r.revision, r.reason) == (5, "unknown_sensor")
    assert "gas-7" in r.detail and "new bundle" in r.detail
    r = refusal(cfg(sc("smoke-1", "gas-detector"), sc("panic-1", "panic-button")), WIRED)
    assert r is not None and r.reason == "model_mismatch"
    assert "smoke-1 is smoke-dry-contact, config says gas-detector" in r.detail
    r = refusal(cfg(sc("smoke-1", "smoke-dry-contact", enabled=False), sc("panic-1", "panic-button")), WIRED)
    assert r is not None and r.reason == "sensor_disabled"
    r = refusal(cfg(sc("smoke-1", "smoke-dry-contact")), WIRED)
    assert r is not None and r.reason == "missing_sensor" and "panic-1" in r.detail


def test_revision_of_an_invalid_payload() -> None:
    assert revision_of(b'{"revision": 9, "heartbeat_s": 1}') == 9
    assert revision_of(b"") is None and revision_of(b"[1]") is None
    assert revision_of(b'{"revision": true}') is None and revision_of(b'{"revision": -1}') is None
