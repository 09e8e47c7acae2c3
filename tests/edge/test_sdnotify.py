"""sd_notify over a real unix datagram socket; WATCHDOG=1 only while the loop is healthy."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from edge.sdnotify import Notifier, watchdog_interval_s
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.edge.conftest import make_agent, running, settings_for


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(tmp_path / "notify.sock"))
    s.setblocking(False)
    yield s
    s.close()


def drain(s: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(s.recv(4096).decode())
        except BlockingIOError:
            return out


def test_notifier_sends_datagrams(notify_socket: socket.socket) -> None:
    n = Notifier(notify_socket.getsockname())
    assert n.notify("READY=1")
    assert drain(notify_socket) == ["READY=1"]
    assert not Notifier("").notify("READY=1")  # not under systemd: a no-op


def test_watchdog_interval() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({}) is None


async def test_agent_feeds_the_watchdog_only_while_healthy(
    tmp_path: Path,
    mosquitto: Mosquitto,
    mock_factory: MockFactory,
    notify_socket: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # 1 s → pings every 0.5 s
    s = settings_for(tmp_path, mosquitto, watchdog=True)
    agent = make_agent(s, mock_factory, notifier=Notifier(notify_socket.getsockname()))
    got: list[str] = []
    def pinged_twice() -> bool:
        got.extend(drain(notify_socket))
        return got.count("WATCHDOG=1") >= 2

    async with running(agent):
        await until(pinged_twice, what="watchdog pings")
        assert got[0] == "READY=1"
        assert agent.healthy()
        agent.healthy = lambda: False  # type: ignore[method-assign]  # as if the poll loop hung
        fed = agent.notifier.sent.count("WATCHDOG=1")
        await until(lambda: agent.watchdog_skipped >= 2, what="unhealthy periods")
        assert agent.notifier.sent.count("WATCHDOG=1") == fed
    assert "STOPPING=1" in agent.notifier.sent


def test_healthy_means_the_poll_loop_ran_recently(
    tmp_path: Path, mosquitto: Mosquitto, mock_factory: MockFactory
) -> None:
    agent = make_agent(settings_for(tmp_path, mosquitto), mock_factory)
    try:
        agent.last_poll = time.monotonic()
        assert agent.healthy()
        agent.last_poll = time.monotonic() - 60
        assert not agent.healthy()
    finally:
        agent.close()
