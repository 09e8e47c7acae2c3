"""The outbox lease when a hub worker dies mid-send: a real process claims a notification
and is SIGKILLed before it settles it. The notification must not wait a minute: a worker
restarted under the same id sends it again at once, any other worker takes it over once
the (short) lease has run out, and a live worker renews the lease of a send still running
so that no other worker sends the same notification meanwhile."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time

from hub.notify.channel import Delivered, Message, RetryPolicy
from hub.notify.enqueue import DEFAULT_LEASE_S, Handover, Outgoing, enqueue
from hub.notify.outbox import OutboxWorker
from tests.hub.conftest import Hub, alarm_settings
from tests.hub.notify.conftest import add, row, utcnow

FAST = RetryPolicy(max_attempts=3, base_s=0.01, max_s=0.05, jitter=False)

# Claims one webhook notification as worker "w-dead", says so, then hangs as a send would.
CLAIM_AND_HANG = """
import datetime as dt, sys, time
from hub.db.engine import make_engine, make_session_factory
from hub.notify.outbox import OutboxWorker

class Hook:
    name = "webhook"

w = OutboxWorker(make_session_factory(make_engine(sys.argv[1])), Hook(), "w-dead",
                 lambda: dt.datetime.now(dt.UTC))
print(",".join(m.notification_id for m in w.claim()), flush=True)
time.sleep(600)
"""


class Hook:
    """A webhook channel that records what it sends; ``gate`` holds every send open."""

    name = "webhook"

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def send(self, message: Message) -> Delivered:
        self.sent.append(message.notification_id)
        await self.gate.wait()
        return Delivered(200)


def killed_mid_send(hub: Hub) -> tuple[str, dt.datetime]:
    """A notification claimed by a real worker process that is then SIGKILLed; returns its
    id and when it was claimed (by the child's wall clock, bounded from below here)."""
    nid = add(hub, "webhook", "http://subscriber.invalid/hook")
    before = utcnow()
    with subprocess.Popen(
        [sys.executable, "-c", CLAIM_AND_HANG, hub.url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == nid
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
    n, _ = row(hub, nid)
    assert (n.status, n.lease_owner, n.attempts) == ("sending", "w-dead", 1)
    return nid, before


def test_the_lease_is_a_setting_just_above_the_send_timeout() -> None:
    s = alarm_settings()
    assert s.send_timeout_s < s.outbox_lease_s == DEFAULT_LEASE_S < 60
    assert Handover("w", frozenset()).lease_s == DEFAULT_LEASE_S


async def test_a_worker_restarted_under_its_id_resends_its_killed_sends_at_once(hub: Hub) -> None:
    nid, _ = killed_mid_send(hub)
    hook = Hook()
    w = OutboxWorker(hub.sessions, hook, "w-dead", utcnow, FAST)
    assert w.claim() == []  # without recovering, the dead life's lease would hold it
    assert w.recover() == 1
    n, _ = row(hub, nid)
    assert (n.status, n.lease_owner, n.lease_until) == ("pending", None, None)
    assert await w.run_once() == 1
    n, _ = row(hub, nid)
    assert (n.status, n.attempts) == ("delivered", 2) and hook.sent == [nid]


async def test_another_worker_takes_over_a_killed_workers_send_after_one_short_lease(hub: Hub) -> None:
    nid, claimed_after = killed_mid_send(hub)
    n, _ = row(hub, nid)
    assert n.lease_until is not None
    lease_until = n.lease_until.replace(tzinfo=n.lease_until.tzinfo or dt.UTC)
    # the lease the dead worker took is the short one, not a minute
    assert lease_until <= utcnow() + dt.timedelta(seconds=DEFAULT_LEASE_S)
    assert lease_until >= claimed_after + dt.timedelta(seconds=DEFAULT_LEASE_S)
    hook = Hook()
    other = OutboxWorker(hub.sessions, hook, "w-other", lambda: lease_until - dt.timedelta(seconds=1), FAST)
    assert other.claim() == []  # while the lease runs, nobody else sends it
    other.now = lambda: lease_until + dt.timedelta(seconds=1)
    assert [m.notification_id for m in other.claim()] == [nid]
    n, _ = row(hub, nid)
    assert (n.status, n.lease_owner, n.attempts) == ("sending", "w-other", 2)


async def test_a_send_still_running_keeps_its_lease_so_no_other_worker_sends_it(hub: Hub) -> None:
    """A 6 s lease renewed every 2 s while the send hangs: another worker polling
    meanwhile never gets the row, the first worker settles it, and then holds nothing."""
    ho = Handover("w1", frozenset({"webhook"}), lease_s=6)
    with hub.sessions() as s, s.begin():
        (nid,) = enqueue(s, "a-1", [Outgoing("webhook", "http://x/hook", "webhook")], {"kind": "smoke"}, utcnow(),
                         1, ho)  # fmt: skip
    first_until = row(hub, nid)[0].lease_until
    hook = Hook()
    hook.gate.clear()
    w = OutboxWorker(hub.sessions, hook, "w1", utcnow, FAST, lease_s=6)
    other_hook = Hook()
    other = OutboxWorker(hub.sessions, other_hook, "w2", utcnow, FAST, lease_s=6)
    w.hand(ho.messages)
    running = asyncio.create_task(w.run(0.01))
    renewals = 0
    last = first_until
    deadline = time.monotonic() + 60
    while renewals < 2:  # the lease outlives its first 6 s
        assert time.monotonic() < deadline, "lease never renewed"
        assert await asyncio.to_thread(other.claim) == []
        until = row(hub, nid)[0].lease_until
        assert until is not None and last is not None
        if until > last:
            renewals, last = renewals + 1, until
        await asyncio.sleep(0.2)
    assert hook.sent == [nid] and other_hook.sent == []
    hook.gate.set()
    deadline = time.monotonic() + 60
    while row(hub, nid)[0].status != "delivered":
        assert time.monotonic() < deadline, "never settled"
        await asyncio.sleep(0.05)
    w.stop()
    await asyncio.wait_for(running, 30)
    n, attempts = row(hub, nid)
    assert (n.status, n.lease_owner, n.attempts) == ("delivered", None, 1)
    assert [a.worker for a in attempts] == ["w1"]
