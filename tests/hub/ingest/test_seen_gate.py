"""The last-seen gate: traffic last-seen is written at most once per window per gateway and
sensor; status changes always pass; a failed write is let through again."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from hub.ingest.plan import GatewaySeen, SeenGate, StateBuffer
from hub.ingest.service import seen_write_every
from hub.settings import HubSettings, IngestSettings, SupervisionSettings

T0 = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)
S = ("gw-a", "smoke-1")


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def traffic(s: float) -> StateBuffer:
    return StateBuffer({}, {"gw-a": GatewaySeen(at(s), True, None, 1, False)}, {S: at(s)})


def status(s: float, online: bool) -> StateBuffer:
    g = GatewaySeen(at(s) if online else None, online, {"state": "online" if online else "offline"}, 2, False)
    return StateBuffer({}, {"gw-a": g}, {})


def test_traffic_is_written_once_per_window() -> None:
    gate = SeenGate(15)
    assert gate.admit(traffic(0)).sensors == {S: at(0)}
    assert not gate.admit(traffic(14.9))  # written 14.9 s ago: dropped
    got = gate.admit(traffic(15))
    assert got.sensors == {S: at(15)} and list(got.gateways) == ["gw-a"]


def test_status_always_passes_and_an_offline_lets_the_next_traffic_through() -> None:
    gate = SeenGate(15)
    gate.admit(traffic(0))
    assert list(gate.admit(status(1, online=True)).gateways) == ["gw-a"]
    assert list(gate.admit(status(2, online=False)).gateways) == ["gw-a"]
    assert list(gate.admit(traffic(3)).gateways) == ["gw-a"]  # online again: written at once
    assert not gate.admit(traffic(4)).gateways


def test_a_failed_write_is_admitted_again_and_seeds_always_pass() -> None:
    gate = SeenGate(15)
    first = gate.admit(traffic(0))
    gate.forget(first)
    assert gate.admit(traffic(1)).sensors == {S: at(1)}
    seed = StateBuffer({"gw-b": GatewaySeen(None, True, {"state": "online"})}, {}, {})
    assert gate.admit(seed).seeds == seed.seeds


def test_a_clock_stepped_back_writes() -> None:
    gate = SeenGate(15)
    gate.admit(traffic(100))
    assert gate.admit(traffic(50)).sensors == {S: at(50)}


def test_old_entries_are_pruned() -> None:
    gate = SeenGate(15)
    for i in range(100):
        gate.admit(StateBuffer({}, {}, {("gw-a", f"s-{i}"): at(0)}))
    gate.admit(StateBuffer({}, {}, {("gw-b", "x"): at(31)}))
    assert set(gate.sensors) == {("gw-b", "x")}


@given(st.lists(st.floats(min_value=0.01, max_value=40), min_size=1, max_size=60))
def test_what_is_written_lags_what_was_heard_by_less_than_the_window(gaps: list[float]) -> None:
    """Whatever the traffic, the written last-seen is never more than the window behind the
    last one heard: so a window under supervision's grace never makes a sensor look silent."""
    gate = SeenGate(15)
    t, written = 0.0, None
    for gap in gaps:
        t += gap
        got = gate.admit(traffic(t))
        if got.sensors:
            written = got.sensors[S]
        assert written is not None and at(t) - written < dt.timedelta(seconds=15)


def test_the_window_is_capped_by_supervisions_grace() -> None:
    def hub(every: float, sensor_grace: float, min_silence: float) -> HubSettings:
        return HubSettings(
            ingest=IngestSettings(seen_write_every_s=every),
            supervision=SupervisionSettings(sensor_grace_s=sensor_grace, gateway_min_silence_s=min_silence),
        )

    assert seen_write_every(hub(15, 60, 30)) == 15
    assert seen_write_every(hub(15, 10, 30)) == 5
    assert seen_write_every(hub(15, 60, 8)) == 4
    assert seen_write_every(hub(0, 60, 30)) == 0
