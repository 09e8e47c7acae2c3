"""Validation of a registry file (version 1), as pure functions over plain data. The row
models are the file format itself, shared with the simulator: ``protocols/registry_file.py``.

:func:`validate` takes the tables as read from YAML or CSV (lists of dicts plus their row
locations) and returns a :class:`Register` or raises :class:`RegistryValidationError` with
*every* problem found: per-row field errors first, then duplicate ids and references that
point nowhere (a reference may point into the file or to a row already in the database).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from hub.registry.errors import RegistryValidationError, RowError
from protocols.registry_file import (
    FORMAT_VERSION,
    NO_HOURS,
    ROW_MODELS,
    TABLES,
    DistrictRow,
    GatewayRow,
    HomeRow,
    Row,
    SensorRow,
    SubdistrictRow,
    WorkstationRow,
)
from protocols.registry_file import column as _column
from protocols.registry_file import message as _message

__all__ = [
    "FORMAT_VERSION",
    "NO_HOURS",
    "ROW_MODELS",
    "TABLES",
    "KnownIds",
    "RawTable",
    "Register",
    "validate",
]


@dataclass
class RawTable:
    """Rows of one table as read from a file; ``lines[i]`` is the source line of row i."""

    rows: list[Any] = field(default_factory=list)
    lines: list[int | None] = field(default_factory=list)

    def line(self, i: int) -> int | None:
        return self.lines[i] if i < len(self.lines) else None


@dataclass
class Register:
    district: DistrictRow
    subdistricts: list[SubdistrictRow]
    workstations: list[WorkstationRow]
    homes: list[HomeRow]
    gateways: list[GatewayRow]
    sensors: list[SensorRow]


@dataclass(frozen=True)
class KnownIds:
    """Ids already in the database, so that a partial file may refer to them."""

    subdistricts: frozenset[str] = frozenset()
    workstations: frozenset[str] = frozenset()
    homes: frozenset[str] = frozenset()
    gateways: frozenset[str] = frozenset()


def _validate_rows(
    table: str, raw: RawTable, model: type[Row], errors: list[RowError]
) -> list[tuple[int, Any]]:
    good: list[tuple[int, Any]] = []
    for i, row in enumerate(raw.rows):
        row_id = row.get("id") if isinstance(row, dict) and isinstance(row.get("id"), str) else None
        if not isinstance(row, dict):
            errors.append(RowError(table, i + 1, None, "expected a mapping of column: value", raw.line(i)))
            continue
        try:
            good.append((i, model.model_validate(row)))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                errors.append(RowError(table, i + 1, _column(err["loc"]), _message(err), raw.line(i), row_id))
    return good


def validate(
    tables: Mapping[str, RawTable],
    version: object = FORMAT_VERSION,
    known: KnownIds | None = None,
    prior_errors: list[RowError] | None = None,
) -> Register:
    """Validate every row of every table; raise with all errors (including ``prior_errors``
    found while reading the file), or return the register."""
    known = known or KnownIds()
    errors: list[RowError] = list(prior_errors or [])
    if version != FORMAT_VERSION:
        errors.append(RowError("version", None, None, f"unsupported format version {version!r}, expected 1"))
    for name in tables:
        if name not in ROW_MODELS:
            errors.append(RowError(name, None, None, f"unknown table (expected one of {', '.join(TABLES)})"))
    district_raw = tables.get("district", RawTable())
    if len(district_raw.rows) != 1:
        errors.append(
            RowError("district", None, None, f"exactly one district expected, got {len(district_raw.rows)}")
        )
    valid = {
        name: _validate_rows(name, tables.get(name, RawTable()), model, errors)
        for name, model in ROW_MODELS.items()
    }

    def ids(name: str) -> set[str]:
        # Ids of every row in the file, valid or not: a reference to a row that has its own
        # error is not reported again as dangling.
        return {
            r["id"]
            for r in tables.get(name, RawTable()).rows
            if isinstance(r, dict) and isinstance(r.get("id"), str)
        }

    def check_unique(name: str, key: Callable[[Any], object], label: Callable[[Any], str]) -> None:
        seen: dict[object, int] = {}
        for i, r in valid[name]:
            k = key(r)
            if k in seen:
                msg = f"duplicate {label(r)} (first in row {seen[k] + 1})"
                errors.append(RowError(name, i + 1, "id", msg, tables[name].line(i), r.id))
            else:
                seen[k] = i

    for name in ("subdistricts", "workstations", "homes", "gateways"):
        check_unique(name, lambda r: r.id, lambda r: f"id {r.id!r}")
    check_unique(
        "sensors", lambda r: (r.gateway, r.id), lambda r: f"sensor {r.id!r} of gateway {r.gateway!r}"
    )

    def check_refs(name: str, column: str, target: str, known_ids: frozenset[str]) -> None:
        present = ids(target) | known_ids
        for i, r in valid[name]:
            ref = getattr(r, column)
            if ref not in present:
                msg = f"{target} {ref!r} is neither in the file nor in the database"
                errors.append(RowError(name, i + 1, column, msg, tables[name].line(i), r.id))

    check_refs("workstations", "subdistrict", "subdistricts", known.subdistricts)
    check_refs("homes", "workstation", "workstations", known.workstations)
    check_refs("gateways", "home", "homes", known.homes)
    check_refs("sensors", "gateway", "gateways", known.gateways)

    if errors:
        order = {name: i for i, name in enumerate(("version", *TABLES))}
        errors.sort(key=lambda e: (order.get(e.table, len(order)), e.table, e.row or 0, e.column or ""))
        raise RegistryValidationError(errors)
    return Register(
        district=valid["district"][0][1],
        subdistricts=[r for _, r in valid["subdistricts"]],
        workstations=[r for _, r in valid["workstations"]],
        homes=[r for _, r in valid["homes"]],
        gateways=[r for _, r in valid["gateways"]],
        sensors=[r for _, r in valid["sensors"]],
    )
