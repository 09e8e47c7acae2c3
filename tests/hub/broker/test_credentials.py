"""Gateway credentials created, rotated and revoked on a running broker (SIGHUP, no restart)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import protocols as p
from hub.broker.credentials import Credentials, PasswordFile, hash_password, reload_broker, verify_password
from hub.broker.errors import BrokerError, CredentialError
from safehome.testing.poll import wait_for
from tests.support.hub_mqtt import SecuredBroker


def test_hash_is_mosquitto_compatible(tmp_path: Path) -> None:
    """Our hash verifies a mosquitto_passwd line, and mosquitto_passwd keeps our lines."""
    path = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "gw-x", "s3cret"], check=True)
    pf = PasswordFile(path)
    assert verify_password("s3cret", pf.read()["gw-x"])
    assert not verify_password("other", pf.read()["gw-x"])
    pf.set("gw-y", "mine")
    subprocess.run(["mosquitto_passwd", "-b", str(path), "gw-z", "theirs"], check=True)
    entries = pf.read()
    assert set(entries) == {"gw-x", "gw-y", "gw-z"}
    assert verify_password("mine", entries["gw-y"])
    assert hash_password("a", salt=b"0" * 12) == hash_password("a", salt=b"0" * 12)


def test_reserved_and_invalid_ids_are_refused(secured: SecuredBroker) -> None:
    for bad in ("hub", "root", "Gw-1", "gw/1", "+", ""):
        with pytest.raises(CredentialError):
            secured.credentials.create(bad)
    secured.gateway("cred-dup")
    with pytest.raises(CredentialError, match="already"):
        secured.credentials.create("cred-dup")
    with pytest.raises(CredentialError, match="no credentials"):
        secured.credentials.revoke("cred-never")
    with pytest.raises(CredentialError, match="no credentials"):
        secured.credentials.rotate("cred-never")


def test_create_rotate_revoke_without_restart(secured: SecuredBroker) -> None:
    gw = "cred-gw-1"
    pid = secured.broker.proc.pid if secured.broker.proc else None
    hub = secured.hub_client(client_id="cred-hub").connect()
    hub.subscribe(f"{p.ROOT}/gw/+/status")

    # not yet created: refused
    assert secured.client(gw, "guess", client_id=gw).connect(expect_ok=False).refused

    pw1 = secured.gateway(gw)
    wait_for(
        lambda: not secured.client(gw, pw1, client_id=gw).connect(expect_ok=False).refused,
        what="new credentials accepted after reload",
    )
    a = secured.client(gw, pw1, client_id=gw).connect()
    a.publish(str(p.Topic.of(gw, "status")), b"one")
    assert hub.get().payload == b"one"

    # rotate: the connected session is dropped, the old password refused, the new one works
    pw2 = secured.credentials.rotate(gw)
    assert pw2 != pw1
    wait_for(lambda: bool(a.disconnects), what="old session disconnected after rotate")
    a.c.loop_stop()
    assert secured.client(gw, pw1, client_id=gw).connect(expect_ok=False).refused
    b = secured.client(gw, pw2, client_id=gw).connect()
    b.publish(str(p.Topic.of(gw, "status")), b"two")
    assert hub.get().payload == b"two"

    # revoke: disconnected and refused from then on
    secured.credentials.revoke(gw)
    wait_for(lambda: bool(b.disconnects), what="session disconnected after revoke")
    b.c.loop_stop()
    assert secured.client(gw, pw2, client_id=gw).connect(expect_ok=False).refused

    # the broker never restarted and the hub stayed connected throughout
    assert secured.broker.proc is not None and secured.broker.proc.pid == pid
    assert secured.broker.proc.poll() is None
    assert hub.disconnects == []
    hub.close()


def test_a_stale_pid_file_is_never_signalled(tmp_path: Path) -> None:
    """The pid file names an unrelated process (pid reuse): refuse, do not SIGHUP it."""
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        pid_path = tmp_path / "mosquitto.pid"
        pid_path.write_text(f"{sleeper.pid}\n")
        with pytest.raises(BrokerError, match="not mosquitto: not signalled"):
            reload_broker(pid_path)
        creds = Credentials(PasswordFile(tmp_path / "passwd"), pid_path)
        with pytest.raises(BrokerError, match=r"credentials changed .* not reloaded"):
            creds.create("stale-gw")
        assert sleeper.poll() is None  # still alive
        assert PasswordFile(tmp_path / "passwd").users() == ["stale-gw"]
    finally:
        sleeper.kill()
        sleeper.wait()
