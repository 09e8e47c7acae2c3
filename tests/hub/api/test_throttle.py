"""The login throttle's pure core: failures within a window, the lockout, a new window."""

from __future__ import annotations

import datetime as dt

from hub.api.throttle import ACCOUNT, Count, Policy, after_failure, locked_until

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
P = Policy(3, dt.timedelta(minutes=10), dt.timedelta(minutes=5))


def test_the_failure_reaching_the_limit_starts_the_lockout() -> None:
    c = None
    for i in range(P.max_failures - 1):
        c = after_failure(c, P, T0 + dt.timedelta(seconds=i))
        assert locked_until(c, T0 + dt.timedelta(seconds=i)) is None
    c = after_failure(c, P, T0 + dt.timedelta(minutes=1))
    assert c.failures == P.max_failures
    assert locked_until(c, T0 + dt.timedelta(minutes=1)) == T0 + dt.timedelta(minutes=6)
    assert locked_until(c, T0 + dt.timedelta(minutes=6)) is None  # over at its end


def test_failures_spread_over_more_than_a_window_never_lock() -> None:
    c = None
    for i in range(10):
        c = after_failure(c, P, T0 + i * P.window / 2)
        assert locked_until(c, T0 + i * P.window / 2) is None
    assert c is not None and c.failures <= P.max_failures - 1


def test_a_failure_during_the_lockout_keeps_it() -> None:
    c = Count(P.max_failures, T0, T0 + P.lockout)
    later = after_failure(c, P, T0 + dt.timedelta(minutes=1))
    assert locked_until(later, T0 + dt.timedelta(minutes=1)) is not None


def test_the_default_account_policy() -> None:
    assert (ACCOUNT.max_failures, ACCOUNT.window, ACCOUNT.lockout) == (
        5,
        dt.timedelta(minutes=15),
        dt.timedelta(minutes=15),
    )
