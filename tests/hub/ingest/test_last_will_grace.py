"""A real edge agent killed with SIGKILL and restarted (systemd does this; so does a router
blip): the Last-Will's grace counts from the Last-Will, not from the last traffic.

Real Mosquitto with the hub's ACL, the real ingest, the real agent process (``safehome
edge run``). The hub's clock is the real one plus an offset the test moves: the agent's
last traffic is made a minute old before each kill, so a grace counted from the last
traffic (the bug: a 0.8 s blip opened ``gateway_offline`` in 1.4 s) would open the
condition the moment the Last-Will is written.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hub.db.engine import make_session_factory
from hub.sinks import ConditionChange
from hub.supervision.service import SupervisionService
from safehome.testing.poll import until
from safehome.testing.toml import write_toml
from tests.hub.ingest.conftest import Clock, Worker, gateway_state
from tests.support.hub_mqtt import SecuredBroker

ROOT = Path(__file__).resolve().parents[3]
GRACE_S = 30.0  # well above how long a restart of the agent takes on a loaded machine


class AgentProcess:
    """``safehome edge run`` in a child process (MockFactory pins)."""

    def __init__(self, tmp_path: Path, secured: SecuredBroker, gw: str) -> None:
        top = {
            "gateway_id": gw,
            "environment": "development",
            "data_dir": str(tmp_path / "data"),
            "state_dir": str(tmp_path / "run"),
            "pin_factory": "mock",
            "poll_ms": 50,
            "time_sync": "assume_synced",
            "heartbeat_s": 3600,  # no heartbeat during the test: the birth is the last traffic
            "telemetry_s": 3600,
        }
        mqtt = {
            "host": secured.broker.host,
            "port": secured.broker.port,
            "password": secured.gateway(gw),
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
        }
        devices = {"sensors": [{"id": "smoke-1", "model": "smoke-dry-contact"}], "outputs": []}
        self.config = write_toml(tmp_path / "edge.toml", top, mqtt, devices)
        self.proc: subprocess.Popen[str] | None = None
        self.errors: list[str] = []

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "safehome", "edge", "run", "--config", str(self.config)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker publishes the Last-Will
        self.proc.wait(10)
        self._reap()

    def _reap(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        self.errors.append(self.proc.stderr.read())
        self.proc.stderr.close()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self._reap()


@pytest.fixture
def agent(tmp_path: Path, secured: SecuredBroker) -> Iterator[AgentProcess]:
    a = AgentProcess(tmp_path, secured, "gw-grace-1")
    yield a
    a.stop()
    assert not any("Traceback" in e for e in a.errors), a.errors


def online(worker: Worker, gw: str) -> bool | None:
    st = gateway_state(worker, gw)
    return None if st is None else st.online


async def ticking_until(
    sup: SupervisionService, cond: Callable[[], bool], what: str, within: float = 60
) -> list[ConditionChange]:
    """Run supervision rounds while waiting (with a deadline) for ``cond``; every change
    they made, including one more round after ``cond`` held."""
    changes: list[ConditionChange] = []
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, f"timed out after {within}s waiting for {what}"
        changes += await sup.tick()
        await asyncio.sleep(0.05)
    return changes + await sup.tick()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the grace is not about the database
async def test_kill_9_and_restart_inside_the_grace_raises_nothing_outside_it_once(
    secured: SecuredBroker, worker: Worker, agent: AgentProcess
) -> None:
    gw = "gw-grace-1"
    clock = Clock()
    worker.service.clock = clock  # the ingest stamps receipt with the same clock
    settings = worker.settings.supervision.model_copy(
        update={
            "offline_grace_s": GRACE_S,
            "gateway_max_silence_s": 3600,
            "gateway_min_silence_s": 0.5,
            "clock_tolerance_s": 3600,  # the hub's clock is moved minutes ahead of the agent's
        }
    )
    sup = SupervisionService(settings, make_session_factory(worker.engine), worker.metrics, [worker.sink], clock)

    agent.start()
    await until(lambda: online(worker, gw) is True, within=60, what="birth stored")
    assert await sup.tick() == []

    # inside the grace: the birth was a minute ago, the agent dies and comes back
    clock.advance(60)
    agent.kill9()
    changes = await ticking_until(sup, lambda: online(worker, gw) is False, "Last-Will stored")
    agent.start()
    changes += await ticking_until(sup, lambda: online(worker, gw) is True, "birth after restart")
    assert changes == [], changes
    assert worker.sink.changes == []

    # outside the grace: raised once, restored once
    clock.advance(60)
    agent.kill9()
    changes = await ticking_until(sup, lambda: online(worker, gw) is False, "Last-Will stored")
    assert changes == []  # not yet: within the grace
    clock.advance(GRACE_S + 1)
    opened = await sup.tick()
    assert [(c.kind, c.state, c.gateway_id) for c in opened] == [("gateway_offline", "open", gw)]
    assert "lwt" in opened[0].detail
    assert await sup.tick() == []  # one outage, one condition
    agent.start()
    restored = await ticking_until(sup, lambda: online(worker, gw) is True, "birth after restart")
    assert [(c.kind, c.state) for c in restored] == [("gateway_offline", "restored")]
    assert [(c.kind, c.state) for c in worker.sink.changes] == [
        ("gateway_offline", "open"),
        ("gateway_offline", "restored"),
    ]
