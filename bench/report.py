"""Figures out: print them and append them, with command, date and machine, to the history
in docs/benchmarks-history.md (docs/benchmarks.md has the summary of the latest figures).

Every ``safehome bench`` subcommand takes ``--write/--no-write`` (:data:`WRITE_OPTION`):
``--no-write`` prints only.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from pathlib import Path

import click

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks-history.md"
HEADER = """# Benchmarks: history

Every run of `make bench` / `safehome bench …` (bench/) appends a section here; do not
edit the sections by hand. Each says the command, the date and the machine it ran on.
On this 2-core machine the broker, the load generator and the hub share the cores:
compare figures measured in the same run, not across runs. The current figure of each
benchmark is summarised in docs/benchmarks.md.
"""

_writing = True


def writing() -> bool:
    """Whether figures are appended to the history (``--write``, the default) or only printed."""
    return _writing


def _set_writing(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    global _writing
    _writing = value
    return value


#: The ``--write/--no-write`` option every ``safehome bench`` subcommand takes.
WRITE_OPTION = click.Option(
    ["--write/--no-write"],
    default=True,
    show_default=True,
    expose_value=False,
    callback=_set_writing,
    help="Append the figures to docs/benchmarks-history.md (--no-write: print only).",
)


def append(text: str, doc: Path = DOC) -> None:
    """Append a section to the history, unless ``--no-write``; ``SAFEHOME_BENCH_DOC``
    redirects it (exploratory runs that should not land in the docs)."""
    if not _writing:
        return
    doc = Path(os.environ.get("SAFEHOME_BENCH_DOC", doc))
    doc.parent.mkdir(parents=True, exist_ok=True)
    if not doc.exists():
        doc.write_text(HEADER + "\n")
    with doc.open("a") as f:
        f.write(text)
    if doc == DOC:
        from bench import summary

        summary.refresh(DOC)


def machine() -> str:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    return f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.1f} GiB RAM, Linux {platform.release()}, Python {platform.python_version()}"


def command() -> str:
    return "safehome " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def write(title: str, rows: list[tuple[str, str]], notes: str = "", doc: Path = DOC) -> str:
    """Print one section (a two-column table), :func:`append` it, and return its text."""
    lines = [
        f"## {title}",
        "",
        f"- command: `{command()}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"- machine: {machine()}",
        # a fact, not a claim in the notes: a loaded machine (other work) gives slower figures
        "- load average (1 / 5 / 15 min) when written: {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg()),
        "",
        "| figure | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows],
        "",
    ]
    if notes:
        lines += [notes.strip(), ""]
    text = "\n".join(lines) + "\n"
    print(text)
    append(text, doc)
    return text
