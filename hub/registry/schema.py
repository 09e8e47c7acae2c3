"""The registry file format (version 1) and its validation, as pure functions over plain data.

:func:`validate` takes the tables as read from YAML or CSV (lists of dicts plus their row
locations) and returns a :class:`Register` or raises :class:`RegistryValidationError` with
*every* problem found: per-row field errors first, then duplicate ids and references that
point nowhere (a reference may point into the file or to a row already in the database).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from hub.registry.errors import RegistryValidationError, RowError
from protocols.catalogue import MODEL_KINDS
from protocols.ids import ID_PATTERN

FORMAT_VERSION = 1
#: Tables in dependency order (parents first), as in the file.
TABLES = ("district", "subdistricts", "workstations", "homes", "gateways", "sensors")

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]
PHONE_PATTERN = r"^\+?[0-9][0-9 -]{2,30}$"
Phone = Annotated[str, StringConstraints(pattern=PHONE_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
#: A workstation's hours when it has no day staff (on call around the clock).
NO_HOURS = "none"


def _hh_mm(value: object) -> object:
    """``"08:00"`` → time; ``none`` (or YAML null) → None, no day staff. YAML 1.1 reads an
    unquoted ``8:30`` as the sexagesimal integer 510; accept such integers below 24 h as
    minutes, so that ``day_start: 8:30`` works."""
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, str) and value.strip().lower() == NO_HOURS):
        return None
    if isinstance(value, int) and 0 <= value < 24 * 60:
        return dt.time(value // 60, value % 60)
    if isinstance(value, str):
        try:
            hours, minutes = value.strip().split(":")
            if len(minutes) != 2:
                raise ValueError
            return dt.time(int(hours), int(minutes))
        except ValueError:
            raise ValueError(f"{value!r} is not a time of day HH:MM") from None
    return value


TimeOfDay = Annotated[dt.time | None, BeforeValidator(_hh_mm)]


class _Row(BaseModel):
    # Unknown columns are errors: a misspelt column would otherwise drop data silently.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DistrictRow(_Row):
    id: Id
    name: Name
    timezone: str
    phone: Phone

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Asia/Shanghai)") from None
        return value


class SubdistrictRow(_Row):
    id: Id
    name: Name
    phone: Phone


class WorkstationRow(_Row):
    id: Id
    subdistrict: Id
    name: Name
    phone: Phone
    oncall_phone: Phone
    # hub/registry/duty.py: start < end by day, end < start across midnight, equal = 24 h,
    # both none = no day staff. Required even when none: a forgotten column is not a choice.
    day_start: TimeOfDay
    day_end: TimeOfDay

    @field_validator("day_end")
    @classmethod
    def _both_or_neither(cls, value: dt.time | None, info: ValidationInfo) -> dt.time | None:
        if "day_start" not in info.data:  # day_start has its own error
            return value
        start = info.data["day_start"]
        if (start is None) != (value is None):
            raise ValueError(
                f"day_start is {_show(start)} but day_end is {_show(value)}: give both times, "
                f"or {NO_HOURS!r} for both (no day staff)"
            )
        return value


def _show(t: dt.time | None) -> str:
    return t.strftime("%H:%M") if t is not None else repr(NO_HOURS)


#: A preferred language as a BCP 47 tag (``zh``, ``zh-Hans``, ``yue``, ``en``).
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$"


class Resident(_Row):
    name: Name
    birth_year: Annotated[int, Field(ge=1880, le=2100)] | None = None
    phone: Phone | None = None
    conditions: list[Id] = []
    language: Annotated[str, StringConstraints(pattern=LANGUAGE_PATTERN)] | None = None
    notes: Annotated[str, StringConstraints(max_length=500)] = ""


class Contact(_Row):
    name: Name
    relation: Annotated[str, StringConstraints(max_length=50)] = ""
    phone: Phone


class KeyHolder(_Row):
    name: Name
    phone: Phone


def _text_of_number(value: object) -> object:
    """YAML reads an unquoted ``floor: 3`` as an integer; a floor or door is text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Floor = Annotated[
    str, BeforeValidator(_text_of_number), StringConstraints(max_length=16, strip_whitespace=True)
]
Door = Annotated[
    str, BeforeValidator(_text_of_number), StringConstraints(max_length=32, strip_whitespace=True)
]


class HomeRow(_Row):
    id: Id
    workstation: Id
    address: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
    floor: Floor = ""
    door: Door = ""
    residents: Annotated[list[Resident], Field(min_length=1, max_length=20)]
    emergency_contacts: Annotated[list[Contact], Field(max_length=20)] = []
    key_holder: KeyHolder | None = None
    care_notes: Annotated[str, StringConstraints(max_length=2000)] = ""


class GatewayRow(_Row):
    id: Id
    home: Id


class SensorRow(_Row):
    id: Id
    gateway: Id
    model: Id
    kind: Id
    location: Annotated[str, StringConstraints(max_length=200)] = ""
    # Same limits as protocols.SensorConfig.interval_s: the gateway must accept it.
    interval_s: Annotated[int, Field(ge=10, le=86_400)] = 3600

    # The device catalogue (protocols/catalogue.py, from devices/definitions.py): a model the
    # gateway cannot drive, or a kind it never raises, would be a sensor nobody hears.
    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODEL_KINDS:
            raise ValueError(f"unknown device model {value!r} (known: {', '.join(sorted(MODEL_KINDS))})")
        return value

    @field_validator("kind")
    @classmethod
    def _kind_of_model(cls, value: str, info: ValidationInfo) -> str:
        model = info.data.get("model")
        if model is None:  # the model has its own error
            return value
        kinds = MODEL_KINDS[model]
        if value not in kinds:
            raise ValueError(f"model {model!r} raises {', '.join(map(repr, kinds))}, not {value!r}")
        return value


ROW_MODELS: dict[str, type[_Row]] = {
    "district": DistrictRow,
    "subdistricts": SubdistrictRow,
    "workstations": WorkstationRow,
    "homes": HomeRow,
    "gateways": GatewayRow,
    "sensors": SensorRow,
}


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


def _column(loc: tuple[int | str, ...]) -> str | None:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _message(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown column"
    if err["type"] == "missing":
        return "required, missing"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "string_pattern_mismatch":
        pattern = (err.get("ctx") or {}).get("pattern")
        if pattern == ID_PATTERN:
            msg = "not an id: 1-64 characters of a-z 0-9 - _, starting with a letter or digit"
        elif pattern == PHONE_PATTERN:
            msg = "not a phone number: digits, spaces and '-', optional leading '+'"
        elif pattern == LANGUAGE_PATTERN:
            msg = "not a language tag (BCP 47, e.g. zh, zh-Hans, yue, en)"
        return f"{msg} (got {err['input']!r})"
    return msg


def _validate_rows(
    table: str, raw: RawTable, model: type[_Row], errors: list[RowError]
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
