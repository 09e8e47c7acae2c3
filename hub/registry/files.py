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

JSON_COLUMNS = frozenset({"residents", "emergency_contacts", "key_holder"})
#: CSV column order per table (also the order written by :func:`write_csv`).
CSV_COLUMNS: dict[str, list[str]] = {
    "district": ["id", "name", "timezone", "phone"],
    "subdistricts": ["id", "name", "phone"],
    "workstations": ["id", "subdistrict", "name", "phone", "oncall_phone", "day_start", "day_end"],
    "homes": ["id", "workstation", "address", "residents", "emergency_contacts", "key_holder", "care_notes"],
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
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise RegistryFileError(f"{name}: empty file")
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise RegistryFileError(f"{name}: not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise RegistryFileError(f"{name}: expected a mapping with version, district, subdistricts, …")
    lines: dict[str, list[int | None]] = {}
    for key_node, value_node in node.value:
        if isinstance(value_node, yaml.SequenceNode):
            lines[str(key_node.value)] = [item.start_mark.line + 1 for item in value_node.value]
        else:
            lines[str(key_node.value)] = [value_node.start_mark.line + 1]
    tables: dict[str, RawTable] = {}
    errors: list[RowError] = []
    for key, value in data.items():
        if key == "version":
            continue
        if key == "district":
            tables["district"] = RawTable([value], lines.get("district", []))
        elif isinstance(value, list):
            tables[str(key)] = RawTable(value, lines.get(str(key), []))
        elif value is None:
            tables[str(key)] = RawTable()
        else:
            errors.append(
                RowError(str(key), None, None, "expected a list of rows", lines.get(str(key), [None])[0])
            )
    return tables, data.get("version"), errors


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
