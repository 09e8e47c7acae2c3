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


#: hub subpackage -> the modules of hub it must never import: the domain does not know the
#: web layer (mounted in hub/runner.py); the alarm engine hands notifications to notify,
#: never the reverse (an alarm format a channel needs is handed in: hub/alarms/notifier.py);
#: ingest and supervision hand what they stored to the sinks of hub/sinks.py.
_ABOVE_THE_PATH = {"hub.alarms", "hub.notify", "hub.api", "hub.runner"}
FORBIDDEN_IN_HUB: dict[str, set[str]] = {
    "hub.alarms": {"hub.api", "hub.runner"},
    "hub.notify": {"hub.alarms", "hub.api", "hub.runner"},
    "hub.ingest": _ABOVE_THE_PATH,
    "hub.supervision": _ABOVE_THE_PATH,
}


def imported_modules(source: str) -> set[str]:
    """Dotted names of every absolute import in ``source`` (also inside functions), with
    ``from a.b import c`` giving both ``a.b`` and ``a.b.c``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def hub_violations(package: str, root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted((root / package.replace(".", "/")).rglob("*.py")):
        names = imported_modules(path.read_text())
        hits = {f for f in FORBIDDEN_IN_HUB[package] for n in names if n == f or n.startswith(f + ".")}
        bad += [f"{path.relative_to(root)} imports {name}" for name in sorted(hits)]
    return bad


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


@pytest.mark.parametrize("package", sorted(FORBIDDEN_IN_HUB))
def test_hub_layers(package: str) -> None:
    assert hub_violations(package) == []


def test_layer_checker_catches_the_web_layer_in_the_domain(tmp_path: Path) -> None:
    """`from hub import api` and a lazy `import hub.api.app` inside hub/alarms are both found."""
    (tmp_path / "hub" / "alarms").mkdir(parents=True)
    (tmp_path / "hub" / "alarms" / "a.py").write_text("from hub import api\n")
    (tmp_path / "hub" / "alarms" / "b.py").write_text("def f():\n    import hub.api.app\n")
    (tmp_path / "hub" / "alarms" / "c.py").write_text("from hub.apiary import x\nimport hub.db\n")
    assert hub_violations("hub.alarms", tmp_path) == ["hub/alarms/a.py imports hub.api", "hub/alarms/b.py imports hub.api"]


def test_layer_checker_catches_the_alarm_engine_in_notify(tmp_path: Path) -> None:
    """The direction alarms → notify is checked too: a channel importing an alarm module is found."""
    (tmp_path / "hub" / "notify").mkdir(parents=True)
    (tmp_path / "hub" / "notify" / "ch.py").write_text("from hub.alarms.cap import to_cap\nimport hub.db\n")
    assert hub_violations("hub.notify", tmp_path) == ["hub/notify/ch.py imports hub.alarms"]


def test_test_modules_share_helpers_through_conftests_not_each_other() -> None:
    """A helper two test modules need goes into their common conftest.py or tests/support/,
    never imported from another test module (that runs its tests' imports and fixtures twice)."""
    bad = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if module and module.startswith("tests.") and module.rsplit(".", 1)[-1].startswith("test_"):
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert bad == []
