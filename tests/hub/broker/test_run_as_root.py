"""docs/broker.md's commands, as root, on a fresh directory (issue 11 §6).

As root, Mosquitto drops to the `mosquitto` account before writing its pid file: a
root-owned directory made `broker run` fail ("Unable to write pid file"). And `broker run`
after `broker config --no-tls` needed an undocumented SAFEHOME_BROKER_TLS=false.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import protocols as p
from hub.mqtt import hub_client_id
from safehome.testing.mosquitto import Mosquitto, free_port
from safehome.testing.poll import wait_for
from tests.support.hub_mqtt import Client

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs the broker as root to see it drop to its user")


@pytest.fixture
def fresh_dir() -> Iterator[Path]:
    """A directory the `mosquitto` account can reach (pytest's tmp_path is 0700 root)."""
    base = Path(tempfile.mkdtemp(prefix="safehome-broker-root-", dir="/tmp"))
    base.chmod(0o755)
    yield base / "broker"
    shutil.rmtree(base, ignore_errors=True)


def _safehome(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "safehome", *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, f"safehome {' '.join(args)}: {done.stderr}"
    return done.stdout


def _run_broker(args: list[str], env: dict[str, str], port: int, directory: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "safehome", "broker", "run", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pid_file = directory / "run" / "mosquitto.pid"

    def up() -> bool:
        with socket.socket() as sock:
            return pid_file.exists() and sock.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(lambda: up() or proc.poll() is not None, within=20, what="broker listening, pid file written")
    except AssertionError:
        proc.kill()
        raise
    if proc.poll() is not None:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise AssertionError(f"broker run exited {proc.returncode}: {err[-1500:]}")
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr:
        proc.stderr.close()


def test_lab_config_then_run_as_root(fresh_dir: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path.cwd()), "SAFEHOME_BROKER_PLAIN_PORT": str(port)}
    env.pop("SAFEHOME_BROKER_TLS", None)
    _safehome("broker", "config", "--dir", str(fresh_dir), "--no-tls", env=env)
    proc = _run_broker(["--dir", str(fresh_dir)], env, port, fresh_dir)
    try:
        pid = int((fresh_dir / "run" / "mosquitto.pid").read_text())
        assert pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name == "mosquitto"  # dropped root
        gw = "root-gw-1"
        gw_pw = _safehome("broker", "gateway", "add", "--dir", str(fresh_dir), gw, env=env).strip()  # SIGHUP
        broker = Mosquitto(fresh_dir, port=port)  # only its host/port: the process is ours above
        hub = Client(broker, "hub", (fresh_dir / "hub.password").read_text().strip(),
                     client_id=hub_client_id("root")).connect()
        assert hub.subscribe(f"$share/hub/{p.ROOT}/gw/+/event") == [1]
        wait_for(lambda: not Client(broker, gw, gw_pw, client_id=gw).connect(expect_ok=False).refused,
                 what="gateway accepted after the reload")
        g = Client(broker, gw, gw_pw, client_id=gw).connect()
        g.publish(str(p.Topic.of(gw, "event")), b"as-root")
        assert hub.get().payload == b"as-root"
        assert g.subscribe(f"$share/hub/{p.ROOT}/gw/+/event") == [0x80]  # isolation plugin loaded
        for c in (g, hub):
            c.close()
    finally:
        _stop(proc)


def test_documented_toml_config_then_run_as_root(fresh_dir: Path) -> None:
    port = free_port()
    toml = fresh_dir.parent / "broker.toml"
    toml.write_text(f'directory = "{fresh_dir}"\ntls = false\nplain_port = {port}\n')
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    _safehome("broker", "config", "--config", str(toml), env=env)
    proc = _run_broker(["--config", str(toml)], env, port, fresh_dir)
    try:
        hub = Client(Mosquitto(fresh_dir, port=port), "hub", (fresh_dir / "hub.password").read_text().strip(),
                     client_id=hub_client_id("root-toml")).connect()
        hub.close()
    finally:
        _stop(proc)


def test_run_without_config_says_what_to_do(fresh_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    done = subprocess.run([sys.executable, "-m", "safehome", "broker", "run", "--dir", str(fresh_dir)],
                          capture_output=True, text=True, env=env)
    assert done.returncode != 0
    assert "run `safehome broker config` first" in done.stderr
