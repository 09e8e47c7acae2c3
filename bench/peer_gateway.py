"""The peer gateway for footprint comparisons: thingsboard-gateway, idle, on a local Mosquitto.

It is installed on demand into its own venv (``var/bench/tb-venv`` under the repository
root, git-ignored), never into the project's venv: its pinned dependencies are not ours.
Installing is idempotent (an existing venv with the right version is reused). Anything that
keeps the peer from being measured raises :class:`PeerUnavailable` with the reason, so the
caller can still record its own figures and say why the peer row is missing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TB_PACKAGE = "thingsboard-gateway"
TB_VERSION = "3.8.5"
TB_VENV = ROOT / "var" / "bench" / "tb-venv"
TB_TOKEN = "tb-bench"  # access token = MQTT username; found in the broker log on connect
INSTALL_TIMEOUT_S = 600.0


class PeerUnavailable(RuntimeError):
    """The peer gateway cannot be installed, started or connected; the message says why."""


def _tail(text: str, lines: int = 2) -> str:
    """The last lines of a tool's output, its ERROR lines if any, each cut to 200 characters."""
    all_lines = text.strip().splitlines()
    errors = [ln for ln in all_lines if ln.startswith("ERROR")]
    return "; ".join(ln[:200] for ln in (errors or all_lines)[-lines:])


def installed_version(venv: Path = TB_VENV) -> str | None:
    """The thingsboard-gateway version in ``venv``, or None if the venv or package is missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    probe = f"import importlib.metadata as m; print(m.version({TB_PACKAGE!r}))"
    r = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


def ensure_installed(venv: Path = TB_VENV, version: str = TB_VERSION) -> Path:
    """Install thingsboard-gateway==version into its own venv unless it is already there.

    Returns the ``thingsboard-gateway`` executable."""
    exe = venv / "bin" / "thingsboard-gateway"
    if installed_version(venv) == version and exe.exists():
        return exe
    print(f"installing {TB_PACKAGE}=={version} into {venv} (once) …", file=sys.stderr)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"{TB_PACKAGE}=={version}"],
    ]  # fmt: skip
    for cmd in steps:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PeerUnavailable(f"`{' '.join(cmd[:4])} …` failed: {e}") from e
        if r.returncode != 0:
            raise PeerUnavailable(
                f"`{' '.join(cmd[:4])} …` exited {r.returncode}: {_tail(r.stderr or r.stdout, 4)}"
            )
    if installed_version(venv) != version or not exe.exists():
        raise PeerUnavailable(f"{TB_PACKAGE}=={version} installed into {venv} but cannot be imported")
    return exe


def write_config(workdir: Path, host: str, port: int, venv: Path = TB_VENV) -> Path:
    """The package's own ``tb_gateway.json`` with only the broker, token and log config changed.

    Everything else stays at the shipped defaults (memory storage, statistics every 60 s,
    remote configuration on), no connectors: the gateway as it idles out of the box."""
    shipped = next(
        (venv / "lib").glob("python3*/site-packages/thingsboard_gateway/config/tb_gateway.json"), None
    )
    if shipped is None:
        raise PeerUnavailable(f"no thingsboard_gateway/config/tb_gateway.json under {venv}")
    cfg: dict[str, Any] = json.loads(shipped.read_text())
    cfg["thingsboard"].update(host=host, port=port)
    cfg["thingsboard"]["security"] = {"type": "accessToken", "accessToken": TB_TOKEN}
    cfg["connectors"] = []
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "tb_gateway.json").write_text(json.dumps(cfg, indent=2))
    logs = {  # one stream handler instead of the shipped ./logs/*.log rotating files
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"f": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "out": {"class": "logging.StreamHandler", "formatter": "f", "stream": "ext://sys.stdout"}
        },
        "root": {"level": "INFO", "handlers": ["out"]},
    }
    (workdir / "logs.json").write_text(json.dumps(logs, indent=2))
    return workdir


def start(exe: Path, workdir: Path) -> subprocess.Popen[bytes]:
    """Start the gateway in its own session (so :func:`stop` can end its whole group)."""
    out = (workdir / "gateway.out").open("wb")
    try:
        return subprocess.Popen(
            [str(exe)],
            cwd=workdir,
            env={**os.environ, "TB_GW_CONFIG_DIR": str(workdir)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as e:
        raise PeerUnavailable(f"cannot start {exe}: {e}") from e
    finally:
        out.close()


def wait_connected(
    proc: subprocess.Popen[bytes], broker_log: Path, workdir: Path, within: float = 60.0
) -> float:
    """Poll the broker log until the gateway's MQTT session is up; seconds it took."""
    t0 = time.monotonic()
    needle = f"u'{TB_TOKEN}'"
    while True:
        if broker_log.exists() and needle in broker_log.read_text(errors="replace"):
            return time.monotonic() - t0
        out = workdir / "gateway.out"
        if proc.poll() is not None:
            raise PeerUnavailable(
                f"thingsboard-gateway exited {proc.returncode} before connecting: "
                f"{_tail(out.read_text(errors='replace') if out.exists() else '', 4)}"
            )
        if time.monotonic() - t0 > within:
            raise PeerUnavailable(f"thingsboard-gateway did not connect to the broker within {within:.0f} s")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the gateway's process group, SIGKILL it if it does not exit in time."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)
    try:  # children left in its group (none expected): end them too
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
