"""Alarm engine benchmarks: alarms raised/s (route + timers + outbox rows), repeats/s,
escalation timers fired/s, console deliveries/s through the outbox — one worker.

Run: ``python -m bench.alarms [--db-url URL] [--alarms N]`` (default: a temporary SQLite
file). Prints figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from hub.alarms.clock import ManualClock
from hub.alarms.engine.decide import AlarmEngine, event_signal
from hub.alarms.engine.timers import TimerWorker
from hub.db.engine import make_engine, make_session_factory
from hub.db.migrate import upgrade
from hub.notify.channel import RetryPolicy
from hub.notify.console import ConsoleBus
from hub.notify.models import Notification
from hub.notify.outbox import OutboxWorker
from hub.registry.models import District, Gateway, Home, Subdistrict, Workstation
from protocols.logs import configure_logging
from safehome.testing.events import make_event


def seed(sessions, homes: int) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s, s.begin():
        s.add(District(id="pudong", name="d", timezone="Asia/Shanghai", phone="+86-d"))
        s.add(Subdistrict(id="sd-01", district_id="pudong", name="sd", phone="+86-sd"))
        s.flush()
        for w in range(homes // 50 + 1):
            s.add(
                Workstation(
                    id=f"ws-{w:04d}",
                    subdistrict_id="sd-01",
                    name="ws",
                    phone=f"+86-ws{w}",
                    oncall_phone=f"+86-oc{w}",
                    day_start=dt.time(8),
                    day_end=dt.time(20),
                )
            )
        s.flush()
        for h in range(homes):
            s.add(
                Home(
                    id=f"home-{h:06d}",
                    workstation_id=f"ws-{h // 50:04d}",
                    address=f"路{h}号",
                    emergency_contacts=[{"name": "c", "phone": f"+86-c{h}"}],
                )
            )
        s.flush()
        for h in range(homes):
            s.add(Gateway(id=f"gw-{h:06d}", home_id=f"home-{h:06d}"))


def run(url: str, n: int) -> None:
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    seed(sessions, n)
    clock = ManualClock(dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC))  # 10:00 in Shanghai: day
    alarms = AlarmEngine(sessions, clock)
    backend = url.split(":")[0].split("+")[0]

    t = time.perf_counter()
    for h in range(n):
        alarms.handle(*event_signal(make_event(f"gw-{h:06d}"), clock.now()))
    raised = n / (time.perf_counter() - t)
    with sessions() as s:
        rows = s.scalar(select(func.count()).select_from(Notification)) or 0
    print(
        f"{backend}: {n:,} smoke alarms raised (routed, 2 timers, {rows / n:.0f} outbox rows each): {raised:,.0f} alarms/s"
    )

    t = time.perf_counter()
    for h in range(n):
        alarms.handle(*event_signal(make_event(f"gw-{h:06d}"), clock.now()))
    print(f"{backend}: {n:,} repeats of open alarms: {n / (time.perf_counter() - t):,.0f} repeats/s")

    clock.advance(3600)
    t = time.perf_counter()
    fired = TimerWorker(sessions, clock, "bench").fire_due()
    print(
        f"{backend}: {len(fired):,} escalation timers fired by one worker: {len(fired) / (time.perf_counter() - t):,.0f} timers/s"
    )

    bus = ConsoleBus()
    sub = bus.subscribe(maxsize=10)
    worker = OutboxWorker(sessions, bus, "bench", clock.now, RetryPolicy(), batch=200)

    async def drain() -> int:
        done = 0
        while (got := await worker.run_once()) > 0:
            done += got
        return done

    t = time.perf_counter()
    delivered = asyncio.run(drain())
    print(
        f"{backend}: {delivered:,} console notifications through the outbox (claim, deliver, log attempt): "
        f"{delivered / (time.perf_counter() - t):,.0f} deliveries/s (subscriber kept the newest {sub.queue.qsize()}, dropped {sub.dropped:,})"
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db-url", default=None, help="an empty database (default: temporary SQLite)")
    parser.add_argument("--alarms", type=int, default=2000)
    args = parser.parse_args()
    configure_logging(logging.ERROR)  # one warning per escalation is not a figure
    with tempfile.TemporaryDirectory() as d:
        run(args.db_url or f"sqlite:///{Path(d) / 'alarms.db'}", args.alarms)


if __name__ == "__main__":
    main()
