"""Benchmark: a district storm (power cut) while smoke alarms are raised.

N homes send heartbeats and telemetry (a fleet process for most of them; the storm's and the
smoke alarms' gateways in this process). Before the storm, S smoke alarms (one per gateway)
measure publish → webhook. Then within ``storm_s``: O gateways lose their link without a
goodbye (the broker publishes their Last-Will → ``gateway_offline``), M report
``mains_lost`` (on their UPS HAT), while S more smoke alarms are raised. Reported: smoke
publish → webhook before and during; time until every storm alarm is stored and decided;
mass-event incidents per subdistrict (table and webhooks) and the storm's webhooks.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from dataclasses import dataclass

from sqlalchemy import select

import protocols as p
from bench import report
from bench.latency import StoredTimes, load_fleet
from bench.stages import stage_rows
from bench.storm_timeline import timeline_rows
from bench.system import System, hub_cpu_s, percentile, system, wait_load_connected
from firmware_sim.fleet import Fleet, FleetSettings, specs_from_registry
from firmware_sim.runner import raise_fd_limit

STORM_KINDS = ("gateway_offline", "mains_lost")
#: the storm must be stored and decided within 20 s (issue 12); read back for this long
DECIDED_WITHIN_S = 180.0
#: a cut gateway's alarm: its Last-Will's gateway_offline, or gateway_silent when that was
#: already open (the hub keeps one condition for one outage)
OFFLINE_KINDS = ("gateway_offline", "gateway_silent")
#: what the hub folds into incidents (hub/alarms/storm.py STORM_KINDS)
HUB_STORM_KINDS = ("gateway_offline", "gateway_silent", "mains_lost")


def _stats(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 50):.0f} / {percentile(values, 99):.0f} / {max(values):.0f} ms"


async def _smoke(fleet: Fleet, gws: list[str], spacing: float, sent: dict[str, tuple[float, str]]) -> None:
    for gw in gws:
        t = time.time()
        sent[gw] = (t, fleet.trigger(gw, p.EventKind.SMOKE, sensor="smoke-1").id)
        await asyncio.sleep(spacing)


def _smoke_ms(s: System, sent: dict[str, tuple[float, str]]) -> tuple[list[float], int]:
    first = s.webhooks.first_by_kind
    ms = [(first[(gw, "smoke")] - t) * 1000 for gw, (t, _id) in sent.items() if (gw, "smoke") in first]
    return ms, len(sent) - len(ms)


@dataclass
class Readback:
    """The hub's tables for the storm, read by the storm's gateways (not by time: see
    :func:`_readback`)."""

    #: storm gateways with their storm alarm stored and decided: a cut gateway's
    #: gateway_offline (or its gateway_silent, the same outage), a mains gateway's mains_lost
    decided: int
    #: of those, alarms opened before the storm (gateway_silent of a gateway cut later)
    before: int
    #: storm alarms (of the storm's gateways) that are members of an incident
    members: int
    #: storm alarms of the storm's gateways by state
    states: dict[str, int]
    #: incidents per area opened since the run started, and how many of them before the storm
    areas: dict[str, int]
    areas_before: int
    #: gateway_silent alarms raised before the storm (any gateway): healthy gateways
    #: reported silent, i.e. the hub or the fleets fell behind on this machine
    silent_before: int


def _readback(db_url: str, run_t0: float, storm_t0: float, cut: set[str], lost: set[str]) -> Readback:
    """Storm alarms of the storm's gateways, and incidents, since the run started.

    Read by gateway, not by "raised since the storm": ``gateway_silent`` is a storm kind too,
    and when the hub or the fleets fall behind (a heavily shared machine) healthy gateways
    are reported silent before the storm, their incidents open before it, and a gateway cut
    while its ``gateway_silent`` is open gets no ``gateway_offline`` (the same outage). The
    first read-back counted only ``gateway_offline``/``mains_lost`` raised after the storm
    began and incidents opened after it: at 10,000 homes on a loaded machine it read 0 of
    4,000 although the incidents' webhooks had arrived."""
    import datetime as dt

    from hub.alarms.store.incidents import Incident
    from hub.alarms.store.models import Alarm
    from hub.db.engine import make_engine, make_session_factory, read_only

    engine = make_engine(db_url)
    since = dt.datetime.fromtimestamp(run_t0, dt.UTC)
    storm_at = dt.datetime.fromtimestamp(storm_t0, dt.UTC)
    wanted = {**{g: OFFLINE_KINDS for g in cut}, **{g: ("mains_lost",) for g in lost}}
    try:
        with make_session_factory(engine)() as session:
            s = read_only(session)
            rows = s.execute(
                select(Alarm.gateway_id, Alarm.kind, Alarm.state, Alarm.raised_at, Alarm.incident_id).where(
                    Alarm.kind.in_(HUB_STORM_KINDS), Alarm.raised_at >= since
                )
            ).all()
            incidents = s.execute(select(Incident.area, Incident.opened_at).where(Incident.opened_at >= since)).all()
    finally:
        engine.dispose()
    found: dict[str, tuple[str, dt.datetime, bool]] = {}
    silent_before = 0
    for gw, kind, state, raised_at, incident_id in rows:
        if kind == "gateway_silent" and raised_at < storm_at:
            silent_before += 1
        if kind in wanted.get(gw, ()) and gw not in found:
            found[gw] = (state, raised_at, incident_id is not None)
    return Readback(
        decided=len(found),
        before=sum(1 for _s, at, _m in found.values() if at < storm_at),
        members=sum(1 for _s, _at, m in found.values() if m),
        states=dict(collections.Counter(st for st, _at, _m in found.values())),
        areas=dict(collections.Counter(area for area, _at in incidents)),
        areas_before=sum(1 for _a, at in incidents if at < storm_at),
        silent_before=silent_before,
    )


async def measure(homes: int, offline: int, mains: int, smoke: int, storm_s: float, warmup: float) -> str:
    raise_fd_limit(20_000)
    local = offline + mains + 2 * smoke
    run_t0 = time.time()
    with system(homes, split_lanes=True) as s:
        specs = specs_from_registry(s.registry)
        load_n = homes - local
        load = load_fleet(s, load_n)
        mine = specs[load_n:]
        # smoke gateways spread among the storm's (a fire in a dark neighbourhood)
        step = max(1, len(mine) // (2 * smoke))
        smoke_gws = [g.id for g in mine[::step]][: 2 * smoke]
        rest = [g.id for g in mine if g.id not in set(smoke_gws)]
        cut, lost = rest[:offline], rest[offline : offline + mains]
        fleet = Fleet(mine, FleetSettings(host=s.broker.host, port=s.broker.port, seed=13), observer=StoredTimes())
        stop = asyncio.Event()
        runner: asyncio.Task[None] | None = None
        try:
            await fleet.start()
            runner = asyncio.create_task(fleet.run(stop))
            await wait_load_connected(load, load_n)
            await asyncio.sleep(warmup)
            before: dict[str, tuple[float, str]] = {}
            await _smoke(fleet, smoke_gws[:smoke], storm_s / smoke, before)
            await asyncio.sleep(3)
            # the storm: Last-Wills and mains_lost spread over storm_s, smoke alarms among them
            during: dict[str, tuple[float, str]] = {}
            storm_t0 = time.time()
            cpu0 = hub_cpu_s(s)
            smoke_task = asyncio.create_task(_smoke(fleet, smoke_gws[smoke:], storm_s / smoke, during))
            events = [("cut", g) for g in cut] + [("lost", g) for g in lost]
            random.Random(13).shuffle(events)
            for i, (what, gw) in enumerate(events):
                if what == "cut":
                    fleet.link_down(gw)
                else:
                    fleet.trigger(gw, p.EventKind.MAINS_LOST, sensor="power-1")
                due = storm_t0 + storm_s * (i + 1) / len(events)
                if due > time.time():
                    await asyncio.sleep(due - time.time())
            storm_end = time.time()
            await smoke_task
            # until every storm alarm is stored and decided (the Last-Wills' after the grace)
            decided_s: float | None = None
            storm_gws = (set(cut), set(lost))
            deadline = storm_t0 + DECIDED_WITHIN_S
            while time.time() < deadline:
                rb = await asyncio.to_thread(_readback, s.db_url, run_t0, storm_t0, *storm_gws)
                if rb.decided >= offline + mains:
                    decided_s = time.time() - storm_t0
                    break
                await asyncio.sleep(0.5)
            for _ in range(100):  # the last smoke webhooks
                if len(_smoke_ms(s, during)[0]) >= len(during):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(2)  # the incidents' webhooks
            cpu = hub_cpu_s(s) - cpu0
            rb = await asyncio.to_thread(_readback, s.db_url, run_t0, storm_t0, *storm_gws)
            timeline = await asyncio.to_thread(timeline_rows, s.db_url, storm_t0, storm_end, *storm_gws)
            hooks = [doc for t, doc in s.webhooks.received if t >= storm_t0]
            by_event = collections.Counter(str(d.get("event")) for d in hooks)
            storm_hooks = sum(1 for d in hooks if d.get("kind") in STORM_KINDS)
            # webhooks are at least once: a delivery retried after a timeout arrives twice, so
            # incidents are counted by id (the POSTs too, to show retries)
            opened_posts = [d for d in hooks if d.get("event") == "incident.opened"]
            opened = collections.Counter(str(area) for area, _i in {(d.get("area"), d.get("incident_id")) for d in opened_posts})
            smoke_hooks = {gw: t for (gw, kind), t in s.webhooks.first_by_kind.items() if kind == "smoke"}
            before_ms, before_missing = _smoke_ms(s, before)
            during_ms, during_missing = _smoke_ms(s, during)
            rows = [
                ("load", f"{homes:,} homes: heartbeat 30 s, telemetry 60 s; hub in two processes (priority / telemetry lane), SQLite"),
                ("storm", f"{offline:,} Last-Wills + {mains:,} mains_lost within {storm_s:g} s (sent in {storm_end - storm_t0:.1f} s)"),
                ("smoke publish → webhook before: p50 / p99 / max", f"{_stats(before_ms)} ({len(before)} alarms, missing {before_missing})"),
                ("smoke publish → webhook during: p50 / p99 / max", f"{_stats(during_ms)} ({len(during)} alarms, missing {during_missing}; over 1 s: {sum(1 for x in during_ms if x > 1000)})"),
                *[(f"during: {k}", v) for k, v in stage_rows(s.db_url, during, smoke_hooks)],
                ("healthy gateways reported silent before the storm (0 unless the hub or the fleets fell behind)", f"{rb.silent_before:,}"),
                ("storm stored and decided (an alarm row for every storm gateway) after", f"{decided_s:.1f} s from the first Last-Will, {decided_s - (storm_end - storm_t0):.1f} s from the last (each Last-Will's alarm waits offline_grace_s, 10 s)" if decided_s else f"not within {DECIDED_WITHIN_S:g} s ({rb.decided:,} of {offline + mains:,})"),
                *timeline,
                ("storm alarms stored / members of an incident / opened before the storm", f"{rb.decided:,} / {rb.members:,} / {rb.before:,}"),
                ("storm alarms by state", ", ".join(f"{k} {v:,}" for k, v in sorted(rb.states.items()))),
                ("incidents opened per area (table; of them before the storm)", (", ".join(f"{a} {n}" for a, n in sorted(rb.areas.items())) or "none") + f" ({rb.areas_before})"),
                ("incident.opened webhooks per area (distinct incidents; POSTs in all)", (", ".join(f"{a} {n}" for a, n in sorted(opened.items())) or "none") + f" ({len(opened_posts)} POSTs)"),
                ("webhooks during the storm, by event", ", ".join(f"{k} {v:,}" for k, v in sorted(by_event.items()))),
                ("storm-kind alarm webhooks (sent before an area's threshold)", f"{storm_hooks:,}"),
                ("connections the hub's webhook client used (whole run)", f"{len(s.webhooks.clients)}"),
                ("hub CPU-seconds from the storm until decided", f"{cpu:.0f} s"),
            ]  # fmt: skip
            invalid = (
                f"**Not a valid storm measurement:** {rb.silent_before:,} healthy gateways were reported "
                "silent before the storm: the hub or the fleets could not keep up on this machine (see "
                "the load average); re-run on a quiet machine.\n\n"
                if rb.silent_before
                else ""
            )
            notes = invalid + (
                "Hub: two `safehome hub run` processes on one SQLite database (`[hub.ingest] lanes` "
                "priority / telemetry; only the priority-lane process delivers notifications), storm "
                "defaults (`[hub.alarms.storm]`: subdistrict, 10 within 60 s). The Last-Will's "
                "`gateway_offline` opens after supervision's `offline_grace_s` (10 s), so 'stored and "
                "decided' includes it. Webhook receiver: an asyncio (uvicorn) process of its own, "
                "backlog 2048, keep-alive. Broker (with the deployment's rate-limit plugin), hub, fleets "
                "and receiver share the machine's cores (the load average above says what else ran). "
                "Storm alarms are read back by the storm's gateways: a cut gateway counts with its "
                "`gateway_offline`, or its `gateway_silent` when that was already open."
            )
            return report.write(f"Storm at {homes:,} homes: {offline:,} offline + {mains:,} mains_lost", rows, notes)
        finally:
            stop.set()
            if runner is not None:
                await runner
            await fleet.stop()
            load.terminate()
            load.wait(30)


def run(
    homes: int = 10_000,
    offline: int = 3000,
    mains: int = 1000,
    smoke: int = 50,
    storm_s: float = 10.0,
    warmup: float = 15.0,
) -> str:
    return asyncio.run(measure(homes, offline, mains, smoke, storm_s, warmup))
