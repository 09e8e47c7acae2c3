"""The `safehome_gateway` role, run for real against a Debian bookworm root made with
debootstrap (connection ``community.general.chroot``): the first run changes, the second
changes nothing; files, modes, owners and the unit are checked. Then the agent the role
installed is started inside that root (mock pins) against a test hub, and an installer's
walk test passes end to end: provision → role → agent → walk test → sign-off."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hub.db.engine import make_engine, make_session_factory
from hub.db.migrate import upgrade
from hub.runner import build_hub
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from safehome.testing.registry import seed_small_district
from tests.hub.conftest import worker_settings
from tests.hub.provision.conftest import Site, write_broker_toml
from tests.support import chroot
from tests.support.hub_mqtt import SecuredBroker, start_secured_broker

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="chroot and debootstrap need root (CI runs as root)"),
    pytest.mark.skipif(shutil.which("debootstrap") is None, reason="debootstrap missing: `make apt` installs it"),
    pytest.mark.skipif(not (BIN / "ansible-playbook").exists(), reason="ansible missing: `make venv` installs it"),
]


def playbook(root: Path, bundles: Path, wheelhouse: Path, tmp: Path) -> str:
    """Run site-gateways.yml on the chroot; its output (the recap says what changed)."""
    inventory = tmp / "inventory.json"
    inventory.write_text(json.dumps({"gateways": {"hosts": {"gw-1": {
        "ansible_connection": "community.general.chroot",
        "ansible_host": str(root),
        "ansible_python_interpreter": "/usr/bin/python3",
    }}}}))
    extra = {
        "ansible_become": False,  # root already; the chroot has no sudo
        "safehome_gateway_bundles": str(bundles),
        "safehome_gateway_wheelhouse": str(wheelhouse),
        "safehome_gateway_manage_services": False,  # no systemd runs in a chroot
        "safehome_gateway_ntp_servers": ["ntp1.district.example", "ntp2.district.example"],
        "safehome_gateway_mqtt_port": 8883,
    }
    env = dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"), PATH=f"{BIN}:{os.environ['PATH']}")
    r = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), str(ANSIBLE / "site-gateways.yml"),
         "-e", json.dumps(extra)],
        capture_output=True, text=True, env=env, timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    return r.stdout


def recap(output: str) -> dict[str, int]:
    m = re.search(r"gw-1\s*:\s*(.*)$", output.split("PLAY RECAP")[-1], re.M)
    assert m, output[-2000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def ids(root: Path, db: str, name: str) -> int:
    for line in (root / "etc" / db).read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    raise AssertionError(f"{name} not in {db}")


def owner(root: Path, rel: str) -> tuple[int, int, int]:
    st = (root / rel).stat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def check_installed(root: Path, bundles: Path) -> None:
    """Files, modes, owners, unit, system settings the role left in the root."""
    uid, gid = ids(root, "passwd", "safehome"), ids(root, "group", "safehome")
    assert owner(root, "etc/safehome/edge.toml") == (uid, gid, 0o600)
    assert owner(root, "etc/safehome") == (0, gid, 0o750)
    assert owner(root, "var/lib/safehome-edge") == (uid, gid, 0o750)
    assert owner(root, "opt/safehome/.venv/bin/safehome")[0] == 0  # the agent cannot rewrite itself
    assert (root / "etc/safehome/edge.toml").read_bytes() == (bundles / "bundle-gw-1/edge.toml").read_bytes()
    members = {ln.split(":")[0]: ln.split(":")[3].split(",") for ln in (root / "etc/group").read_text().splitlines()}
    assert "safehome" in members["gpio"] and "safehome" in members["spi"]
    [account] = [ln for ln in (root / "etc/passwd").read_text().splitlines() if ln.startswith("safehome:")]
    assert account.endswith(":/opt/safehome:/usr/sbin/nologin")

    unit = (root / "etc/systemd/system/safehome-edge.service").read_text()
    for line in ("Type=notify", "WatchdogSec=30", "Restart=always", "User=safehome",
                 "ExecStart=/opt/safehome/.venv/bin/safehome edge run --config /etc/safehome/edge.toml"):
        assert line in unit.splitlines(), line
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert (wants / "safehome-edge.service").is_symlink()
    assert (root / "etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service").is_symlink()
    assert (root / "etc/systemd/system/sysinit.target.wants/nftables.service").is_symlink()
    assert "RuntimeWatchdogSec=15s" in (root / "etc/systemd/system.conf.d/safehome-watchdog.conf").read_text()
    assert "dtparam=watchdog=on" in (root / "boot/firmware/config.txt").read_text().splitlines()
    assert "NTP=ntp1.district.example ntp2.district.example" in (
        root / "etc/systemd/timesyncd.conf.d/safehome.conf").read_text().splitlines()
    journald = (root / "etc/systemd/journald.conf.d/safehome.conf").read_text().splitlines()
    assert "Storage=volatile" in journald and "RateLimitBurst=1000" in journald
    nft = (root / "etc/nftables.conf").read_text()
    assert "type filter hook output priority filter; policy drop;" in nft
    assert "tcp dport 8883 accept" in nft and "udp dport 123 accept" in nft
    check = subprocess.run([CHROOT, str(root), "nft", "-c", "-f", "/etc/nftables.conf"], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stderr  # syntax-checked only (-c): the host's rules are untouched


def start_agent(root: Path, boot: dict[str, object]) -> subprocess.Popen[str]:
    """The agent the role installed, as its service account, inside the root, on mock pins
    driven over stdin (firmware_sim's simulated Pi, shipped in the same wheel)."""
    return subprocess.Popen(
        [CHROOT, "--userspec=safehome:safehome", str(root), "/opt/safehome/.venv/bin/python", "-m",
         "firmware_sim.firmware.pi_main", json.dumps(boot)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/opt/safehome", "LANG": "C.UTF-8"},
    )


@pytest.fixture
def secured(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> SecuredBroker:
    return start_secured_broker(mosquitto_factory, tmp_path / "secured")


@pytest.fixture
def site(secured: SecuredBroker, tmp_path: Path) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        seed_small_district(make_session_factory(engine))
    finally:
        engine.dispose()
    (secured.directory / "hub.password").write_text(secured.hub_password + "\n")
    toml = write_broker_toml(secured.directory, secured.broker.port)
    toml.write_text(toml.read_text().replace('user = "nobody"', 'user = "root"'))
    yield Site(url, secured.directory, toml, tmp_path)


async def test_gateway_role_in_a_chroot_then_walk_test_end_to_end(
    secured: SecuredBroker, site: Site, tmp_path: Path
) -> None:
    # 1. provision on the hub: the bundle the role installs
    bundles = tmp_path / "bundles"
    r = site.run("gateway", "--home", "home-1", "--hub-host", "127.0.0.1", "--hub-port", str(secured.broker.port),
                 "--no-tls", "-o", str(bundles / "bundle-gw-1"))
    assert r.exit_code == 0, r.output
    t0 = time.monotonic()
    wheels = await asyncio.to_thread(chroot.wheelhouse, ROOT, tmp_path / "wheelhouse", sys.executable)
    root = await asyncio.to_thread(chroot.fresh_root, tmp_path / "root")

    # 2. the role, twice
    t1 = time.monotonic()
    first = recap(await asyncio.to_thread(playbook, root, bundles, wheels, tmp_path))
    t2 = time.monotonic()
    assert first["failed"] == 0 and first["changed"] > 10, first
    second = await asyncio.to_thread(playbook, root, bundles, wheels, tmp_path)
    assert recap(second)["changed"] == 0, second[-4000:]
    print(f"wheelhouse + root {t1 - t0:.0f} s, first run {t2 - t1:.0f} s, second run {time.monotonic() - t2:.0f} s")

    await asyncio.to_thread(check_installed, root, bundles)

    # 3. the installed agent, as its service account, inside the root, against the test hub
    hub = build_hub(worker_settings(secured, site.db_url))
    await hub.start()
    boot: dict[str, object] = {"config": "/etc/safehome/edge.toml", "wiring": [], "overrides": {
        "pin_factory": "mock", "state_dir": "/tmp/safehome-edge", "time_sync": "assume_synced",
        "watchdog": False, "poll_ms": 10}}
    agent = await asyncio.to_thread(start_agent, root, boot)
    try:
        assert agent.stdout is not None and agent.stdin is not None
        ready = await asyncio.to_thread(agent.stdout.readline)
        assert ready.strip() == "READY", ready + (agent.stderr.read() if agent.stderr else "")
        walk = asyncio.create_task(asyncio.to_thread(site.run, "walktest", "gw-1", "--timeout", "120",
                                                     "--poll", "0.2"))

        def started() -> bool:
            from hub.provision.models import ProvisionedGateway

            with hub.session_factory() as s:
                rec = s.get(ProvisionedGateway, "gw-1")
                return rec is not None and rec.walktest_started_at is not None
        await until(started, 30, "walk test started")
        for sensor, role, value in (("smoke-1", "contact", 1.0), ("panic-1", "button", 1.0),
                                    ("panic-1", "button", 0.0)):
            agent.stdin.write(json.dumps({"t": 0, "sensor": sensor, "role": role, "value": value}) + "\n")
            agent.stdin.flush()
            await asyncio.sleep(0.3)  # a press is held longer than the debounce, as a finger would
        result = await asyncio.wait_for(walk, 180)
        assert result.exit_code == 0, result.output
        assert "walk test PASSED: 2 sensors" in result.output
        signoff = await asyncio.to_thread(site.run, "signoff", "gw-1")
        assert signoff.exit_code == 0, signoff.output
    finally:
        if agent.stdin is not None:
            agent.stdin.close()
        try:
            await asyncio.to_thread(agent.wait, 20)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        for pipe in (agent.stdout, agent.stderr):
            if pipe is not None:
                pipe.close()
        await hub.stop()
