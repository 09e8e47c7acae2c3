"""Debounce, panic long-press cancel and level hysteresis: pure logic, no pins, no clock."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from devices.logic import Debouncer, FallingThreshold, LevelFilter, PanicAction, PanicButton, next_level


def test_debouncer_needs_a_stable_state() -> None:
    d = Debouncer(stable_s=0.2)
    assert d.update(True, 0.0) is None
    assert d.update(True, 0.1) is None
    assert d.update(True, 0.2) is True
    assert d.state is True
    assert d.update(True, 5.0) is None


def test_glitch_shorter_than_the_filter_is_ignored() -> None:
    d = Debouncer(stable_s=0.2)
    assert d.update(True, 0.0) is None
    assert d.update(False, 0.15) is None  # back before 200 ms: a glitch
    assert d.update(True, 0.3) is None  # a new candidate starts at 0.3
    assert d.update(True, 0.45) is None
    assert d.update(True, 0.5) is True


def test_bouncing_contact_settles_once() -> None:
    d = Debouncer(stable_s=50)  # units are whatever `now` uses: here integer ms
    changes = []
    t = 0
    for raw in [True, False, True, False, True] + [True] * 10:
        r = d.update(raw, t)
        if r is not None:
            changes.append((r, t))
        t += 10
    assert changes == [(True, 90)]


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 10))
def test_debouncer_never_reports_a_state_held_shorter_than_the_filter(samples: list[bool], k: int) -> None:
    d = Debouncer(stable_s=k)
    run_start = 0
    for i, raw in enumerate(samples):
        if i and samples[i - 1] != raw:
            run_start = i
        r = d.update(raw, i)
        if r is not None:
            assert r == raw
            assert i - run_start >= k


def test_panic_press_alarms_at_once_and_a_later_long_press_cancels() -> None:
    p = PanicButton(long_press_s=3.0)
    assert p.update(True, 0.0) is PanicAction.ALARM
    assert p.update(True, 10.0) is None  # holding the alarm press never cancels it
    assert p.update(False, 11.0) is None
    assert p.update(True, 20.0) is None
    assert p.update(True, 22.9) is None
    assert p.update(True, 23.0) is PanicAction.CANCEL
    assert p.update(True, 30.0) is None
    assert p.update(False, 31.0) is None
    assert not p.active
    assert p.update(True, 40.0) is PanicAction.ALARM  # a fresh press alarms again


def test_panic_short_press_while_active_alarms_again() -> None:
    p = PanicButton(long_press_s=3.0)
    assert p.update(True, 0.0) is PanicAction.ALARM
    assert p.update(False, 0.5) is None
    assert p.update(True, 5.0) is None
    assert p.update(False, 6.0) is PanicAction.ALARM


def test_panic_cancel_window_closes() -> None:
    p = PanicButton(long_press_s=3.0, cancel_window_s=60)
    p.update(True, 0.0)
    p.update(False, 1.0)
    assert p.update(True, 100.0) is PanicAction.ALARM  # window closed: a new alarm


def test_panic_without_cancel_every_press_alarms() -> None:
    p = PanicButton(long_press_s=None)
    assert p.update(True, 0.0) is PanicAction.ALARM
    assert p.update(True, 9.0) is None
    assert p.update(False, 10.0) is None
    assert p.update(True, 11.0) is PanicAction.ALARM


def test_level_hysteresis() -> None:
    f = LevelFilter((10.0, 20.0), hysteresis=3.0)
    assert f.update(5) is None
    assert f.update(10) == 1
    assert f.update(8) is None  # within hysteresis
    assert f.update(25) == 2
    assert f.update(18) is None
    assert f.update(17.5) is None
    assert f.update(16.9) == 1
    assert f.update(0) == 0


@given(st.lists(st.floats(0, 100), max_size=50))
def test_level_is_consistent_with_thresholds(values: list[float]) -> None:
    th = (10.0, 20.0, 40.0)
    level = 0
    for v in values:
        level = next_level(v, level, th, 3.0)
        # at or above a threshold -> at least that level; below threshold-h -> below it
        assert all(level > i for i, t in enumerate(th) if v >= t)
        assert all(level <= i for i, t in enumerate(th) if v < t - 3.0)


def test_battery_low_below_threshold_and_restores_only_above_the_hysteresis() -> None:
    f = FallingThreshold(threshold=3.6, hysteresis=0.2)
    assert f.update(3.9) is None
    assert f.update(3.6) is None  # at the threshold is not below it
    assert f.update(3.59) is True
    assert f.update(3.7) is None  # recovering under a lighter load: still low
    assert f.update(3.8) is None  # exactly threshold + hysteresis is not above it
    assert f.update(3.81) is False
    assert f.update(3.7) is None  # normal again: a sag inside the band raises nothing
    assert f.low is False


def test_a_battery_already_low_at_start_raises_at_the_first_reading() -> None:
    assert FallingThreshold(3.6, 0.2).update(3.1) is True


@given(st.lists(st.floats(min_value=2.5, max_value=4.5), max_size=60))
def test_falling_threshold_alternates_and_never_restores_inside_the_band(values: list[float]) -> None:
    f = FallingThreshold(threshold=3.6, hysteresis=0.2)
    changes = [(c, v) for v in values if (c := f.update(v)) is not None]
    assert all(a[0] != b[0] for a, b in itertools.pairwise(changes))
    assert all(v < 3.6 for c, v in changes if c) and all(v > 3.8 for c, v in changes if not c)
    assert not changes or changes[0][0] is True
