"""The summary at the top of docs/benchmarks.md: one row per benchmark with its latest
figure, date and command, rebuilt from the history (docs/benchmarks-history.md) every time
a benchmark appends to it. ``python -m bench.summary`` rebuilds it by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HISTORY = ROOT / "docs" / "benchmarks-history.md"
SUMMARY = ROOT / "docs" / "benchmarks.md"

#: Section title (a regular expression on its start) -> the figures that summarise it
#: (each the start of a row's first cell). A section of no pattern gets no row.
HEADLINES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"Alarm latency at ", ("publish → webhook p50 / p99 / max",)),
    (r"Alarm on the console board at ", ("publish → row on the board p50 / p99 / max", "alarms raised / seen")),
    (r"Connections held", ("sessions held", "time to connect all")),
    (r"Recovery", ("time until all backlog stored and acked", "alarm publish → webhook p50 / p99 / max")),
    (r"Ingest", ("hub worker: readings stored and acked",)),
    (r"Scale-out", ("wall throughput", "CPU per reading")),
    (r"Supervision round", ("supervision's share of one core",)),
    (r"Edge agent footprint", ("agent RSS, idle", "agent CPU, idle", "drain a 24 h backlog")),
    (r"Edge: alarm raised during a partition", ("heal → the hub's Ack back",)),
    (r"Attack", ("p99 under attack / baseline",)),
    (r"Flood", ("stored ack p99 flood / baseline", "publish → stored ack p50 / p99 / max, during")),
    (r"Provisioning", ("total (median / max",)),
    (r"Storm", ("smoke publish → webhook during", "smoke publish → webhook before", "storm stored and decided")),
    (r"Alarm engine", ("smoke alarms raised", "escalation timers fired")),
    (
        r"Broker cluster",
        (
            "alarm publish → webhook p50 / p99 / max, nats",
            "kill → every gateway back and every alarm raised meanwhile notified, nats",
            "kill → every gateway back and every alarm raised meanwhile notified, mosquitto",
        ),
    ),
)


@dataclass
class Section:
    title: str
    command: str = ""
    date: str = ""
    rows: list[list[str]] = field(default_factory=list)
    #: the column names of a table with more than one value column (e.g. SQLite, PostgreSQL)
    columns: list[str] = field(default_factory=list)

    def variant(self) -> str:
        """What sets runs of the same title apart (database, MQTT version)."""
        cells = {r[0]: r[1] for r in self.rows if len(r) > 1}
        out = []
        if cells.get("database", "").startswith("PostgreSQL") or "--postgres" in self.command:
            out.append("PostgreSQL")
        if cells.get("hub worker MQTT protocol") == "5":
            out.append("MQTT 5")
        return f" ({', '.join(out)})" if out else ""


def parse(text: str) -> list[Section]:
    """Every ``## `` section of the history with its command, date and table rows."""
    sections: list[Section] = []
    in_command = False
    for line in text.splitlines():
        if line.startswith("## "):
            sections.append(Section(line[3:].strip()))
        elif not sections:
            continue
        elif in_command and line.startswith("  ") and line.strip():
            sections[-1].command += " " + line.strip()  # a command written over two lines
            continue
        in_command = False
        if line.startswith("- command:") and not sections[-1].command:
            sections[-1].command = line.removeprefix("- command:").strip()
            in_command = True
        elif line.startswith("- date:") and not sections[-1].date:
            sections[-1].date = line.removeprefix("- date:").strip()
        elif line.startswith("|") and not re.match(r"^\|\s*-", line):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] == "figure":
                sections[-1].columns = cells[1:] if len(cells) > 2 else []
            else:
                sections[-1].rows.append(cells)
    return sections


def headline(section: Section) -> str | None:
    for pattern, keys in HEADLINES:
        if re.match(pattern, section.title):
            found = []
            for key in keys:
                row = next((r for r in section.rows if r[0].startswith(key)), None)
                if row is None or len(row) < 2:
                    continue
                if len(row) > 2 and len(section.columns) == len(row) - 1:
                    values = ", ".join(f"{v} ({c})" for c, v in zip(section.columns, row[1:], strict=True))
                else:
                    values = " / ".join(row[1:])
                found.append(f"{row[0]}: {values}")
            return "; ".join(found) or None
    return None


def latest(sections: list[Section]) -> list[tuple[str, Section]]:
    """The newest section of each benchmark (title and variant), in order of first appearance."""
    newest: dict[str, Section] = {}
    for s in sections:
        name = s.title + s.variant()
        if name not in newest or s.date >= newest[name].date:
            newest[name] = s
    return list(newest.items())


def render(history: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        "The latest figure of each benchmark; every run with its full table, notes, machine and",
        "load is in [benchmarks-history.md](benchmarks-history.md) (appended by `make bench` /",
        "`safehome bench …`; `--no-write` prints only). This table is rebuilt from the history",
        "each time (bench/summary.py): do not edit it by hand. On the shared 2-core machine the",
        "broker, the load generator and the hub share the cores: compare figures measured in the",
        "same run, not across runs.",
        "",
        "| benchmark | latest figure | date | command |",
        "|---|---|---|---|",
    ]
    for name, s in sorted(latest(parse(history))):
        figure = headline(s)
        if figure is None:
            continue
        cell = figure.replace("|", "/")
        lines.append(f"| {name} | {cell} | {s.date} | {s.command.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def refresh(history: Path = HISTORY, summary: Path = SUMMARY) -> None:
    """Rewrite the summary from the history."""
    summary.write_text(render(history.read_text() if history.exists() else ""))


if __name__ == "__main__":
    refresh()
