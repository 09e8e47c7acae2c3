"""Duty schedule at day/night boundaries and the routing plan built from it (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.alarms.errors import PolicyError
from hub.alarms.routing import (
    Contact,
    Recipient,
    RoutingContext,
    Webhook,
    dedupe_against,
    plan_route,
    tier_recipients,
)
from hub.alarms.schedule import DutyHours, Shift
from hub.notify.names import ChannelName
from protocols import AlarmClass

SH = "Asia/Shanghai"  # UTC+8, no DST


def local(h: int, m: int = 0, s: int = 0) -> datetime:
    """A Shanghai wall-clock time on 2026-03-01, as a UTC instant."""
    return datetime(2026, 3, 1, h, m, s, tzinfo=UTC) - timedelta(hours=8)


@pytest.mark.parametrize(
    ("at", "shift"),
    [
        (local(7, 59, 59), Shift.NIGHT),
        (local(8, 0, 0), Shift.DAY),
        (local(19, 59, 59), Shift.DAY),
        (local(20, 0, 0), Shift.NIGHT),
        (local(0, 0), Shift.NIGHT),
    ],
)
def test_day_night_boundaries_in_district_timezone(at: datetime, shift: Shift) -> None:
    assert DutyHours.of("08:00", "20:00", SH).shift_at(at) is shift


def test_day_window_across_midnight() -> None:
    d = DutyHours.of("22:00", "06:00", SH)
    assert d.shift_at(local(23)) is Shift.DAY and d.shift_at(local(5, 59)) is Shift.DAY
    assert d.shift_at(local(6)) is Shift.NIGHT and d.shift_at(local(21, 59)) is Shift.NIGHT


def test_dst_zone_uses_local_wall_clock() -> None:
    d = DutyHours.of("08:00", "20:00", "Europe/Berlin")
    # 2026-03-29 is the spring-forward day: 07:30 UTC is 09:30 local (CEST), a day before 08:30
    assert d.shift_at(datetime(2026, 3, 29, 6, 30, tzinfo=UTC)) is Shift.DAY
    assert d.shift_at(datetime(2026, 3, 28, 6, 30, tzinfo=UTC)) is Shift.NIGHT


def test_equal_bounds_are_staffed_around_the_clock() -> None:
    """docs/registry.md: day_start == day_end is a workstation staffed 24 h (it used to
    raise PolicyError here, and a smoke alarm of such a home was never raised)."""
    d = DutyHours.of("08:00", "08:00", SH)
    assert {d.shift_at(local(h, m)) for h in range(24) for m in (0, 59)} == {Shift.DAY}


def test_no_day_staff_is_night_around_the_clock() -> None:
    d = DutyHours.of(None, None, SH)
    assert {d.shift_at(local(h, m)) for h in range(24) for m in (0, 59)} == {Shift.NIGHT}


def test_no_day_staff_routes_to_the_subdistrict_center_by_day() -> None:
    ctx = RoutingContext(
        "pudong", "+86-d", SH, "sd-01", "+86-sd", "ws-1", "+86-ws", "+86-oncall", day_start=None, day_end=None
    )
    shift, recipients = plan_route(AlarmClass.ALARM, ctx, local(10))
    assert shift is Shift.NIGHT
    assert Recipient(ChannelName.CONSOLE, "subdistrict:sd-01", "subdistrict") in recipients
    assert Recipient(ChannelName.SMS, "+86-oncall", "workstation_oncall") in recipients


@pytest.mark.parametrize(
    ("a", "b", "tz"),
    [
        ("8:00", "25:00", SH),
        ("08:00", None, SH),
        (None, "20:00", SH),
        ("x", "20:00", SH),
        ("08:00", "20:00", "Mars/Base"),
    ],
)
def test_bad_schedules_are_refused(a: str | None, b: str | None, tz: str) -> None:
    with pytest.raises(PolicyError):
        DutyHours.of(a, b, tz)


def test_naive_instant_refused() -> None:
    with pytest.raises(PolicyError):
        DutyHours.of("08:00", "20:00", SH).shift_at(datetime(2026, 1, 1))


CTX = RoutingContext(
    district_id="pudong",
    district_phone="+86-d",
    timezone=SH,
    subdistrict_id="sd-01",
    subdistrict_phone="+86-sd",
    workstation_id="ws-0001",
    workstation_phone="+86-ws",
    workstation_oncall_phone="+86-oncall",
    home_id="home-1",
    emergency_contacts=(Contact("daughter", "+86-fam", "daughter"),),
    volunteers=(Contact("Li", "+86-vol"),),
    webhooks=(
        Webhook("http://ws1/hook", "workstation", "ws-0001"),
        Webhook("http://ws2/hook", "workstation", "ws-0002"),
        Webhook("http://sd1/hook", "subdistrict", "sd-01"),
        Webhook("http://pd/hook", "district", "pudong"),
    ),
)


def addr(rs: list[Recipient]) -> set[tuple[str, str]]:
    return {(r.channel, r.address) for r in rs}


def test_smoke_by_day_goes_to_workstation_console_and_phone_family_volunteers() -> None:
    shift, rs = plan_route(AlarmClass.ALARM, CTX, local(10))
    assert shift is Shift.DAY
    assert addr(rs) == {
        ("console", "workstation:ws-0001"),
        ("sms", "+86-ws"),
        ("voice", "+86-ws"),
        ("webhook", "http://ws1/hook"),
        ("webhook", "http://sd1/hook"),
        ("webhook", "http://pd/hook"),
        ("sms", "+86-fam"),
        ("sms", "+86-vol"),
    }
    assert all(r.tier == "initial" for r in rs)


def test_smoke_at_night_goes_to_oncall_and_subdistrict() -> None:
    shift, rs = plan_route(AlarmClass.ALARM, CTX, local(2))
    assert shift is Shift.NIGHT
    a = addr(rs)
    assert {
        ("console", "workstation:ws-0001"),
        ("voice", "+86-oncall"),
        ("console", "subdistrict:sd-01"),
        ("voice", "+86-sd"),
    } <= a
    assert ("sms", "+86-ws") not in a
    assert ("webhook", "http://ws2/hook") not in a  # another workstation's subscriber


def test_trouble_at_night_only_console() -> None:
    _, rs = plan_route(AlarmClass.TROUBLE, CTX, local(2))
    assert addr(rs) == {
        ("console", "workstation:ws-0001"),
        ("webhook", "http://ws1/hook"),
        ("webhook", "http://sd1/hook"),
        ("webhook", "http://pd/hook"),
    }


def test_unregistered_gateway_goes_to_district() -> None:
    ctx = RoutingContext(district_id="pudong", district_phone="+86-d", timezone=SH)
    _, rs = plan_route(AlarmClass.ALARM, ctx, local(10))
    assert ("console", "district:pudong") in addr(rs) and ("voice", "+86-d") in addr(rs)


def test_escalation_tiers_add_only_new_recipients() -> None:
    _, first = plan_route(AlarmClass.ALARM, CTX, local(10))
    more = dedupe_against(tier_recipients(CTX, "subdistrict", voice=True), addr(first))
    assert addr(more) == {("console", "subdistrict:sd-01"), ("sms", "+86-sd"), ("voice", "+86-sd")}
    assert all(r.tier == "subdistrict" for r in more)
    dist = tier_recipients(CTX, "district", voice=False)
    assert ("console", "district:pudong") in addr(dist) and ("voice", "+86-d") not in addr(dist)
