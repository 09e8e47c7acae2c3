"""A real VictoriaMetrics for tests: own data dir, free loopback port.

It accepts the InfluxDB 2 write API (``/api/v2/write``; bucket and org are ignored, the
series is named ``<measurement>_<field>``). :meth:`VictoriaMetrics.export` reads series back
through ``/api/v1/export`` after ``/internal/force_flush``; :meth:`wait_for` polls it with a
deadline (a new series becomes visible after a second or so).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from safehome.testing.mosquitto import free_port, wait_port


def victoria_binary() -> str:
    path = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
    if not Path(path).exists():
        raise RuntimeError("victoria-metrics not found: run `make setup` (Debian package victoria-metrics)")
    return path


@dataclass
class VictoriaMetrics:
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> VictoriaMetrics:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "victoria.log").open("ab")
        self.proc = subprocess.Popen(
            [
                victoria_binary(),
                f"-storageDataPath={self.workdir / 'data'}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-retentionPeriod=100y",
                "-search.latencyOffset=0s",
                "-search.disableCache",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_port("127.0.0.1", self.port, timeout=20)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def export(self, match: str) -> list[dict[str, Any]]:
        """Series matching the PromQL selector ``match``, each with values and timestamps."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=10)
        resp = httpx.get(f"{self.url}/api/v1/export", params={"match[]": match}, timeout=10)
        resp.raise_for_status()
        return [json.loads(line) for line in resp.text.splitlines() if line.strip()]

    def count(self, match: str) -> int:
        return sum(len(series["values"]) for series in self.export(match))

    def wait_for(self, match: str, points: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Poll until at least ``points`` samples match; return the series."""
        deadline = time.monotonic() + timeout
        while True:
            series = self.export(match)
            if sum(len(s["values"]) for s in series) >= points:
                return series
            if time.monotonic() > deadline:
                got = sum(len(s["values"]) for s in series)
                raise TimeoutError(f"{match}: {got} of {points} points after {timeout}s")
            time.sleep(0.1)
