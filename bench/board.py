"""Benchmark: gateway publish → alarm visible on an open console board, under load.

The same system and load as ``safehome bench latency`` (:func:`bench.latency.rig`: N homes
sending heartbeats and telemetry from a fleet process, the hub, the measured gateways in
this process). The console (``/console/``) is open in Debian's headless Chromium, logged in
as the district's supervisor (the region every measured alarm belongs to); then each
measured gateway raises one alarm (smoke and panic in turn), spaced out. A MutationObserver
in the page notes ``Date.now()`` when a row ``li[data-alarm=<id>]`` first appears in the
board's DOM; the latency is that minus the publish's ``time.time()`` (one host clock).
An alarm whose row never appears within the deadline is counted lost.
"""

from __future__ import annotations

import asyncio
import time

from playwright.async_api import Page, async_playwright
from sqlalchemy import select

import protocols as p
from bench import report
from bench.latency import fire_alarms, rig
from bench.system import System, hub_cpu_s, percentile
from hub.alarms.store.models import Alarm
from hub.db.engine import make_engine, make_session_factory
from safehome.testing.console import CHROMIUM, LAUNCH_ARGS, log_in

#: the alarm kinds raised, in turn
KINDS = (p.EventKind.SMOKE, p.EventKind.PANIC)

#: installed in the page once logged in: ``window.__seen[alarm id]`` = ``Date.now()`` (ms)
#: of the first DOM mutation after which the alarm's row was in the document
OBSERVE = """() => {
  window.__seen = {};
  const note = () => {
    const t = Date.now();
    for (const li of document.querySelectorAll("li[data-alarm]")) {
      const id = li.dataset.alarm;
      if (!(id in window.__seen)) window.__seen[id] = t;
    }
  };
  note();
  new MutationObserver(note).observe(document.body,
    { childList: true, subtree: true, attributes: true, attributeFilter: ["data-alarm"] });
}"""


def alarm_ids(db_url: str, gateways: list[str]) -> dict[str, str]:
    """Alarm id → gateway, for the alarms of ``gateways`` (each raised one)."""
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as s:
            rows = s.execute(select(Alarm.id, Alarm.gateway_id).where(Alarm.gateway_id.in_(gateways)))
            return {str(i): str(g) for i, g in rows}
    finally:
        engine.dispose()


async def seen(page: Page) -> dict[str, float]:
    """Alarm id → wall-clock time (s) its row appeared on the board."""
    raw: dict[str, float] = await page.evaluate("window.__seen")
    return {k: float(v) / 1000 for k, v in raw.items()}


async def wait_seen(
    page: Page, s: System, sent: dict[str, tuple[float, str]], within: float
) -> dict[str, float]:
    """Gateway → time its alarm's row appeared, once every alarm is on the board or ``within`` s passed."""
    deadline = time.monotonic() + within
    while True:
        ids = alarm_ids(s.db_url, list(sent))
        on_board = await seen(page)
        by_gw = {gw: on_board[i] for i, gw in ids.items() if i in on_board}
        if len(by_gw) >= len(sent) or time.monotonic() > deadline:
            return by_gw
        await asyncio.sleep(0.5)


async def measure(
    homes: int, alarms: int, spacing: float, warmup: float, split: bool, postgres: bool, within: float
) -> tuple[str, int]:
    """The section's text and the number of alarms never seen on the board."""
    async with rig(homes, alarms, warmup, split, postgres) as r, async_playwright() as pw:
        s = r.s
        district = s.registry.district.id
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            if s.hub.api_url is None:
                raise RuntimeError("the bench's hub serves no HTTP API: no console to open")
            console = s.hub.api_url.removesuffix("/api/v1") + "/console/"
            await log_in(page, console, s.hub.tokens[f"supervisor district:{district}"])
            await page.evaluate(OBSERVE)
            hub_cpu0, t_cpu0 = hub_cpu_s(s), time.monotonic()
            sent = await fire_alarms(r.fleet, r.gateways, spacing, KINDS)
            shown = await wait_seen(page, s, sent, within)
            hub_cpu = (hub_cpu_s(s) - hub_cpu0) / (time.monotonic() - t_cpu0) * 100
        finally:
            await browser.close()
    ms = [(shown[gw] - t) * 1000 for gw, (t, _eid) in sent.items() if gw in shown]
    lost = len(sent) - len(ms)
    rows = [
        ("load", f"{homes:,} homes: heartbeat 30 s, telemetry 60 s (fleet process); {alarms} alarm gateways"),
        ("board", f"the console in headless Chromium, logged in as supervisor of district {district}"),
        ("alarms raised / seen on the board", f"{len(sent)} / {len(ms)} (lost {lost})"),
        ("publish → row on the board p50 / p99 / max",
         f"{percentile(ms, 50):.0f} / {percentile(ms, 99):.0f} / {max(ms, default=float('nan')):.0f} ms"),
        ("hub CPU while measuring", f"{hub_cpu:.0f} % of one core"),
        ("JavaScript errors in the page", str(len(errors))),
    ]  # fmt: skip
    notes = (
        f"One alarm every {spacing:g} s (smoke and panic in turn), each on its own gateway. Hub: "
        f"`safehome hub run` on {'PostgreSQL' if postgres else 'SQLite'} "
        f"({'two processes: `[hub.ingest] lanes` priority / telemetry' if split else 'one process'}); the board "
        f"follows `GET /api/v1/alarms/stream` of {'the priority process' if split else 'the hub'}. Seen = a MutationObserver in the page "
        "noted `Date.now()` when the alarm's row was first in the DOM (same host clock as the publish); lost = "
        f"not on the board {within:g} s after the last publish. Target: p99 ≤ 250 ms at 10,000 homes. Broker, hub, "
        "fleet and browser share the 2 cores."
    )
    return report.write(f"Alarm on the console board at {homes:,} homes", rows, notes), lost


def run(
    homes: int = 10_000,
    alarms: int = 100,
    spacing: float = 0.3,
    warmup: float = 20.0,
    split: bool = True,
    postgres: bool = False,
    within: float = 30.0,
) -> tuple[str, int]:
    return asyncio.run(measure(homes, alarms, spacing, warmup, split, postgres, within))
