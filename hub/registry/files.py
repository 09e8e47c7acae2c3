"""Reading and writing register files: one YAML document, or CSV files (one per table).

YAML rows remember the line they start on, so that errors can point at it. CSV files are
named after their table (``district.csv``, ``subdistricts.csv``, ``workstations.csv``,
``homes.csv``, ``gateways.csv``, ``sensors.csv``), have a header row with the YAML column
names, UTF-8 (a BOM is tolerated, as spreadsheet programs write one), and carry nested
values (``residents``, ``emergency_contacts``, ``key_holder``) as JSON in the cell. An
empty cell means "not given" (the column's default applies).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from hub.registry.errors import RegistryFileError, RowError
from hub.registry.schema import FORMAT_VERSION, TABLES, RawTable
from hub.registry.yaml_stream import EmptyDocument, NotAMapping, top_level

JSON_COLUMNS = frozenset({"residents", "emergency_contacts", "key_holder"})
#: CSV column order per table (also the order written by :func:`write_csv`).
CSV_COLUMNS: dict[str, list[str]] = {
    "district": ["id", "name", "timezone", "phone"],
    "subdistricts": ["id", "name", "phone"],
    "workstations": ["id", "subdistrict", "name", "phone", "oncall_phone", "day_start", "day_end"],
    "homes": [
        "id",
        "workstation",
        "address",
        "floor",
        "door",
        "residents",
        "emergency_contacts",
        "key_holder",
        "care_notes",
    ],
    "gateways": ["id", "home"],
    "sensors": ["id", "gateway", "model", "kind", "location", "interval_s"],
}
#: Limit on the size of one register file (a district of 100,000 homes is ~60 MB of YAML).
MAX_FILE_BYTES = 512 * 1024 * 1024

Loaded = tuple[dict[str, RawTable], object, list[RowError]]


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise RegistryFileError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RegistryFileError(f"{path}: not UTF-8 ({exc})") from exc
    except OSError as exc:
        raise RegistryFileError(f"{path}: {exc.strerror or exc}") from exc


def load(paths: Iterable[Path]) -> Loaded:
    """Read one YAML file, a directory of CSV files, or CSV files; return the raw tables,
    the format version and errors found while reading (bad JSON cells…)."""
    paths = list(paths)
    if len(paths) == 1 and paths[0].suffix.lower() in (".yaml", ".yml"):
        return load_yaml(paths[0])
    if len(paths) == 1 and paths[0].is_dir():
        paths = sorted(paths[0].glob("*.csv"))
        if not paths:
            raise RegistryFileError("directory holds no .csv files")
    bad = [p for p in paths if p.suffix.lower() != ".csv"]
    if bad:
        raise RegistryFileError(f"{bad[0]}: expected one .yaml file, or .csv files / a directory of them")
    return load_csv(paths)


def load_yaml(path: Path) -> Loaded:
    return parse_yaml(_read_text(path), str(path))


def parse_yaml(text: str, name: str = "<yaml>") -> Loaded:
    tables: dict[str, RawTable] = {}
    errors: list[RowError] = []
    version: object = None
    try:
        for key, line, value in top_level(text):
            if key in tables or (key == "version" and version is not None):
                errors.append(RowError(key, None, None, "table given twice in the file", line))
                if not isinstance(value, tuple):
                    for _ in value:  # consume it
                        pass
                continue
            if isinstance(value, tuple):
                row_line, node, data = value
                if key == "version":
                    version = data
                elif key == "district":
                    tables[key] = RawTable([data], [row_line])
                    errors += _duplicate_keys(key, 0, node)
                elif data is None:
                    tables[key] = RawTable()
                else:
                    errors.append(RowError(key, None, None, "expected a list of rows", row_line))
                continue
            table = RawTable()
            for i, (row_line, node, data) in enumerate(value):
                table.rows.append(data)
                table.lines.append(row_line)
                errors += _duplicate_keys(key, i, node)
            tables[key] = table
    except EmptyDocument:
        raise RegistryFileError(f"{name}: empty file") from None
    except NotAMapping:
        raise RegistryFileError(
            f"{name}: expected a mapping with version, district, subdistricts, …"
        ) from None
    except yaml.YAMLError as exc:
        raise RegistryFileError(f"{name}: not valid YAML: {exc}") from exc
    return tables, version, errors


def _duplicate_keys(table: str, i: int, row: yaml.Node) -> list[RowError]:
    """YAML keeps the last of two equal keys silently; a register must not."""
    if not isinstance(row, yaml.MappingNode):
        return []
    seen: set[str] = set()
    out = []
    for key, _ in row.value:
        name = str(key.value)
        if name in seen:
            out.append(
                RowError(table, i + 1, name, "column given twice in this row", key.start_mark.line + 1)
            )
        seen.add(name)
    return out


def load_csv(paths: Iterable[Path]) -> Loaded:
    tables: dict[str, RawTable] = {}
    errors: list[RowError] = []
    for path in paths:
        name = path.stem
        if name in tables:
            raise RegistryFileError(f"{path}: table {name!r} given twice")
        tables[name], errs = parse_csv(_read_text(path), name)
        errors += errs
    return tables, FORMAT_VERSION, errors


def parse_csv(text: str, table: str) -> tuple[RawTable, list[RowError]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    raw = RawTable()
    errors: list[RowError] = []
    try:
        for i, row in enumerate(reader):
            raw.lines.append(reader.line_num)
            clean: dict[str, Any] = {}
            for column, cell in row.items():
                if column is None:  # more cells than header columns
                    errors.append(RowError(table, i + 1, None, "more cells than columns", reader.line_num))
                    continue
                if cell is None or cell.strip() == "":
                    continue
                if column in JSON_COLUMNS:
                    try:
                        clean[column] = json.loads(cell)
                    except json.JSONDecodeError as exc:
                        errors.append(
                            RowError(table, i + 1, column, f"not valid JSON: {exc}", reader.line_num)
                        )
                        continue
                else:
                    clean[column] = cell
            raw.rows.append(clean)
    except csv.Error as exc:
        raise RegistryFileError(f"{table}.csv line {reader.line_num}: {exc}") from exc
    return raw, errors


def dump_yaml(data: dict[str, Any]) -> str:
    """The register as YAML (keys in file order, Unicode kept readable)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(data, Dumper=dumper, allow_unicode=True, sort_keys=False, width=1000))


def write_csv(data: dict[str, Any], directory: Path) -> list[Path]:
    """Write the register as one CSV file per table into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for table in TABLES:
        rows = [data[table]] if table == "district" else data[table]
        path = directory / f"{table}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS[table])
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {
                        k: (json.dumps(v, ensure_ascii=False) if k in JSON_COLUMNS and v is not None else v)
                        for k, v in row.items()
                    }
                )
        written.append(path)
    return written
