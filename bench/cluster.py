"""Benchmark: one Mosquitto against a 3-node NATS cluster, side by side in one run (issue 17).

For each broker the same system (bench/system.py): ``homes`` load gateways (a fleet
process: heartbeat 30 s, telemetry 60 s), ``alarms`` measured gateways in this process,
two identical hub workers (``safehome hub run``, every lane each: one shared subscription
on Mosquitto, one queue group on NATS) on one SQLite file (``--database postgres``: one
PostgreSQL database, as a deployment of several workers has), a webhook receiver.
Reported per broker:

- the time until every load gateway is connected (each logs in: bcrypt on NATS, cost hub.broker.nats.BCRYPT_ROUNDS);
- broker memory (RSS, every node on NATS) per 10,000 connections: the growth from before
  the gateways connect (the hub connected) to all connected, scaled to 10,000;
- alarm publish → webhook p50 / p99 / max (as ``bench latency`` measures it);
- readings stored per second per hub worker while measuring (the offered telemetry, and
  what the gateways resent because its ack came too late: written again);
- the fault: NATS, SIGKILL of the node that leads the ``$MQTT_sess`` stream (the worst
  case for the logins of the dead node's gateways; see kill_broker); Mosquitto, SIGKILL and an immediate restart (it is the only broker). Measured from the
  kill until every gateway is connected again and every alarm raised meanwhile (one
  every ``spacing`` s from the measured gateways, for ``outage_s``) has its webhook.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx

import protocols as p
from bench import procstat, report
from bench.latency import StoredTimes, fire_alarms, latencies, load_fleet, stop_fleets
from bench.system import NatsBroker, System, percentile, system
from firmware_sim.fleet import Fleet, specs_from_registry
from firmware_sim.runner import raise_fd_limit
from hub.broker import nats
from hub.settings import SupervisionSettings
from safehome.testing.nats import can_guard_logins

CONNECTED = re.compile(r"connected (\d+)/(\d+)")
RESENDS = re.compile(r"\(resends (\d+)\)")
FAILURES = re.compile(r"connects failed (.*?\)) away")
READINGS = re.compile(r"^safehome_readings_stored_total (\S+)$", re.M)
CONDITIONS = re.compile(r'^safehome_conditions_total\{kind="(gateway_\w+)",state="(\w+)"\} (\S+)$', re.M)
BACKENDS = ("mosquitto", "nats")
#: where the load fleet's stderr (one file per broker) and the hub workers' and NATS nodes'
#: logs (a directory per broker) are kept, replaced by the next run
LOG_DIR = Path(os.environ.get("SAFEHOME_BENCH_LOGS", "/tmp"))
#: the longest a phase may take before the bench reports it as not reached
WITHIN_S = 600.0
#: the hub's silence deadline and a tick, as its default settings say (55 s + 1 s)
_SUPERVISION = SupervisionSettings()
SILENCE_DEADLINE_S = _SUPERVISION.gateway_max_silence_s + _SUPERVISION.tick_s


@dataclass
class LoadWatch:
    """Follows the load fleet's status lines (``connected N/M`` once a second)."""

    proc: subprocess.Popen[bytes]
    log: Path  #: every line the fleet wrote to stderr, kept for the reader of a failed run
    lines: list[tuple[float, int]] = field(default_factory=list)  #: (time.time(), connected)
    resends: int = 0  #: the fleet's resends so far (messages not acked in time)
    failures: str = "-"  #: the fleet's failed connects so far, as its status line says them

    def __post_init__(self) -> None:
        # opened here, not in the reader: a log that cannot be written fails the bench at
        # once instead of leaving the fleet's stderr undrained (the fleet then blocks on a
        # full pipe and the bench waits for status lines that never come)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("w", encoding="utf-8")
        threading.Thread(target=self._read, args=(out,), daemon=True).start()

    def _read(self, out: TextIO) -> None:
        assert self.proc.stderr is not None
        try:
            with out:
                for raw in self.proc.stderr:
                    line = raw.decode(errors="replace")
                    out.write(f"{time.time():.3f} {line}")
                    out.flush()
                    self._parse(line)
        except (OSError, ValueError):
            return  # closed by stop_fleets at the end

    def _parse(self, line: str) -> None:
        m = CONNECTED.search(line)
        if m:
            self.lines.append((time.time(), int(m.group(1))))
        r = RESENDS.search(line)
        if r:
            self.resends = int(r.group(1))
        f = FAILURES.search(line)
        if f:
            self.failures = f.group(1)

    def timeline(self, t0: float, step: float, until: float | None) -> str:
        """Gateways connected every ``step`` s after ``t0`` up to ``until``: ``+5 s 8,120 · …``."""
        end = until if until is not None else (self.lines[-1][0] if self.lines else t0)
        marks, t = [], t0
        while t <= end + step:
            seen = [n for at, n in self.lines if at <= t]
            if seen:
                marks.append(f"+{t - t0:.0f} s {seen[-1]:,}")
            t += step
        return " · ".join(marks)

    def all_since(self, homes: int, t0: float) -> float | None:
        """When the fleet reported ``homes`` (or more) connected after a report of fewer, since
        ``t0`` (the first report after ``t0`` when no report of fewer came within 10 s)."""
        after = [(t, n) for t, n in self.lines if t >= t0]
        dropped = next((i for i, (_t, n) in enumerate(after) if n < homes), None)
        if dropped is None:
            return after[0][0] if after and after[-1][0] - t0 > 10 else None
        return next((t for t, n in after[dropped:] if n >= homes), None)


async def wait(cond: object, within: float = WITHIN_S) -> bool:
    """Poll ``cond()`` every 0.2 s until true (True) or ``within`` s passed (False)."""
    deadline = time.monotonic() + within
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


def readings_stored(s: System) -> list[float]:
    """safehome_readings_stored_total of each hub worker."""
    out = []
    for base in s.hub.bases:
        m = READINGS.search(httpx.get(f"{base}/metrics", timeout=5).text)
        out.append(float(m.group(1)) if m else 0.0)
    return out


def gateway_conditions(s: System) -> tuple[int, int]:
    """Gateway conditions (silent, offline) opened so far and still open, over the hub workers."""
    opened = restored = 0.0
    for base in s.hub.bases:
        for _kind, state, value in CONDITIONS.findall(httpx.get(f"{base}/metrics", timeout=5).text):
            if state == "open":
                opened += float(value)
            else:
                restored += float(value)
    return int(opened), int(opened - restored)


def broker_rss_mb(s: System) -> float:
    return sum(procstat.rss_mb(pid) for pid in s.broker_pids)


def stream_leaders(s: NatsBroker) -> dict[str, str]:
    """Which node leads each MQTT stream (``$MQTT_sess`` …), as node 0 sees it ("?" when it
    does not answer)."""
    try:
        jsz = s.cluster.monitor(0, "/jsz?accounts=true&streams=true")
    except OSError:
        return {}
    return {
        st["name"]: (st.get("cluster") or {}).get("leader", "?")
        for a in jsz.get("account_details") or []
        for st in a.get("stream_detail") or []
    }


#: the nftables table ``--dead-machine`` adds (and removes at the end)
BLACKHOLE_TABLE = "safehome_bench_dead_machine"


def blackhole(port: int) -> None:
    """Drop every packet sent to ``port`` (a SYN gets no answer, as from a machine that is
    gone, instead of the RST of a closed port), until :func:`unblackhole`. Only what is sent
    to it: the links of the killed node still see their close at once, where the gateways of a
    machine that is really gone would notice only at their keep-alive (the agent's 30 s)."""
    rules = (
        f"table inet {BLACKHOLE_TABLE} {{\n chain input {{\n  type filter hook input priority -10; policy accept;\n"
        f"  tcp dport {port} drop\n }}\n}}\n"
    )
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True, capture_output=True, timeout=30)


def unblackhole() -> None:
    subprocess.run(["nft", "delete", "table", "inet", BLACKHOLE_TABLE], capture_output=True, timeout=30)


def guard_drops(s: System) -> dict[str, int] | None:
    """The SYNs each live NATS node's login rate guard has dropped so far (None: no guard)."""
    if not isinstance(s.broker, NatsBroker) or not s.broker.cluster.login_guard:
        return None
    cluster = s.broker.cluster
    got = {n.name: nats.guard_dropped(n) for i, n in enumerate(cluster.nodes) if cluster.procs[i] is not None}
    return {k: v for k, v in got.items() if v is not None}


def kill_broker(s: System, dead_machine: bool = False) -> str:
    """SIGKILL a NATS node (it stays down until the measurement ends) or Mosquitto, started
    again at once. Says which.

    On NATS the node that leads ``$MQTT_sess``: every login loads and stores the gateway's
    session through that stream's leader, so its death is the worst case for the gateways
    (no login anywhere until the survivors have elected a new one), and a node picked
    otherwise led it in about one run of three, which made runs incomparable. The first node
    (the one the hub workers ack through) when no leader is known."""
    if isinstance(s.broker, NatsBroker):
        cluster = s.broker.cluster
        leaders = stream_leaders(s.broker)
        names = [n.name for n in cluster.nodes]
        i = names.index(leaders["$MQTT_sess"]) if leaders.get("$MQTT_sess") in names else 0
        led = sorted(k for k, v in leaders.items() if v == names[i])
        if dead_machine:  # before the kill: no RST from a closed port ever reaches a gateway
            blackhole(cluster.nodes[i].mqtt_port)
        cluster.kill(i)
        return (
            f"SIGKILL of node {names[i]} (of 3; the hub acks through {names[0]}); it stays down"
            + (
                "; its MQTT port drops every packet sent to it (connects time out, as to a machine that "
                "is gone; the links it had still saw their close)"
                if dead_machine
                else ""
            )
            + f"; it led {', '.join(led) or 'no MQTT stream'}"
        )
    proc = s.broker.proc
    assert proc is not None
    proc.kill()
    proc.wait(10)
    s.broker.start()
    return "SIGKILL of the one Mosquitto and an immediate restart (same port, no persistence)"


@dataclass(frozen=True)
class Plan:
    """What a run measures, as `safehome bench cluster`'s options say."""

    homes: int
    alarms: int = 200
    spacing: float = 0.25  #: seconds between alarms
    warmup: float = 20.0  #: seconds of load before measuring
    outage_s: float = 10.0  #: seconds of alarms raised after the kill
    connect_within: float = WITHIN_S
    postgres: bool = False  #: the hub workers on PostgreSQL, not one SQLite file
    dead_machine: bool = False  #: NATS: the killed node's port drops what is sent to it


async def measure_backend(backend: str, plan: Plan) -> dict[str, str]:
    homes, alarms, spacing, connect_within = plan.homes, plan.alarms, plan.spacing, plan.connect_within
    dead_machine = plan.dead_machine and backend == "nats"
    out: dict[str, str] = {}
    logs = LOG_DIR / f"cluster-{backend}-logs"
    with system(homes + alarms, broker=backend, workers=2, postgres=plan.postgres, keep_logs=logs) as s:
        specs = specs_from_registry(s.registry)
        rss0 = broker_rss_mb(s)  # the broker(s) with the hub connected, before any gateway
        t_load = time.time()
        load = load_fleet(s, homes)
        watch = LoadWatch(load, LOG_DIR / f"cluster-{backend}-fleet.log")
        print(f"{backend}: the load fleet's stderr goes to {watch.log}", file=sys.stderr, flush=True)
        observer = StoredTimes()
        fleet = Fleet(specs[homes:], s.fleet_settings(seed=7), credentials=s.credentials, observer=observer)
        stop = asyncio.Event()
        runner: asyncio.Task[None] | None = None
        try:
            await fleet.start()
            runner = asyncio.create_task(fleet.run(stop))
            await wait(lambda: any(n == homes for _t, n in watch.lines), connect_within)
            t_all = next((t for t, n in watch.lines if n == homes), None)
            linked = watch.lines[-1][1] if watch.lines else 0
            out["connect"] = (
                f"{t_all - t_load:.0f} s" if t_all else
                f"not within {connect_within:.0f} s: {linked:,} of {homes:,} connected (measured with those)"
            )  # fmt: skip
            # the measured gateways too (a login refused or dropped at start retries later)
            await wait(lambda: fleet.connected == len(specs) - homes, connect_within)
            conns, rss1 = linked + fleet.connected, broker_rss_mb(s)
            out["rss"] = (
                f"{(rss1 - rss0) / conns * 10_000:,.0f} MB ({rss0:.0f} MB before the gateways, "
                f"{rss1:.0f} MB with {conns:,})"
            )
            # the hub watches every gateway from its start: those the fleet (and the hub's
            # ingest) got to later than the silence deadline are reported silent at once,
            # thousands of conditions and their notifications, and restored as they are heard.
            # Measured only once that is over (the deadline passed since the last connect, and
            # nothing open): the figures are of a district at rest, not of its start
            settle_until = time.monotonic() + SILENCE_DEADLINE_S
            opened0, still0 = gateway_conditions(s)  # the baseline: counted before the deadline passed
            await wait(lambda: time.monotonic() > settle_until and gateway_conditions(s)[1] <= still0, 300)
            opened, still = gateway_conditions(s)
            out["start"] = (
                f"{opened - opened0:,} gateway conditions opened after the fleet connected, "
                f"{still - still0:,} still open "
                f"{time.time() - t_all if t_all else 0:.0f} s after the last connect"
            )
            await asyncio.sleep(plan.warmup)
            gws = [g.id for g in specs[homes:]]
            r0, t0, resends0 = readings_stored(s), time.monotonic(), watch.resends
            sent = await fire_alarms(fleet, gws, spacing)
            await wait(lambda: len(s.webhooks.first_by_gateway.keys() & sent.keys()) >= len(sent), 30)
            r1, t1 = readings_stored(s), time.monotonic()
            hook_ms, _stored_ms, missing = latencies(s, sent, observer)
            out["latency"] = (
                f"{percentile(hook_ms, 50):.0f} / {percentile(hook_ms, 99):.0f} / "
                f"{max(hook_ms, default=float('nan')):.0f} ms ({len(hook_ms)} of {len(sent)}, missing {missing})"
            )
            out["readings"] = (
                " + ".join(f"{(b - a) / (t1 - t0):,.0f}" for a, b in zip(r0, r1, strict=True))
                + f" /s (the load fleet resent {watch.resends - resends0:,} messages meanwhile: written again)"
            )
            # the fault
            linked = watch.lines[-1][1] if watch.lines else 0  # "every gateway back": as many as before
            t_kill = time.time()
            dropped0 = guard_drops(s)
            out["fault"] = kill_broker(s, dead_machine)
            hooks0 = len(s.webhooks.received)
            raised: dict[str, tuple[float, str]] = {}
            kinds = (p.EventKind.PANIC,)
            n = max(1, int(plan.outage_s / spacing))
            for gw in gws[:n]:
                raised |= await fire_alarms(fleet, [gw], spacing, kinds)

            def notified() -> bool:
                hooks = s.webhooks.first_by_kind
                return all((gw, "panic") in hooks for gw in raised)

            done = await wait(
                lambda: notified() and fleet.connected == len(gws) and watch.all_since(linked, t_kill) is not None
            )
            back = watch.all_since(linked, t_kill)
            out["timeline"] = watch.timeline(t_kill, step=5.0, until=back)
            dropped1 = guard_drops(s)
            if dropped0 and dropped1:
                out["guard"] = ", ".join(
                    f"{name} {dropped1[name] - dropped0[name]:,}" for name in dropped1 if name in dropped0
                )
            out["connects"] = watch.failures
            last_hook = max((s.webhooks.first_by_kind[(gw, "panic")] for gw in raised if (gw, "panic") in s.webhooks.first_by_kind), default=t_kill)  # fmt: skip
            if done and back is not None:
                out["recovery"] = (
                    f"{max(back, last_hook) - t_kill:.1f} s (gateways back {back - t_kill:.1f} s, "
                    f"last of {len(raised)} alarms notified {last_hook - t_kill:.1f} s)"
                )
            else:
                out["recovery"] = f"not within {WITHIN_S:.0f} s ({len(s.webhooks.received) - hooks0} webhooks)"
        finally:
            await stop_fleets(stop, runner, fleet, load)
            if dead_machine:
                unblackhole()
    return out


ROWS = (
    ("connect", "time to connect all load gateways"),
    ("start", "before measuring"),
    ("rss", "broker RSS per 10,000 connections"),
    ("latency", "alarm publish → webhook p50 / p99 / max"),
    ("readings", "readings stored per second, per hub worker (offered load)"),
    ("fault", "fault"),
    ("recovery", "kill → every gateway back and every alarm raised meanwhile notified"),
    ("timeline", "load gateways connected after the kill"),
    ("guard", "SYNs the survivors' login rate guards dropped from the kill until every gateway was back"),
    ("connects", "the load fleet's failed connects by then (since its start)"),
)


async def measure(plan: Plan, backends: tuple[str, ...] = BACKENDS) -> str:
    raise_fd_limit(40_000)
    results: dict[str, dict[str, str]] = {}
    for b in backends:
        results[b] = await measure_backend(b, plan)
        # as soon as measured: a run stopped during the second broker keeps the first's figures
        print(f"{b}: " + "; ".join(f"{k} {v}" for k, v in results[b].items()), file=sys.stderr, flush=True)
    rows = [
        ("load", f"{plan.homes:,} homes: heartbeat 30 s, telemetry 60 s (fleet process); {plan.alarms} alarm gateways")
    ]
    for key, name in ROWS:
        rows += [(f"{name}, {b}", results[b].get(key, "-")) for b in backends]
    notes = (
        "Mosquitto: one process with the rate-limit plugin. NATS: 3 nats-server nodes (the "
        "product's config: hub/broker/nats.py), "
        + (
            "each with its login rate guard (nftables, nats_login_rate, burst of one second's rate), "
            if can_guard_logins()
            else "WITHOUT the login rate guard (needs root and nft), "
        )
        + "gateways spread over the nodes by their own address order and moving off a dead "
        "node within 10 s as NATS bundles say (protocols/failover.py), "
        f"bcrypt cost {nats.BCRYPT_ROUNDS}. Two `safehome hub run` workers "
        "(every lane each) on one " + ("PostgreSQL" if plan.postgres else "SQLite") + " database, a webhook receiver; broker, hub, fleets and "
        "receiver share the host's cores. Recovery target: 30 s. "
        f"Load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}."
    )
    title = " vs ".join({"mosquitto": "Mosquitto", "nats": "NATS 3 nodes"}[b] for b in backends)
    return report.write(f"Broker cluster: {title} at {plan.homes:,} homes", rows, notes)


def run(plan: Plan, backends: tuple[str, ...] = BACKENDS) -> str:
    return asyncio.run(measure(plan, backends))
