"""Packet loss on one loopback port with nftables (``numgen random``): this machine has no
``tc netem``. Needs root and the ``nft`` binary (Debian package nftables, `make setup`).
The rules live in a table of their own, named after this process, deleted on exit."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator


class LossUnavailable(RuntimeError):
    """nftables cannot be used here (not root, or no nft binary)."""


def _nft(*args: str) -> None:
    nft = shutil.which("nft") or "/usr/sbin/nft"
    try:
        subprocess.run([nft, *args], check=True, capture_output=True, text=True, timeout=30)
    except FileNotFoundError as exc:
        raise LossUnavailable("nft not found: install the Debian package nftables (make setup)") from exc
    except subprocess.CalledProcessError as exc:
        raise LossUnavailable(f"nft {' '.join(args)}: {exc.stderr.strip()}") from exc


@contextlib.contextmanager
def packet_loss(port: int, percent: int) -> Iterator[None]:
    """Drop ``percent`` % of the TCP segments to and from ``port`` on this host, both ways."""
    if not 0 < percent < 100:
        raise ValueError(f"loss must be between 1 and 99 %, not {percent}")
    if os.geteuid() != 0:
        raise LossUnavailable("packet loss needs root (nftables)")
    table = f"safehome_faults_{os.getpid()}"
    _nft("add", "table", "inet", table)
    try:
        _nft("add", "chain", "inet", table, "out", "{ type filter hook output priority 0; }")
        for direction in ("dport", "sport"):
            _nft("add", "rule", "inet", table, "out", "tcp", direction, str(port),
                 "numgen", "random", "mod", "100", "<", str(percent), "drop")  # fmt: skip
        yield
    finally:
        _nft("delete", "table", "inet", table)
