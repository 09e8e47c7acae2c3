"""A real full disk for edge tests: a small tmpfs mounted in the test's directory.

Mounting needs root (CI and `make test` run as root); elsewhere the tests that need it
are skipped, saying why. ``fill`` writes a filler file until the kernel says ENOSPC.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_disk(path: Path, size_kib: int = 1024) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a full disk needs a tmpfs mount, which needs root (CI runs as root)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (a container without CAP_SYS_ADMIN?): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> int:
    """Fill the filesystem holding ``path``; returns the bytes written."""
    written = 0
    chunk = b"\0" * 1024
    try:
        f = open(path / "filler", "ab", buffering=0)  # noqa: SIM115 - closed below; may fail already
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return 0
    with f:
        while True:
            try:
                n = f.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
            written += n or 0
    return written


def free(path: Path) -> None:
    """Make room again (the card was cleaned up)."""
    (path / "filler").unlink()
