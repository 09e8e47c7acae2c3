"""Building the isolation plugin: rebuilt only when its source changes, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.broker import plugin
from hub.broker.config import BrokerSettings, render_config
from hub.broker.errors import BrokerError


def test_built_once_per_source_version(tmp_path: Path) -> None:
    so = plugin.build(tmp_path / "iso.so")
    assert so.stat().st_size > 0
    before = so.stat().st_mtime_ns
    # same source: not rebuilt (a compiler that would fail is never called)
    assert plugin.build(so, cc=str(tmp_path / "no-such-cc")) == so
    assert so.stat().st_mtime_ns == before
    (tmp_path / "iso.so.src").write_text("another-version\n")
    with pytest.raises(BrokerError, match="cannot build"):
        plugin.build(so, cc=str(tmp_path / "no-such-cc"))


def test_missing_headers_name_the_packages(tmp_path: Path) -> None:
    cc = tmp_path / "cc"
    cc.write_text("#!/bin/sh\necho 'fatal error: mosquitto_broker.h: No such file or directory' >&2\nexit 1\n")
    cc.chmod(0o755)
    with pytest.raises(BrokerError, match="apt-get install gcc mosquitto-dev libmosquitto-dev"):
        plugin.build(tmp_path / "iso.so", cc=str(cc))
    assert not (tmp_path / "iso.so").exists()


def test_config_loads_the_plugin_with_the_protocol_channels() -> None:
    s = BrokerSettings(tls=False)
    text = render_config(s)
    assert f"plugin {s.plugin_path}" in text
    assert "plugin_opt_downlink ack,cmd,config" in text
    assert "plugin_opt_retain status" in text
    assert "plugin_opt_reserved_prefix hub-" in text
    assert "plugin_opt_root safehome/v1/gw/" in text
    assert "plugin_opt_hub_users hub\n" in text
