"""Login throttling, the pure core: failed attempts per account name and per source address
within a window; past the limit, a temporary lockout during which even the right password is
refused (the answer does not say whether the account exists).

Figures: 5 failures of one account in 15 minutes lock it for 15 minutes (an operator who
mistypes three times is not locked out; a guesser gets 480 tries a day, hopeless against a
10-character password); 20 failures from one address lock that address out, whatever names
it tries (spraying one password across many accounts).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Policy:
    max_failures: int
    window: dt.timedelta
    lockout: dt.timedelta


ACCOUNT = Policy(5, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
ADDRESS = Policy(20, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
#: Expired counts are deleted at most this often per hub worker (on a failed login): the
#: table holds the counts of the last window (and lockouts in force) plus at most this much.
PRUNE_EVERY = dt.timedelta(minutes=1)


def forgotten_before(now: dt.datetime, policies: tuple[Policy, ...] = (ACCOUNT, ADDRESS)) -> dt.datetime:
    """A count whose window started at or before this, and that holds no lockout in force at
    ``now``, changes nothing any more: the next failure starts a new window either way
    (:func:`after_failure`), and it locks nothing (:func:`locked_until`). It may be deleted."""
    return now - max(p.window for p in policies)


@dataclass(frozen=True, slots=True)
class Count:
    failures: int
    window_start: dt.datetime
    locked_until: dt.datetime | None = None


def locked_until(count: Count | None, now: dt.datetime) -> dt.datetime | None:
    """When the lockout of ``count`` ends, if it is in force at ``now``."""
    if count is None or count.locked_until is None or count.locked_until <= now:
        return None
    return count.locked_until


def after_failure(count: Count | None, policy: Policy, now: dt.datetime) -> Count:
    """The count after one more failure at ``now``: a new window once the old one is over;
    the lockout starts with the failure that reaches the limit."""
    if count is None or now - count.window_start >= policy.window:
        count = Count(0, now)
    failures = count.failures + 1
    lock = now + policy.lockout if failures >= policy.max_failures else count.locked_until
    return Count(failures, count.window_start, lock)
