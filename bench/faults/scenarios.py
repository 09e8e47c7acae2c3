"""The faults, each as: raise alarms before, inject the fault, raise alarms during it, end
it, raise alarms after, then count (bench/faults/count.py) until everything is accounted
for or a deadline passes. Every scenario raises on gateways of its own, so several run
one after another on one harness and are counted apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.faults.count import Tally, read, tally
from bench.faults.harness import Harness, Raised

#: the hub's ``[hub.supervision] offline_grace_s`` (its default: the harness sets none)
OFFLINE_GRACE_S = 10.0


@dataclass
class Outcome:
    name: str
    fault: str
    tally: Tally
    problems: list[str] = field(default_factory=list)  #: scenario-specific checks that failed

    @property
    def ok(self) -> bool:
        return self.tally.ok() and not self.problems


async def settle(h: Harness, raised: list[Raised], recovered_at: float, deadline_s: float) -> Tally:
    """Poll the databases until every raised alarm is accounted for (or the deadline)."""
    deadline = time.monotonic() + deadline_s
    while True:
        rows = await asyncio.to_thread(read, h.db_url)
        t = tally(raised, rows, h.receiver.snapshot(), recovered_at)
        if t.complete() or time.monotonic() > deadline:
            return t
        await asyncio.sleep(0.5)


Scenario = Callable[[Harness, int, float], Awaitable[Outcome]]


async def _around(
    h: Harness, n: int, deadline_s: float, name: str, fault: str,
    inject: Callable[[], Awaitable[None]], heal: Callable[[], Awaitable[None]], hold_s: float,
) -> tuple[Outcome, list[Raised], float]:  # fmt: skip
    """``n`` alarms in three parts: before the fault, during it (``hold_s``), after it."""
    third = max(1, n // 3)
    raised = await h.raise_spread(third, 1.0)
    await inject()
    raised += await h.raise_spread(third, hold_s)
    await heal()
    recovered_at = time.time()
    raised += await h.raise_spread(n - 2 * third, 1.0)
    t = await settle(h, raised, recovered_at, deadline_s)
    return Outcome(name, fault, t), raised, recovered_at


async def hub_worker_kill(h: Harness, n: int, deadline_s: float) -> Outcome:
    """One of two workers SIGKILLed while idle (what it had is delivered); alarms raised
    during and after go to the other one, and the victim's escalation timers fire there."""
    victim = h.hubs[0]
    third = max(1, n // 3)
    before = await h.raise_spread(third, 1.0)
    await settle(h, before, time.time(), deadline_s)
    h.kill_hub(victim)
    recovered_at = time.time()
    raised = before + await h.raise_spread(third, 3.0)
    restart = asyncio.create_task(h.start_hub(victim))  # it rejoins while alarms go on
    raised += await h.raise_spread(n - 2 * third, 1.0)
    t = await settle(h, raised, recovered_at, deadline_s)
    await restart
    return Outcome(
        "hub worker SIGKILL", "one of two hub workers SIGKILLed between alarms, restarted 3 s later", t
    )


async def hub_worker_kill_busy(h: Harness, n: int, deadline_s: float) -> Outcome:
    """One of two workers SIGKILLed in the middle of a burst of alarms: what it had taken
    (unacked events, stored events whose webhooks it was about to send) must still arrive."""
    victim = h.hubs[0]
    burst = [h.raise_alarm(gw) for gw in h.fresh_gateways(n)]
    await asyncio.sleep(0.3)
    h.kill_hub(victim)
    recovered_at = time.time()
    restart = asyncio.create_task(h.start_hub(victim))
    t = await settle(h, burst, recovered_at, deadline_s)
    await restart
    return Outcome(
        "hub worker SIGKILL mid-burst", f"{n} alarms at once, one of two workers SIGKILLed 0.3 s later", t
    )


async def hub_worker_kill_sending(h: Harness, n: int, deadline_s: float) -> Outcome:
    """One of two workers SIGKILLed while its webhooks are in flight (the subscriber holds
    each POST 3 s): the alarms it had claimed must still be delivered, by the other worker."""
    victim = h.hubs[0]
    h.receiver.hold_s = 3.0
    try:
        burst = [h.raise_alarm(gw) for gw in h.fresh_gateways(n)]
        await asyncio.sleep(1.5)  # stored and decided; the webhooks are being held
        h.kill_hub(victim)
    finally:
        h.receiver.hold_s = 0.0
    recovered_at = time.time()
    restart = asyncio.create_task(h.start_hub(victim))
    t = await settle(h, burst, recovered_at, deadline_s)
    await restart
    return Outcome(
        "hub worker SIGKILL while sending",
        f"{n} alarms at once, the subscriber answering each POST after 3 s, one of two workers SIGKILLed "
        "1.5 s in (restarted at once)",
        t,
    )


async def broker_kill(h: Harness, n: int, deadline_s: float) -> Outcome:
    async def inject() -> None:
        h.kill_broker()

    async def heal() -> None:
        await asyncio.to_thread(h.start_broker)

    out, _r, _t = await _around(
        h, n, deadline_s, "broker SIGKILL",
        "Mosquitto SIGKILLed (no persistence), restarted on the same port 3 s later", inject, heal, 3.0,
    )  # fmt: skip
    return out


async def last_will_blip(h: Harness, n: int, deadline_s: float) -> Outcome:
    """Gateways drop without DISCONNECT (the broker publishes their Last-Will), raise an
    alarm while cut off, and are back within the hub's offline grace: the alarms arrive,
    and no supervisory alarm (gateway_offline, gateway_silent) is raised for a blip."""
    assert h.fleet is not None
    blipped = h.fresh_gateways(n)
    cut_at = dt.datetime.now(dt.UTC)
    for gw in blipped:
        h.fleet.link_down(gw)
    raised = [h.raise_alarm(gw) for gw in blipped]
    await asyncio.sleep(2.0)
    for gw in blipped:
        h.fleet.link_up(gw)
    recovered_at = time.time()
    t = await settle(h, raised, recovered_at, deadline_s)
    out = Outcome("Last-Will blip", f"{n} gateways cut without DISCONNECT for 2 s (offline grace 10 s)", t)
    # a wrong gateway_offline would open only once the grace has run out: wait past it
    # (and a supervision tick or two) before looking, however fast the alarms settled
    past_grace = (cut_at - dt.datetime.now(dt.UTC)).total_seconds() + OFFLINE_GRACE_S + 3.0
    if past_grace > 0:
        await asyncio.sleep(past_grace)
    offline = await asyncio.to_thread(_supervisory, h.db_url, blipped, cut_at)
    if offline:
        out.problems.append(f"supervisory alarms for blipped gateways: {offline}")
    return out


async def db_outage(h: Harness, n: int, deadline_s: float) -> Outcome:
    async def inject() -> None:
        h.db_proxy.cut()

    async def heal() -> None:
        h.db_proxy.heal()

    out, _r, _t = await _around(
        h, n, deadline_s, "database outage",
        "every hub connection to PostgreSQL reset and refused for 5 s", inject, heal, 5.0,
    )  # fmt: skip
    return out


async def partition(h: Harness, n: int, deadline_s: float) -> Outcome:
    async def inject() -> None:
        h.mqtt_proxy.stall()

    async def heal() -> None:
        h.mqtt_proxy.heal()

    out, _r, _t = await _around(
        h, n, deadline_s, "partition",
        "gateways ↔ broker: no bytes either way for 20 s, no FIN/RST (keep-alive 10 s)", inject, heal, 20.0,
    )  # fmt: skip
    return out


async def power_cut(h: Harness, n: int, deadline_s: float) -> Outcome:
    """Real edge agents, each power-cut at random points ``n / agents`` times."""
    from bench.faults import power

    agents = h.take_agents(AGENTS["power-cut"])
    cycles = max(1, n // len(agents))

    async def settle_on(raised: list[Raised]) -> Tally:
        return await settle(h, raised, time.time(), deadline_s)

    t, incidents, problems = await power.run(h, agents, cycles, h.config.seed, settle_on)
    fault = (
        f"{len(agents)} real edge agents, each SIGKILLed (supply cut) {cycles} times at random points of "
        f"a smoke alarm, dark 0.1-1.5 s; {len(incidents)} incidents, events counted as put on the wire"
    )
    return Outcome("gateway power cut", fault, t, problems)


async def loss(h: Harness, n: int, deadline_s: float) -> Outcome:
    from bench.faults.loss import packet_loss

    stack = contextlib.ExitStack()

    async def inject() -> None:
        stack.enter_context(packet_loss(h.mqtt_proxy.port, 30))

    async def heal() -> None:
        stack.close()

    try:
        out, _r, _t = await _around(
            h, n, deadline_s, "30 % packet loss",
            "30 % of TCP segments between gateways and broker dropped (nftables numgen) for 20 s", inject, heal, 20.0,
        )  # fmt: skip
    finally:
        stack.close()
    return out


async def disk_full(h: Harness, n: int, deadline_s: float) -> Outcome:
    """A real edge agent on a full SD card: smoke alarms come and go; the last on freed space."""
    from bench.faults import disk

    gw = h.take_agents(AGENTS["disk-full"])[0]
    count = max(2, n // 5)

    async def settle_on(raised: list[Raised]) -> Tally:
        return await settle(h, raised, time.time(), deadline_s)

    t, incidents, problems = await disk.run(h, gw, count, settle_on)
    fault = (
        f"a real edge agent's data and state on a 4 MB tmpfs filled to ENOSPC; {len(incidents)} smoke "
        "incidents, the last after the space is freed; events counted as put on the wire"
    )
    return Outcome("disk full on the gateway", fault, t, problems)


async def clock_jump(h: Harness, n: int, deadline_s: float) -> Outcome:
    """The gateways' clocks jump an hour ahead (a bad NTP step), then an hour behind, and
    come back: the alarms are stored and delivered all the same (timed by the hub)."""

    third = max(1, n // 3)
    raised = await h.raise_spread(third, 1.0)
    h.clock_skew_s = 3600.0
    ahead = await h.raise_spread(third, 2.0)
    h.clock_skew_s = -3600.0
    behind = await h.raise_spread(n - 2 * third, 2.0)
    h.clock_skew_s = 0.0
    recovered_at = time.time()
    raised += ahead + behind
    t = await settle(h, raised, recovered_at, deadline_s)
    # an event stamped in the future is always suspect; one stamped in the past looks like a
    # backlog until a status shows the clock off (hub/ingest/clock.py): counted, not judged
    n_ahead = await asyncio.to_thread(_suspect, h.db_url, [r.id for r in ahead])
    n_behind = await asyncio.to_thread(_suspect, h.db_url, [r.id for r in behind])
    fault = (
        "gateways' clocks +1 h, then -1 h (timestamps sent as synced), then right; flagged clock_suspect: "
        f"{n_ahead}/{len(ahead)} ahead, {n_behind}/{len(behind)} behind"
    )
    out = Outcome("clock jump", fault, t)
    if n_ahead < len(ahead):
        out.problems.append(
            f"only {n_ahead} of {len(ahead)} events stamped an hour ahead flagged clock_suspect"
        )
    return out


def _suspect(db_url: str, ids: list[str]) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as c:
            rows = c.execute(text("SELECT id FROM events WHERE clock_suspect")).all()
    finally:
        engine.dispose()
    return len({str(r[0]) for r in rows} & set(ids))


def _supervisory(db_url: str, gateways: list[str], since: dt.datetime) -> list[str]:
    """Supervisory and trouble alarms of ``gateways`` raised at or after ``since``.

    Only those: the scenarios share one harness, and a fault before this one (a broker
    restart that lost a gateway's birth and a heartbeat, a worker killed with a heartbeat
    not yet flushed) can leave a true ``gateway_silent`` 55 s later on any gateway, also
    on gateways this scenario takes afterwards as fresh ones.
    """
    from sqlalchemy import create_engine, select

    from hub.alarms.store.models import Alarm

    query = select(Alarm.gateway_id, Alarm.kind).where(Alarm.alarm_class != "alarm", Alarm.raised_at >= since)
    engine = create_engine(db_url)
    try:
        with engine.connect() as c:
            rows = c.execute(query).all()
    finally:
        engine.dispose()
    return sorted(f"{g}:{k}" for g, k in rows if g in set(gateways))


#: real edge agents a scenario needs (each is a process: the 2 cores set the numbers)
AGENTS = {"power-cut": 3, "disk-full": 1}

#: in the issue's order of value
SCENARIOS: dict[str, Scenario] = {
    "hub-kill": hub_worker_kill,
    "hub-kill-busy": hub_worker_kill_busy,
    "hub-kill-sending": hub_worker_kill_sending,
    "broker-kill": broker_kill,
    "power-cut": power_cut,
    "last-will-blip": last_will_blip,
    "db-outage": db_outage,
    "partition": partition,
    "loss": loss,
    "disk-full": disk_full,
    "clock-jump": clock_jump,
}
#: last-will-blip: full runs only (it waits out the 10 s offline grace)
SHORT = ("hub-kill", "broker-kill", "db-outage")
