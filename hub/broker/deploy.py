"""Put a deployment's broker files on disk and run Mosquitto with them."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hub.broker import plugin
from hub.broker.config import (
    HUB_USER,
    BrokerSettings,
    chown_for_broker,
    render_acl,
    render_config,
    write_text_atomic,
)
from hub.broker.credentials import PasswordFile, new_secret
from hub.broker.errors import BrokerError


@dataclass(frozen=True)
class Written:
    config: Path
    acl: Path
    passwords: Path
    hub_secret: Path
    hub_secret_created: bool


def write_deployment(s: BrokerSettings) -> Written:
    """Write mosquitto.conf and the ACL; create the password file with the hub account.

    Idempotent: gateway credentials and an existing hub password are kept. Builds the
    isolation and rate-limit plugins (:mod:`hub.broker.plugin`) when their source changed.
    """
    try:
        s.directory.mkdir(parents=True, exist_ok=True)
        # Mosquitto writes its pid file after dropping to `user`: a root-owned directory
        # made `broker run` fail as root ("Unable to write pid file").
        s.run_dir.mkdir(exist_ok=True)
        chown_for_broker(s.run_dir, s.user)
        plugin.build(s.plugin_path)
        plugin.build(s.ratelimit_path, source=plugin.RATELIMIT_SOURCE)
        if s.persistence:
            s.persistence_dir.mkdir(parents=True, exist_ok=True)
            chown_for_broker(s.persistence_dir, s.user)
        write_text_atomic(s.config_path, render_config(s), mode=0o640)
        chown_for_broker(s.config_path, s.user)
        write_text_atomic(s.acl_path, render_acl(), mode=0o640)
        chown_for_broker(s.acl_path, s.user)
        passwords = PasswordFile(s.password_path, owner=s.user)
        created = False
        if HUB_USER not in passwords.read() or not s.hub_secret_path.exists():
            secret = new_secret()
            write_text_atomic(s.hub_secret_path, secret + "\n", mode=0o600)
            passwords.set(HUB_USER, secret)
            created = True
        elif not s.password_path.exists():
            passwords.set(HUB_USER, s.hub_secret_path.read_text().strip())
    except OSError as exc:
        raise BrokerError(f"cannot write broker files in {s.directory}: {exc}") from exc
    return Written(s.config_path, s.acl_path, s.password_path, s.hub_secret_path, created)


def mosquitto_binary() -> str:
    path = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if path is None:
        raise BrokerError("mosquitto is not installed (Debian: apt-get install mosquitto)")
    return path


def run_argv(s: BrokerSettings) -> list[str]:
    return [mosquitto_binary(), "-c", str(s.config_path)]
