"""Run scenarios on one harness and write the table to docs/reliability.md."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from bench.faults.harness import HarnessConfig, harness
from bench.faults.scenarios import SCENARIOS, Outcome
from bench.report import command, machine

log = logging.getLogger(__name__)
AGENTS = 3  #: real edge agents for power-cut (each a process: the 2 cores set the number)
DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"


async def run(names: list[str], per: int = 9, deadline_s: float = 90.0, seed: int = 1) -> list[Outcome]:
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    out: list[Outcome] = []
    t0 = time.monotonic()
    agents = AGENTS if "power-cut" in names else 0
    async with harness(HarnessConfig(gateways=per * len(names), seed=seed, agents=agents)) as h:
        log.info("harness up in %.1f s", time.monotonic() - t0)
        for name in names:
            t0 = time.monotonic()
            out.append(await SCENARIOS[name](h, per, deadline_s))
            log.info("%s: %.1f s", name, time.monotonic() - t0)
    return out


def _delay(s: float | None) -> str:
    return "-" if s is None else f"{s:.1f} s"


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| fault | events raised / stored | duplicates | alarms | webhooks (redelivered) | escalations fired / webhooks | worst delay after recovery | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for o in outcomes:
        t = o.tally
        verdict = "ok" if o.ok else "**FAIL**: " + "; ".join(o.problems or ["counts differ"])
        lines.append(
            f"| {o.name}: {o.fault} | {t.raised} / {t.stored} | {t.duplicates} | {t.alarms} | "
            f"{t.webhooks} ({t.redeliveries}) | {t.escalations} / {t.escalation_hooks} | "
            f"{_delay(t.worst_delay_s)} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def write(outcomes: list[Outcome], doc: Path = DOC) -> str:
    """Replace the generated section of docs/reliability.md (``SAFEHOME_FAULTS_DOC`` redirects it)."""
    doc = Path(os.environ.get("SAFEHOME_FAULTS_DOC", doc))
    section = "\n".join([
        BEGIN,
        f"- command: `{command()}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"- machine: {machine()}",
        "",
        table(outcomes),
        END,
    ])  # fmt: skip
    print(section)
    text = doc.read_text() if doc.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        text = head + section + rest.partition(END)[2]
    else:
        text += "\n" + section + "\n"
    doc.write_text(text)
    return section
