"""Health figures: CPU temperature, the local status file read by ``safehome edge status``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")


def cpu_temp_c(path: Path = THERMAL) -> float | None:
    """SoC temperature in °C where the kernel exposes it (Raspberry Pi does), else None."""
    try:
        value = round(int(path.read_text().strip()) / 1000, 1)
    except (OSError, ValueError):
        return None
    return value if -60 <= value <= 200 else None


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Atomically replace the status file (on tmpfs: no SD-card wear, no fsync)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, sort_keys=True, indent=1))
    os.replace(tmp, path)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
