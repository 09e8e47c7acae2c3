"""The dependency direction of docs/architecture.md, checked mechanically on the import graph."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"protocols", "edge", "hub", "devices", "firmware_sim", "safehome", "bench"}
#: package -> the packages of ours it must never import.
FORBIDDEN: dict[str, set[str]] = {
    "protocols": OURS - {"protocols"},
    "edge": {"hub", "firmware_sim", "safehome", "bench"},
    "hub": {"edge", "devices", "firmware_sim", "safehome", "bench"},
    "devices": {"hub", "edge", "firmware_sim", "safehome", "bench"},
    "firmware_sim": {"hub", "safehome", "bench"},
    # The benches and the CLI use harnesses from safehome/testing/, never the test suite.
    "safehome": {"bench"},
    "bench": set(),
}
for _forbidden in FORBIDDEN.values():
    _forbidden.add("tests")


def imported_packages(source: str) -> set[str]:
    """Top-level names of every absolute import in ``source`` (also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def violations(package: str, root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted((root / package).rglob("*.py")):
        hits = imported_packages(path.read_text()) & FORBIDDEN[package]
        bad += [f"{path.relative_to(root)} imports {name}" for name in sorted(hits)]
    return bad


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependency_direction(package: str) -> None:
    assert violations(package) == []


def test_no_package_imports_the_test_suite() -> None:
    assert all("tests" in forbidden for forbidden in FORBIDDEN.values())
    assert set(FORBIDDEN) == OURS


def test_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The check is not vacuous: `import hub` inside edge/ is reported, lazily or not."""
    (tmp_path / "edge").mkdir()
    (tmp_path / "edge" / "bad.py").write_text("def f():\n    from hub.alarms import x\n")
    (tmp_path / "edge" / "good.py").write_text("import protocols\nfrom . import bad\n")
    assert violations("edge", tmp_path) == ["edge/bad.py imports hub"]
