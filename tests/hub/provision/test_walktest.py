"""The walk test's evaluation (pure): reported, missing, wrong gateway."""

from __future__ import annotations

import datetime as dt

from hub.provision.walktest import Seen, evaluate

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def at(s: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


HOME = {"gw-1": ["panic-1", "smoke-1"], "gw-2": ["gas-1"]}


def test_every_sensor_reported_passes_with_first_report_times() -> None:
    seen = [Seen("gw-1", "smoke-1", "smoke", at(5)), Seen("gw-1", "panic-1", "panic", at(9)),
            Seen("gw-1", "smoke-1", "smoke", at(12))]
    r = evaluate("gw-1", HOME, seen)
    assert r.passed and r.missing == () and r.problems() == []
    assert r.reported == {"smoke-1": at(5), "panic-1": at(9)}


def test_a_sensor_that_never_reports_is_named() -> None:
    r = evaluate("gw-1", HOME, [Seen("gw-1", "smoke-1", "smoke", at(5))])
    assert not r.passed
    assert r.missing == ("panic-1",)
    assert r.problems() == ["panic-1: never reported to gw-1"]


def test_our_sensor_heard_by_another_gateway_fails_and_names_both() -> None:
    seen = [Seen("gw-1", "smoke-1", "smoke", at(1)), Seen("gw-2", "panic-1", "panic", at(2))]
    r = evaluate("gw-1", HOME, seen)
    assert not r.passed
    assert "panic-1: reported by gw-2, but the register puts it on gw-1" in r.problems()
    assert "panic-1: never reported to gw-1" in r.problems()


def test_our_gateway_reporting_another_gateways_sensor_fails() -> None:
    seen = [Seen("gw-1", s, "x", at(1)) for s in ("smoke-1", "panic-1")] + [Seen("gw-1", "gas-1", "gas", at(2))]
    r = evaluate("gw-1", HOME, seen)
    assert r.missing == ()
    assert not r.passed
    assert r.problems() == ["gas-1: reported by gw-1, but the register puts it on gw-2"]


def test_a_sensor_unknown_to_the_register_fails() -> None:
    seen = [Seen("gw-1", s, "x", at(1)) for s in ("smoke-1", "panic-1", "smoke-9")]
    r = evaluate("gw-1", HOME, seen)
    assert r.problems() == ["smoke-9: reported by gw-1, but the register has no such sensor on gw-1"]
    assert r.to_json()["passed"] is False


def test_the_other_gateways_own_sensors_are_not_our_business() -> None:
    seen = [Seen("gw-1", s, "x", at(1)) for s in ("smoke-1", "panic-1")] + [Seen("gw-2", "gas-1", "gas", at(3))]
    assert evaluate("gw-1", HOME, seen).passed
