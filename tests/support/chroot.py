"""A Debian bookworm root made with ``debootstrap``, cached as a tarball, for testing the
Ansible roles for real (connection ``community.general.chroot``) without a Raspberry Pi.

The first build downloads ~60 MB from the Debian mirror (a few minutes); later runs unpack
the cached tarball (seconds). The cache key is the package list, so changing it rebuilds.
Cache directory: ``SAFEHOME_TEST_CACHE`` or ``~/.cache/safehome``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SUITE = "bookworm"
MIRROR = os.environ.get("SAFEHOME_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: What a Raspberry Pi OS Lite image has that minbase lacks, and the role installs (so the
#: role's apt task finds them present and the test needs no network after the first build).
PACKAGES = ("python3", "python3-venv", "nftables", "systemd", "systemd-timesyncd", "ca-certificates")


def cache_dir() -> Path:
    return Path(os.environ.get("SAFEHOME_TEST_CACHE", Path.home() / ".cache" / "safehome"))


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """One builder at a time (parallel test runs of several worktrees share the cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def base_tarball() -> Path:
    """The cached root filesystem as a tar file, built once with debootstrap."""
    key = hashlib.sha256(f"{SUITE} {' '.join(PACKAGES)}".encode()).hexdigest()[:12]
    cache = cache_dir()
    tar = cache / f"{SUITE}-{key}.tar"
    with locked(cache / ".chroot.lock"):
        if tar.exists():
            return tar
        root = cache / f"build-{key}"
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), MIRROR],
            check=True, capture_output=True, timeout=1800,
        )
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", f"{tar}.tmp", "."], check=True)
        os.replace(f"{tar}.tmp", tar)
        shutil.rmtree(root, ignore_errors=True)
    return tar


def fresh_root(target: Path) -> Path:
    """A new root filesystem at ``target``, unpacked from the cached tarball."""
    target.mkdir(parents=True)
    subprocess.run(["tar", "--numeric-owner", "-C", str(target), "-xf", str(base_tarball())], check=True)
    # name resolution inside the root works as on the host (pip, apt are not needed, but
    # the agent resolves the hub's name)
    shutil.copyfile("/etc/resolv.conf", target / "etc" / "resolv.conf")
    return target


def wheelhouse(project: Path, target: Path, python: str) -> Path:
    """The project's wheel (built now) and its dependencies' wheels (cached by pyproject)."""
    # keyed by the runtime dependencies only: dev tools do not go into the wheelhouse
    wanted = tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
    deps = cache_dir() / f"wheelhouse-{hashlib.sha256(' '.join(wanted).encode()).hexdigest()[:12]}"
    with locked(cache_dir() / ".wheelhouse.lock"):
        if not deps.exists():
            tmp = deps.with_name(deps.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            subprocess.run([python, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w", str(tmp),
                            str(project)], check=True, capture_output=True, timeout=1800)
            for own in tmp.glob("safehome-*.whl"):
                own.unlink()
            os.replace(tmp, deps)
    target.mkdir(parents=True)
    for whl in deps.iterdir():
        os.link(whl, target / whl.name)
    subprocess.run([python, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps", "-w",
                    str(target), str(project)], check=True, capture_output=True, timeout=600)
    return target
