"""One logging setup: every process calls protocols.logs.configure_logging, every module
logs through ``logging.getLogger(__name__)``."""

from __future__ import annotations

import ast
import io
import logging
from pathlib import Path

import pytest

from protocols.logs import configure_logging

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("protocols", "edge", "hub", "devices", "firmware_sim", "safehome", "bench")


def _calls(path: Path) -> list[ast.Call]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)]


def _name(call: ast.Call) -> str:
    f = call.func
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
        return f"{f.value.id}.{f.attr}"
    return f.id if isinstance(f, ast.Name) else ""


def offenders() -> list[str]:
    bad = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if rel == Path("protocols/logs.py"):
                continue
            for call in _calls(path):
                name = _name(call)
                if name == "logging.basicConfig":
                    bad.append(f"{rel}:{call.lineno} calls logging.basicConfig")
                if name == "logging.getLogger" and call.args:
                    arg = call.args[0]
                    if not (isinstance(arg, ast.Name) and arg.id == "__name__"):
                        bad.append(f"{rel}:{call.lineno} names a logger other than __name__")
    return bad


def test_every_logger_is_its_module_and_only_configure_logging_configures() -> None:
    assert offenders() == []


def test_configure_logging_formats_and_sets_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    # A fresh root for this test (pytest's own capture handlers are put back after).
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    quiet = logging.getLogger("tests.logging.quiet")
    monkeypatch.setattr(quiet, "level", logging.NOTSET)
    out = io.StringIO()
    configure_logging("warning", loud={"tests.logging.quiet": "INFO"}, stream=out)
    logging.getLogger("tests.logging.other").info("dropped below the root's level")
    logging.getLogger("tests.logging.other").warning("kept")
    quiet.info("loud logger")
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "WARNING tests.logging.other: kept",
        "INFO tests.logging.quiet: loud logger",
    ]
