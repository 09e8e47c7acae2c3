"""The supervision core: silence deadlines with a controlled clock, no database, no network."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from hub.db.state import ConditionKind as K
from hub.supervision.core import GatewayView, Key, Policy, SensorView, Transition, evaluate

T0 = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)
P = Policy()


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def gw(last_s: float | None, online: bool = True, hb: int | None = 30, since_s: float = 0) -> GatewayView:
    return GatewayView("gw-1", online, at(last_s) if last_s is not None else None, hb, at(since_s))


def run(
    now_s: float, gws: list[GatewayView], sensors: Sequence[SensorView] = (), open_keys: set[Key] | None = None
) -> list[Transition]:
    return evaluate(at(now_s), gws, sensors, open_keys or set(), P)


def keys(ts: list[Transition]) -> list[tuple[str, str, str | None]]:
    return [(t.action.value, t.kind.value, t.sensor_id) for t in ts]


@pytest.mark.parametrize(
    ("heartbeat_s", "deadline"), [(30, 55.0), (20, 45.0), (1, 30.0), (3600, 55.0), (None, 55.0)]
)
def test_deadline_derives_from_heartbeat_within_the_floor(heartbeat_s: int | None, deadline: float) -> None:
    assert P.gateway_deadline_s(heartbeat_s) == deadline


def test_silent_gateway_is_reported_within_60_s_of_its_last_message() -> None:
    assert run(55, [gw(0)]) == []
    out = run(55.5, [gw(0)])
    assert keys(out) == [("open", "gateway_silent", None)]
    assert "deadline 55 s" in out[0].detail
    # the worst case: the tick lands 1 s late, still within the 60 s floor
    assert keys(run(56.9, [gw(0)])) == [("open", "gateway_silent", None)]


def test_silent_gateway_is_restored_when_heard_again() -> None:
    open_keys: set[Key] = {(K.GATEWAY_SILENT.value, "gw-1", None)}
    assert keys(run(100, [gw(99)], open_keys=open_keys)) == [("restore", "gateway_silent", None)]
    assert run(100, [gw(10)], open_keys=open_keys) == []  # still silent: nothing new


def test_never_heard_gateway_counts_from_since() -> None:
    assert run(50, [gw(None, since_s=0)]) == []
    assert keys(run(56, [gw(None, since_s=0)])) == [("open", "gateway_silent", None)]


def test_last_will_opens_offline_after_grace_and_blips_raise_nothing() -> None:
    assert run(5, [gw(0, online=False)]) == []  # within offline_grace_s: maybe a blip
    assert keys(run(10, [gw(0, online=False)])) == [("open", "gateway_offline", None)]
    open_keys: set[Key] = {(K.GATEWAY_OFFLINE.value, "gw-1", None)}
    assert run(300, [gw(0, online=False)], open_keys=open_keys) == []  # one outage, one condition
    assert keys(run(300, [gw(299)], open_keys=open_keys)) == [("restore", "gateway_offline", None)]


def test_silent_then_last_will_keeps_one_condition() -> None:
    open_keys: set[Key] = {(K.GATEWAY_SILENT.value, "gw-1", None)}
    assert run(120, [gw(0, online=False)], open_keys=open_keys) == []
    assert keys(run(120, [gw(119)], open_keys=open_keys)) == [("restore", "gateway_silent", None)]


def sensor(last_s: float | None, interval_s: int = 60, sid: str = "smoke-1") -> SensorView:
    return SensorView("gw-1", sid, interval_s, at(last_s) if last_s is not None else None, at(0))


def test_sensor_silent_past_interval_and_restored() -> None:
    alive = gw(1000)
    assert run(1000, [alive], [sensor(880)]) == []  # 120 s = interval 60 + grace 60
    assert keys(run(1000, [alive], [sensor(879)])) == [("open", "sensor_silent", "smoke-1")]
    open_keys: set[Key] = {(K.SENSOR_SILENT.value, "gw-1", "smoke-1")}
    assert keys(run(1000, [alive], [sensor(999)], open_keys)) == [("restore", "sensor_silent", "smoke-1")]
    assert run(1000, [alive], [sensor(None)], open_keys) == []


def test_sensors_of_a_down_gateway_do_not_flood() -> None:
    dead = gw(0)
    out = run(1000, [dead], [sensor(0, sid="smoke-1"), sensor(0, sid="gas-1")])
    assert keys(out) == [("open", "gateway_silent", None)]
    # already open sensor conditions stay open (not restored) while the gateway is down
    open_keys: set[Key] = {(K.SENSOR_SILENT.value, "gw-1", "gas-1")}
    assert keys(run(1000, [dead], [sensor(0, sid="gas-1")], open_keys)) == [("open", "gateway_silent", None)]


def offline(last_s: float, will_s: float | None) -> GatewayView:
    return GatewayView("gw-1", False, at(last_s), 30, at(0), "lwt", at(will_s) if will_s is not None else None)


def test_last_will_grace_counts_from_the_last_will_not_from_the_last_traffic() -> None:
    # heard 25 s before a Last-Will: a blip that comes back within 10 s raises nothing
    assert run(30, [offline(0, will_s=25)]) == []
    assert run(34.9, [offline(0, will_s=25)]) == []
    out = run(35, [offline(0, will_s=25)])
    assert keys(out) == [("open", "gateway_offline", None)]
    assert "(lwt) 10 s ago, last heard 35 s ago" in out[0].detail
    # a row written before the hub recorded when the Last-Will came: counts from last heard
    assert keys(run(10, [offline(0, will_s=None)])) == [("open", "gateway_offline", None)]


def clocked(offset_s: float | None) -> GatewayView:
    return GatewayView("gw-1", True, at(99), 30, at(0), clock_offset_s=offset_s)


def test_clock_suspect_opens_past_the_tolerance_either_way_and_restores_within_it() -> None:
    assert run(100, [clocked(119.0)]) == [] and run(100, [clocked(-119.0)]) == []
    ahead = run(100, [clocked(3600.0)])
    assert keys(ahead) == [("open", "clock_suspect", None)] and "3600 s ahead of" in ahead[0].detail
    behind = run(100, [clocked(-200.0)])
    assert keys(behind) == [("open", "clock_suspect", None)] and "200 s behind" in behind[0].detail
    open_keys: set[Key] = {(K.CLOCK_SUSPECT.value, "gw-1", None)}
    assert run(100, [clocked(3600.0)], open_keys=open_keys) == []  # open once
    assert run(100, [clocked(None)], open_keys=open_keys) == []  # nothing measured anew: kept
    assert keys(run(100, [clocked(0.2)], open_keys=open_keys)) == [("restore", "clock_suspect", None)]


def test_a_blip_within_the_grace_raises_nothing_at_any_tick() -> None:
    # The fault matrix's Last-Will blip: heard by its last heartbeat up to 30 s before the
    # cut, Last-Will at the cut, birth up to 9 s later. Neither condition opens at any tick
    # from the cut until a heartbeat after the birth is due: a gateway_silent in that run
    # needs 55 s of silence, so the hub had heard nothing for 45 s before the cut already.
    for heard_before_s in range(31):
        for birth_s in range(1, 10):
            for tick in range(0, birth_s + 31):
                if tick < birth_s:
                    view = offline(-heard_before_s, will_s=0)
                else:
                    view = GatewayView("gw-1", True, at(birth_s), 30, at(-100), status_at=at(birth_s))
                assert run(tick, [view]) == [], (heard_before_s, birth_s, tick)
