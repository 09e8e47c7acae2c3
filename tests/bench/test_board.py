"""``safehome bench board`` end to end, tiny: broker, hub, a load fleet of 20 homes and the
console in headless Chromium; every alarm raised must appear on the open board. Counts only:
no timing is asserted."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from bench import report
from bench.cli import bench
from safehome.testing.console import CHROMIUM

pytestmark = pytest.mark.slow


def test_every_alarm_reaches_the_open_board() -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} not found: the board benchmark needs Debian's chromium (`make apt` installs it)")
    args = ["board", "--homes", "20", "--alarms", "3", "--spacing", "0.2", "--warmup", "1", "--one-process", "--no-write"]
    try:
        result = CliRunner().invoke(bench, args)
    finally:
        report._writing = True
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "| alarms raised / seen on the board | 3 / 3 (lost 0) |" in result.output
    assert "| JavaScript errors in the page | 0 |" in result.output
