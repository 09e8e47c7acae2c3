"""Run scenarios on one harness and write the table to docs/reliability.md."""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from pathlib import Path

from bench.faults.harness import HarnessConfig, harness
from bench.faults.scenarios import AGENTS, SCENARIOS, Outcome
from bench.report import machine

log = logging.getLogger(__name__)
DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"


async def run(names: list[str], per: int = 9, deadline_s: float = 90.0, seed: int = 1) -> list[Outcome]:
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    out: list[Outcome] = []
    t0 = time.monotonic()
    agents = sum(AGENTS.get(n, 0) for n in names)
    async with harness(HarnessConfig(gateways=per * len(names), seed=seed, agents=agents)) as h:
        log.info("harness up in %.1f s", time.monotonic() - t0)
        for name in names:
            t0 = time.monotonic()
            out.append(await SCENARIOS[name](h, per, deadline_s))
            log.info("%s: %.1f s", name, time.monotonic() - t0)
    return out


def _delay(s: float | None) -> str:
    return "-" if s is None else f"{s:.1f} s"


#: a worst delay after recovery past this is called late in the verdict (the figure, not a test)
LATE_S = 30.0

HEADER = (
    "| fault | events raised / stored | duplicates | alarms | webhooks (redelivered) "
    "| escalations fired / webhooks | worst delay after recovery | verdict | measured |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def row(o: Outcome, when: str) -> str:
    t = o.tally
    verdict = "ok" if o.ok else "**FAIL**: " + "; ".join(o.problems or ["counts differ"])
    if o.ok and t.worst_delay_s is not None and t.worst_delay_s > LATE_S:
        verdict = f"ok, but **late** (> {LATE_S:.0f} s)"  # nothing lost, and still a defect
    return (
        f"| {o.name}: {o.fault} | {t.raised} / {t.stored} | {t.duplicates} | {t.alarms} | "
        f"{t.webhooks} ({t.redeliveries}) | {t.escalations} / {t.escalation_hooks} | "
        f"{_delay(t.worst_delay_s)} | {verdict} | {when} |"
    )


def table(outcomes: list[Outcome], when: str = "now") -> str:
    return "\n".join([HEADER, *(row(o, when) for o in outcomes)]) + "\n"


def write(outcomes: list[Outcome], doc: Path = DOC) -> str:
    """Update the generated section of docs/reliability.md (``SAFEHOME_FAULTS_DOC`` redirects
    it): this run's rows replace those of the same faults, the others stay with their date."""
    doc = Path(os.environ.get("SAFEHOME_FAULTS_DOC", doc))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = doc.read_text() if doc.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    old, _, tail = rest.partition(END)
    rows: dict[str, str] = {}
    runs: list[str] = []
    for line in old.splitlines():
        if line.startswith("| ") and not line.startswith("| fault |"):
            rows[line[2:].partition(":")[0]] = line
        elif line.startswith("- run: "):
            runs.append(line)
    for o in outcomes:
        rows[o.name] = row(o, when)
    runs.append(f"- run: `python -m bench.faults {' '.join(shlex.quote(a) for a in sys.argv[1:])}`, {when}")
    section = "\n".join([
        BEGIN, f"- machine: {machine()}", *runs, "", HEADER, *rows.values(), END,
    ])  # fmt: skip
    print(section)
    doc.write_text(head + section + tail)
    return section
