"""Write the agent's TOML settings file from plain dicts (tests and bench; no TOML writer dep)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_toml(
    path: Path, top: dict[str, Any], mqtt: dict[str, Any], tables: dict[str, list[dict[str, Any]]]
) -> Path:
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    lines += ["", "[mqtt]"] + [f"{k} = {toml_value(v)}" for k, v in mqtt.items()]
    for name, rows in tables.items():
        for row in rows:
            lines += ["", f"[[{name}]]"] + [f"{k} = {toml_value(v)}" for k, v in row.items()]
    path.write_text("\n".join(lines) + "\n")
    return path
