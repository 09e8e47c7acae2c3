"""docs/benchmarks.md is the summary of docs/benchmarks-history.md (latest figure of each
benchmark), and every `safehome bench` subcommand takes the same --write/--no-write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bench import report, summary
from bench.cli import bench


def test_the_summary_is_current() -> None:
    """Rebuilt from the history (`python -m bench.summary` after editing the history by hand)."""
    assert summary.SUMMARY.read_text() == summary.render(summary.HISTORY.read_text())


def test_every_benchmark_of_the_history_has_a_row() -> None:
    """A new benchmark adds its headline figures to bench/summary.py HEADLINES."""
    sections = summary.parse(summary.HISTORY.read_text())
    assert sections
    assert [s.title for s in sections if summary.headline(s) is None] == []


def _section(title: str, date: str, value: str, command: str = "safehome bench x") -> str:
    return (
        f"## {title}\n\n- command: `{command}`\n- date: {date}\n\n| figure | value |\n|---|---|\n"
        f"| publish → webhook p50 / p99 / max | {value} |\n| other | 1 |\n\n"
    )


def test_the_latest_run_of_each_benchmark_is_shown() -> None:
    history = (
        _section("Alarm latency at 1,000 homes", "2026-11-28 10:00:00 UTC", "1 / 2 / 3 ms")
        + _section("Alarm latency at 1,000 homes", "2026-12-01 09:00:00 UTC", "4 / 5 / 6 ms")
        + _section("Alarm latency at 1,000 homes", "2026-11-30 09:00:00 UTC", "7 / 8 / 9 ms")
        + _section("Alarm latency at 1,000 homes", "2026-11-29 09:00:00 UTC", "10 / 11 / 12 ms", "x --postgres")
    )
    rows = [line for line in summary.render(history).splitlines() if line.startswith("| Alarm")]
    assert rows == [
        "| Alarm latency at 1,000 homes | publish → webhook p50 / p99 / max: 4 / 5 / 6 ms"
        " | 2026-12-01 09:00:00 UTC | `safehome bench x` |",
        "| Alarm latency at 1,000 homes (PostgreSQL) | publish → webhook p50 / p99 / max: 10 / 11 / 12 ms"
        " | 2026-11-29 09:00:00 UTC | `x --postgres` |",
    ]


def test_every_subcommand_takes_write_and_no_write() -> None:
    lacking = [
        name
        for name, cmd in bench.commands.items()
        if not any(p.opts == ["--write"] and p.secondary_opts == ["--no-write"] for p in cmd.params)
    ]
    assert lacking == []


@pytest.fixture
def restore_writing() -> Iterator[None]:
    yield
    report._writing = True


def test_no_write_prints_only(tmp_path: Path, restore_writing: None) -> None:
    doc = tmp_path / "history.md"

    @click.command(params=[report.WRITE_OPTION])
    def fake() -> None:
        report.write("Fake", [("figure", "1")], doc=doc)

    printed = CliRunner().invoke(fake, ["--no-write"])
    assert printed.exit_code == 0 and "| figure | 1 |" in printed.output
    assert not doc.exists()
    written = CliRunner().invoke(fake, [])
    assert written.exit_code == 0 and "| figure | 1 |" in doc.read_text()
